import {paddedSize} from '../../tar/header.js';
import {encodeHeader, END_OF_ARCHIVE, type HeaderSpec} from '../../tar/write.js';
import {headerSpec} from '../overlay/emit.js';
import {sortedChildren, type Inode, type MergedTree, type TreeNode} from '../overlay/tree.js';
import {WHITEOUT_PREFIX} from '../overlay/whiteout.js';
import type {HiddenCopy, RemovedName} from './track.js';

/**
 * What `ferry squash --from-layer N` would write, for every N at once, without writing it.
 *
 * squash (src/ops/squash.ts) plans its layer with planEmission (src/ops/overlay/emit.ts): for base N
 * it emits every final path that layers N..top touched (created, wrote, or changed the attributes
 * of), the parent directories of anything emitted, a whiteout for every path that existed after
 * layers 0..N-1 and is gone at the end, and each file body once per inode (other names as hard
 * links; a file of a kept layer reached only through new names, or whose attributes changed, is
 * copied again). Each of those rules depends on N only through a few layer stamps the tree keeps
 * (createdAt, writtenAt, changedAt), so the set of N for which an entry is emitted is one or two
 * intervals, and the sizes of all N are summed in one walk of the final tree.
 *
 * The prediction is the tar planEmission/emitTar would write, byte for byte, except where emitTar
 * copies an original header whose length the walk can only approximate: a hard link's target name
 * when squashing from a layer between a file's first and last new names, and a global PAX header
 * in front of a member (both are a header block or so; test/ops/analyze.test.ts compares the
 * prediction with real squashes).
 */

export interface SquashOption {
  /** N of `ferry squash --from-layer N`: layers 0..N-1 are kept byte for byte. */
  fromLayer: number;
  /** How many layers would become one. */
  layers: number;
  /** Uncompressed tar bytes of layers N..top today. */
  beforeBytes: number;
  /** Predicted uncompressed size of the one layer that replaces them. */
  afterBytes: number;
  /** beforeBytes - afterBytes (negative: it would grow). */
  savedBytes: number;
  /** Reclaimable body bytes stored in layers N..top (what squashing from N drops). */
  reclaimedBytes: number;
  /** Body bytes of files from kept layers the new layer would have to copy again. */
  copiedAgainBytes: number;
}

const MAX_OCTAL_8 = 0o7777777;
const MAX_OCTAL_12 = 0o77777777777;
const DERIVED = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname', 'mtime']);

/** Length of encodeHeader(spec) without encoding it when it is certainly one plain ustar block. */
export function headerLength(spec: HeaderSpec): number {
  const plain =
    spec.name.length <= 100 &&
    /^[\x01-\x7f]*$/.test(spec.name) &&
    (spec.linkname === undefined || (spec.linkname.length <= 100 && /^[\x01-\x7f]*$/.test(spec.linkname))) &&
    spec.size <= MAX_OCTAL_12 &&
    spec.uid <= MAX_OCTAL_8 &&
    spec.gid <= MAX_OCTAL_8 &&
    (spec.uname ?? '').length <= 8 &&
    (spec.gname ?? '').length <= 8 &&
    spec.mtime >= 0 &&
    spec.mtime <= MAX_OCTAL_12 &&
    (spec.mtimeText === undefined || !/\.\d*[1-9]/.test(spec.mtimeText)) &&
    ![...(spec.pax ?? new Map<string, Buffer>()).keys()].some((k) => !DERIVED.has(k));
  return plain ? 512 : encodeHeader(spec).length;
}

interface InodeInfo {
  /** Names in walk order (docker export's order: the first carries the bytes). */
  names: Array<{node: TreeNode; path: string}>;
  minT: number;
  maxT: number;
}

export function predictSquash(tree: MergedTree, removed: readonly RemovedName[], tarBytes: readonly number[], hidden: readonly HiddenCopy[]): SquashOption[] {
  const L = tarBytes.length;
  if (L === 0) return [];
  const after = new Array<number>(L).fill(END_OF_ARCHIVE.length);
  const copiedAgain = new Array<number>(L).fill(0);
  const add = (target: number[], lo: number, hi: number, amount: number): void => {
    for (let n = Math.max(0, lo); n <= Math.min(hi, L - 1); n++) target[n]! += amount;
  };

  // Whiteouts: a name present after layers 0..N-1 (created at c, removed at k: N in [c+1, k]) and
  // absent at the end, in a directory that exists at the end (collectWhiteouts in emit.ts).
  const whiteoutsIn = new Map<TreeNode, Array<[number, number]>>();
  for (const r of removed) {
    const lo = r.createdAt + 1;
    const hi = Math.min(r.removedAt, L - 1);
    if (lo > hi) continue;
    const slash = r.path.lastIndexOf('/');
    const parentPath = slash >= 0 ? r.path.slice(0, slash) : '';
    const name = r.path.slice(slash + 1);
    const parent = tree.physical(parentPath);
    if (!parent?.children || parent.children.has(name)) continue;
    let list = whiteoutsIn.get(parent);
    if (!list) whiteoutsIn.set(parent, (list = []));
    list.push([lo, hi]);
    const prefix = parentPath === '' ? '' : `${parentPath}/`;
    add(after, lo, hi, headerLength({name: `${prefix}${WHITEOUT_PREFIX}${name}`, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: Math.floor(parent.inode.mtime)}));
  }

  const multi = new Map<Inode, InodeInfo>();
  const nameT = (n: TreeNode): number => Math.max(n.createdAt, n.writtenAt);
  /** Empty files: their header is copied as it was unless every file emitted from their layer is empty (emitTar). */
  const emptyFiles: Array<{inode: Inode; path: string; ranges: Array<[number, number]>}> = [];
  const nonEmptyFrom: number[][] = Array.from({length: L}, () => new Array<number>(L).fill(0));

  const holderLength = (inode: Inode, path: string): number => (inode.headerIntact && inode.source!.name === path ? inode.source!.dataOffset - inode.source!.headerOffset : headerLength(headerSpec(inode, path)));
  const materialise = (inode: Inode, path: string, lo: number, hi: number): void => {
    if (lo > hi) return;
    if (inode.size === 0) {
      const last = emptyFiles.at(-1);
      if (last?.inode === inode) last.ranges.push([lo, hi]);
      else emptyFiles.push({inode, path, ranges: [[lo, hi]]});
      return;
    }
    add(after, lo, hi, holderLength(inode, path) + paddedSize(inode.size));
    add(nonEmptyFrom[inode.source!.layer]!, lo, hi, 1);
    if (inode.createdAt < hi) add(copiedAgain, Math.max(lo, inode.createdAt + 1), hi, inode.size);
  };
  const mark = (mask: Uint8Array, lo: number, hi: number): void => {
    for (let n = Math.max(0, lo); n <= Math.min(hi, L - 1); n++) mask[n] = 1;
  };

  const visit = (dir: TreeNode, prefix: string): Uint8Array => {
    const mask = new Uint8Array(L);
    for (const [lo, hi] of whiteoutsIn.get(dir) ?? []) mark(mask, lo, hi);
    for (const child of sortedChildren(dir)) {
      const path = `${prefix}${child.name}`;
      const inode = child.inode;
      if (child.type === 'dir') {
        const sub = visit(child, `${path}/`);
        mark(sub, 0, Math.max(child.createdAt, child.writtenAt, inode.changedAt));
        const length = headerLength(headerSpec(inode, `${path}/`));
        for (let n = 0; n < L; n++) {
          if (!sub[n]) continue;
          after[n]! += length;
          mask[n] = 1;
        }
      } else if (child.type !== 'file') {
        const t = Math.max(child.createdAt, child.writtenAt, inode.changedAt);
        mark(mask, 0, t);
        add(after, 0, t, headerLength(headerSpec(inode, path)));
      } else if (inode.names.size === 1) {
        const t = Math.max(nameT(child), inode.changedAt);
        mark(mask, 0, t);
        materialise(inode, path, 0, t);
      } else {
        let info = multi.get(inode);
        if (!info) {
          const stamps = [...inode.names].map(nameT);
          multi.set(inode, (info = {names: [], minT: Math.min(...stamps), maxT: Math.max(...stamps)}));
        }
        info.names.push({node: child, path});
        mark(mask, 0, nameT(child));
        mark(mask, info.maxT + 1, inode.changedAt);
      }
    }
    return mask;
  };
  visit(tree.root, '');

  for (const [inode, {names, minT, maxT}] of multi) {
    const [first, ...rest] = names;
    const linkLength = (path: string): number => headerLength({...headerSpec(inode, path), type: 'hardlink', size: 0, linkname: first!.path});
    const links = rest.reduce((n, r) => n + linkLength(r.path), 0);
    for (const [lo, hi] of [
      [0, minT],
      [maxT + 1, inode.changedAt],
    ] as const) {
      if (lo > hi) continue;
      materialise(inode, first!.path, lo, hi);
      add(after, lo, hi, links);
    }
    // Between the first and the last new name: only the new names, as links to an old one.
    for (const {node, path} of names) if (nameT(node) > minT) add(after, minT + 1, nameT(node), linkLength(path));
  }

  for (const {inode, path, ranges} of emptyFiles) {
    const source = inode.source!;
    const intact = inode.headerIntact && source.name === path ? source.dataOffset - source.headerOffset : undefined;
    const encoded = headerLength(headerSpec(inode, path));
    for (const [lo, hi] of ranges) {
      for (let n = Math.max(0, lo); n <= Math.min(hi, L - 1); n++) after[n]! += intact !== undefined && nonEmptyFrom[source.layer]![n]! > 0 ? intact : encoded;
    }
  }

  const reclaimed = new Array<number>(L + 1).fill(0);
  for (const h of hidden) reclaimed[h.source.layer]! += h.bytes;
  for (let n = L - 1; n >= 0; n--) reclaimed[n]! += reclaimed[n + 1]!;
  const options: SquashOption[] = [];
  let before = 0;
  for (let n = L - 1; n >= 0; n--) {
    before += tarBytes[n]!;
    options.unshift({fromLayer: n, layers: L - n, beforeBytes: before, afterBytes: after[n]!, savedBytes: before - after[n]!, reclaimedBytes: reclaimed[n]!, copiedAgainBytes: copiedAgain[n]!});
  }
  return options;
}

/**
 * The N to recommend: the highest N (the most lower layers kept, shareable with other images) whose
 * saving is within 1% of the largest saving. Undefined when no squash saves anything.
 */
export function bestSquash(options: readonly SquashOption[]): SquashOption | undefined {
  const most = Math.max(0, ...options.map((o) => o.savedBytes));
  if (most <= 0) return undefined;
  const good = options.filter((o) => o.savedBytes >= most * 0.99 && o.savedBytes > 0);
  return good.at(-1);
}
