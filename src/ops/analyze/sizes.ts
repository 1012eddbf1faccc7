import type {MergedTree, TreeNode} from '../overlay/tree.js';
import type {HiddenCause, HiddenCopy, RewriteKind} from './track.js';

/**
 * The final file system with the reclaimable copies put back where they were, sized by body bytes:
 * what the HTML picture draws. Empty files take no room and are left out.
 */
export interface SizeNode {
  name: string;
  /** Absolute path. */
  path: string;
  kind: 'dir' | 'file' | 'hidden';
  /** Body bytes at or below this node (final files and hidden copies). */
  bytes: number;
  /** Hidden-copy bytes at or below it. */
  reclaimable: number;
  /** Files and hidden copies at or below it. */
  files: number;
  /** file, hidden: the layer storing the body; dir: the layer storing most of its bytes (-1: none). */
  layer: number;
  /** A directory that exists only in lower layers (everything in it was removed). */
  gone?: boolean;
  hiddenBy?: number;
  cause?: HiddenCause;
  rewrite?: RewriteKind;
  /** Largest first, then by name. */
  children?: SizeNode[];
}

interface Building extends SizeNode {
  byLayer: Map<number, number>;
  index?: Map<string, Building>;
}

const compare = (a: SizeNode, b: SizeNode): number => b.bytes - a.bytes || (a.name < b.name ? -1 : a.name > b.name ? 1 : a.kind < b.kind ? -1 : 1);

export function buildSizeTree(tree: MergedTree, hidden: readonly HiddenCopy[]): SizeNode {
  const dir = (name: string, path: string, gone: boolean): Building => ({name, path, kind: 'dir', bytes: 0, reclaimable: 0, files: 0, layer: -1, byLayer: new Map(), children: [], index: new Map(), ...(gone ? {gone} : {})});
  const root = dir('/', '/', false);
  const fill = (from: TreeNode, into: Building): void => {
    for (const child of from.children!.values()) {
      const path = `${into.path === '/' ? '' : into.path}/${child.name}`;
      if (child.type === 'dir') {
        const d = dir(child.name, path, false);
        into.children!.push(d);
        into.index!.set(child.name, d);
        fill(child, d);
      } else if (child.type === 'file' && child.inode.size > 0) {
        // A file with several names is drawn once, at its first name in path order.
        const first = [...child.inode.names].map((n) => n.path).sort()[0];
        if (child.inode.names.size > 1 && first !== child.path) continue;
        into.children!.push({name: child.name, path, kind: 'file', bytes: child.inode.size, reclaimable: 0, files: 1, layer: child.inode.source!.layer, byLayer: new Map()} as Building);
      }
    }
  };
  fill(tree.root, root);
  for (const h of hidden) {
    const parts = h.path.split('/');
    const base = parts.pop()!;
    let at = root;
    for (const part of parts) {
      let next = at.index!.get(part);
      if (!next) {
        next = dir(part, `${at.path === '/' ? '' : at.path}/${part}`, true);
        at.children!.push(next);
        at.index!.set(part, next);
      }
      at = next;
    }
    const leaf: SizeNode = {name: base, path: `${at.path === '/' ? '' : at.path}/${base}`, kind: 'hidden', bytes: h.bytes, reclaimable: h.bytes, files: 1, layer: h.source.layer, hiddenBy: h.hiddenBy, cause: h.cause};
    if (h.rewrite) leaf.rewrite = h.rewrite.kind;
    at.children!.push(leaf);
  }
  const finish = (node: Building): void => {
    for (const c of node.children as Building[]) {
      if (c.kind === 'dir') finish(c);
      else c.byLayer = new Map([[c.layer, c.bytes]]);
      node.bytes += c.bytes;
      node.reclaimable += c.reclaimable;
      node.files += c.files;
      for (const [l, b] of c.byLayer) node.byLayer.set(l, (node.byLayer.get(l) ?? 0) + b);
    }
    let best = -1;
    let most = -1;
    for (const [l, b] of node.byLayer) if (b > most || (b === most && l < best)) [best, most] = [l, b];
    node.layer = best;
    node.children = (node.children as Building[]).filter((c) => c.bytes > 0).sort(compare);
  };
  finish(root);
  const strip = (node: Building): SizeNode => {
    const {byLayer: _b, index: _i, children, ...rest} = node;
    return children ? {...rest, children: (children as Building[]).map(strip)} : rest;
  };
  return strip(root);
}
