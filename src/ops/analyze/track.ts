import os from 'node:os';
import type {Layer} from '../../model/image.js';
import {xattrsOf} from '../../tar/pax.js';
import {cleanPath, type TarEntry} from '../../tar/walk.js';
import {applyEntry} from '../overlay/apply.js';
import {readHeaders, type HeaderEntry} from '../overlay/merge.js';
import {MergedTree, type ContentSource, type Inode, type TreeNode} from '../overlay/tree.js';
import {whiteoutKind} from '../overlay/whiteout.js';

/**
 * The layer engine (src/ops/overlay) applied with a witness: the same `applyEntry`, on a tree that
 * records every name it loses and every file body it gains. From that record `analyze` knows, for
 * every regular-file body stored in any layer, whether the final image shows it and, if not, which
 * layer hid it and how (docs/analyze.md). Headers only: no file content is read here.
 */

/** Why a stored copy is not in the final image. */
export type HiddenCause = 'overwritten' | 'removed' | 'opaque';

/** What replaced an overwritten copy, as far as headers tell (hashes settle `same-size`). */
export type RewriteKind = 'attributes' | 'content' | 'same-size' | 'link' | 'type';

export interface FileAttributes {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** `SCHILY.xattr.*` records, values as hex, keys sorted (compared as a whole). */
  xattrs: string;
}

/** One file body stored in a layer that the final image does not show. */
export interface HiddenCopy {
  /** Path of the copy's last name when it was hidden (no leading slash). */
  path: string;
  bytes: number;
  /** The member holding the body. */
  source: ContentSource;
  /** Layer whose entry hid it. */
  hiddenBy: number;
  cause: HiddenCause;
  /** The entry that hid it, as written (cleaned): the overwriting member, the whiteout's target, the opaque directory. */
  hiddenAt: string;
  /** `overwritten` only: what took the copy's place. */
  rewrite?: {kind: RewriteKind; source?: ContentSource; before: FileAttributes; after: FileAttributes};
}

/** A name that existed and was removed: squash --from-layer N writes a whiteout for those still gone at the end. */
export interface RemovedName {
  path: string;
  /** Layer in which the name came into being. */
  createdAt: number;
  /** Layer whose entry removed it. */
  removedAt: number;
}

export interface TrackedLayer {
  index: number;
  /** Size of the uncompressed layer tar. */
  tarBytes: number;
  entries: number;
  /** Non-directory paths this layer adds, replaces, and removes (a deleted directory counts everything below it). */
  added: number;
  changed: number;
  removed: number;
  /** Regular-file body bytes stored in this layer, and how many bodies. */
  storedBytes: number;
  storedFiles: number;
}

export interface TrackedImage {
  tree: MergedTree;
  layers: TrackedLayer[];
  hidden: HiddenCopy[];
  removedNames: RemovedName[];
  warnings: string[];
}


interface EntryContext {
  layer: number;
  entry: HeaderEntry;
  cause: HiddenCause;
  /** Cleaned path of what the entry targets (see HiddenCopy.hiddenAt). */
  target: string;
  /** The node this (non-whiteout) entry replaced, while its replacement is pending. */
  replaced?: {parent: TreeNode; name: string; counted: boolean} | undefined;
}

export function attributesOfInode(inode: Inode): FileAttributes {
  return {mode: inode.mode, uid: inode.uid, gid: inode.gid, mtime: inode.mtime, xattrs: xattrText(inode.pax)};
}

function xattrText(pax: Map<string, Buffer> | undefined): string {
  if (!pax) return '';
  return [...xattrsOf(pax)]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v.toString('hex')}`)
    .join(';');
}

/** A MergedTree that reports the names it loses and gains to the tracker. */
class WitnessTree extends MergedTree {
  ctx: EntryContext | undefined;
  constructor(private readonly tracker: Tracker) {
    super();
  }

  override remove(node: TreeNode): void {
    super.remove(node);
    if (this.ctx) this.tracker.removed(node, this.ctx);
  }

  override addNode(parent: TreeNode, name: string, inode: Inode, writtenAt: number, createdAt: number): TreeNode {
    const fresh = inode.names.size === 0;
    const node = super.addNode(parent, name, inode, writtenAt, createdAt);
    if (this.ctx) this.tracker.added(node, fresh, this.ctx);
    return node;
  }
}

class Tracker {
  readonly hidden: HiddenCopy[] = [];
  readonly removedNames: RemovedName[] = [];
  /** Inodes already recorded as hidden (a removed subtree may hold several names of one file). */
  readonly #recorded = new WeakSet<Inode>();
  current!: TrackedLayer;

  removed(top: TreeNode, ctx: EntryContext): void {
    const {layer} = ctx;
    const stack: TreeNode[] = [top];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (n.children) for (const c of n.children.values()) stack.push(c);
      const path = n.path;
      this.removedNames.push({path, createdAt: n.createdAt, removedAt: layer});
      const replacedHere = n === top && ctx.cause === 'overwritten';
      const fromBelow = n.type !== 'dir' && n.createdAt < layer;
      if (replacedHere) ctx.replaced = {parent: n.parent!, name: n.name, counted: fromBelow};
      else if (fromBelow) this.current.removed++;
      const inode = n.inode;
      if (n.type !== 'file' || inode.names.size > 0 || inode.size === 0 || !inode.source || this.#recorded.has(inode)) continue;
      this.#recorded.add(inode);
      const copy: HiddenCopy = {path, bytes: inode.size, source: inode.source, hiddenBy: layer, cause: replacedHere ? 'overwritten' : ctx.cause === 'overwritten' ? 'removed' : ctx.cause, hiddenAt: ctx.target};
      if (replacedHere) copy.rewrite = rewriteOf(inode, ctx);
      this.hidden.push(copy);
    }
  }

  added(node: TreeNode, fresh: boolean, ctx: EntryContext): void {
    if (fresh && node.type === 'file') {
      this.current.storedBytes += node.inode.size;
      this.current.storedFiles++;
    }
    if (node.type === 'dir' || node.writtenAt !== ctx.layer) return; // implicit parent directories
    const r = ctx.replaced;
    if (r && r.parent === node.parent && r.name === node.name) {
      if (r.counted) this.current.changed++;
      else this.current.added++;
      ctx.replaced = undefined;
    } else this.current.added++;
  }

  /** An entry is done: a replaced non-directory that became a directory counts as removed. */
  settle(ctx: EntryContext): void {
    if (ctx.replaced?.counted) this.current.removed++;
    ctx.replaced = undefined;
  }
}

function rewriteOf(old: Inode, ctx: EntryContext): NonNullable<HiddenCopy['rewrite']> {
  const e = ctx.entry;
  const before = attributesOfInode(old);
  const after: FileAttributes = {mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, mtime: e.mtime, xattrs: xattrText(e.pax)};
  if (e.type === 'hardlink') return {kind: 'link', before, after};
  if (e.type !== 'file') return {kind: 'type', before, after};
  const source: ContentSource = {layer: ctx.layer, headerOffset: e.headerOffset, dataOffset: e.dataOffset, name: e.name, size: e.size};
  return {kind: e.size === old.size ? 'same-size' : 'content', source, before, after};
}

function entryContext(layer: number, entry: HeaderEntry): EntryContext {
  const name = cleanPath(entry.name);
  const slash = name.lastIndexOf('/');
  const dir = slash >= 0 ? name.slice(0, slash) : '';
  const wh = whiteoutKind(name.slice(slash + 1));
  if (wh.kind === 'whiteout') return {layer, entry, cause: 'removed', target: dir === '' ? wh.target : `${dir}/${wh.target}`};
  if (wh.kind === 'opaque') return {layer, entry, cause: 'opaque', target: dir};
  return {layer, entry, cause: 'overwritten', target: name};
}

/**
 * Applies an image's layers in order, as mergeLayers does, recording what each entry hides. Header
 * lists are read ahead at most `concurrency` layers beyond the one being applied, and each is dropped
 * once applied, so memory holds the tree plus a few layers' headers however many layers there are.
 */
export async function trackLayers(layers: readonly Layer[], options: {concurrency?: number} = {}): Promise<TrackedImage> {
  const tracker = new Tracker();
  const tree = new WitnessTree(tracker);
  const warnings: string[] = [];
  const ahead = Math.max(1, options.concurrency ?? Math.min(4, os.availableParallelism()));
  const reads: Array<Promise<{entries: HeaderEntry[]; tarBytes: number}> | undefined> = [];
  const start = (i: number): void => {
    if (i >= layers.length || reads[i]) return;
    const p = readHeaders(layers[i]!);
    p.catch(() => {}); // surfaced in order below
    reads[i] = p;
  };
  for (let i = 0; i < ahead; i++) start(i);
  const out: TrackedLayer[] = [];
  for (const [index, layer] of layers.entries()) {
    start(index);
    const {entries, tarBytes} = await reads[index]!;
    reads[index] = undefined;
    start(index + ahead);
    const stats: TrackedLayer = {index, tarBytes, entries: entries.length, added: 0, changed: 0, removed: 0, storedBytes: 0, storedFiles: 0};
    tracker.current = stats;
    const apply = {tree, layer: index, label: layer.label, warnings};
    for (const entry of entries) {
      const ctx = entryContext(index, entry);
      tree.ctx = ctx;
      applyEntry(apply, entry as TarEntry);
      tracker.settle(ctx);
    }
    tree.ctx = undefined;
    out.push(stats);
  }
  return {tree, layers: out, hidden: tracker.hidden, removedNames: tracker.removedNames, warnings};
}
