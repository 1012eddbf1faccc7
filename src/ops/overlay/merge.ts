import os from 'node:os';
import pLimit from 'p-limit';
import type {Layer} from '../../model/image.js';
import {walkTar, type TarEntry} from '../../tar/walk.js';
import {applyEntry} from './apply.js';
import {openLayerTar} from './layer-tar.js';
import {MergedTree, type TreeNode} from './tree.js';

/** What one layer contributed, measured while its headers were read. */
export interface LayerStats {
  index: number;
  label: string;
  /** Size of the uncompressed layer tar. */
  tarBytes: number;
  entries: number;
}

/** The directories and names of a tree at one moment (squash diffs the merged view against it). */
export interface TreeSnapshot {
  /** Children by name; `undefined` marks a non-directory. */
  children: Map<string, TreeSnapshot | undefined>;
}

export interface MergedView {
  tree: MergedTree;
  layers: LayerStats[];
  warnings: string[];
  /** The tree after the layers below `snapshotBefore`, when asked for. */
  lower?: TreeSnapshot;
}

export interface MergeOptions {
  /** Take a snapshot of the tree after layers [0, snapshotBefore). */
  snapshotBefore?: number;
  /** Layers read ahead concurrently (their headers only); applied strictly in order. */
  concurrency?: number;
}

/** A tar entry without its raw header bytes (kept entries must not pin the chunks they came in). */
export type HeaderEntry = Omit<TarEntry, 'headerBytes'>;

/**
 * The merged view of an image's layers, built from tar headers alone: no file content is read.
 * Layers are read ahead concurrently (decompression runs on libuv's pool) into header lists, which
 * are applied strictly in layer order.
 */
export async function mergeLayers(layers: readonly Layer[], options: MergeOptions = {}): Promise<MergedView> {
  const tree = new MergedTree();
  const warnings: string[] = [];
  const stats: LayerStats[] = [];
  const limit = pLimit(Math.max(1, options.concurrency ?? Math.min(4, os.availableParallelism())));
  const reads = layers.map((layer) => limit(() => readHeaders(layer)));
  // Failures surface in order below; keep later ones from being reported as unhandled.
  for (const r of reads) r.catch(() => {});
  let lower: TreeSnapshot | undefined;
  try {
    for (const [index, layer] of layers.entries()) {
      if (index === options.snapshotBefore) lower = snapshot(tree.root);
      const {entries, tarBytes} = await reads[index]!;
      const ctx = {tree, layer: index, label: layer.label, warnings};
      for (const entry of entries) applyEntry(ctx, entry as TarEntry);
      stats.push({index, label: layer.label, tarBytes, entries: entries.length});
    }
  } finally {
    limit.clearQueue();
  }
  if (options.snapshotBefore !== undefined && lower === undefined) lower = snapshot(tree.root);
  return lower ? {tree, layers: stats, warnings, lower} : {tree, layers: stats, warnings};
}

/** A layer's entries (headers only, no bodies kept) and its tar's size: one sequential pass. */
export async function readHeaders(layer: Layer): Promise<{entries: HeaderEntry[]; tarBytes: number}> {
  const tar = await openLayerTar(layer);
  try {
    const entries: HeaderEntry[] = [];
    const walk = walkTar(tar.reader);
    for (;;) {
      const next = await walk.next();
      if (next.done) break;
      // Header bytes of a streamed layer are views into large chunks: never keep them.
      const {headerBytes: _drop, ...rest} = next.value;
      entries.push(rest);
    }
    return {entries, tarBytes: await tar.finish()};
  } finally {
    await tar.close();
  }
}

export function snapshot(node: TreeNode): TreeSnapshot {
  const children = new Map<string, TreeSnapshot | undefined>();
  for (const [name, child] of node.children ?? []) children.set(name, child.children ? snapshot(child) : undefined);
  return {children};
}
