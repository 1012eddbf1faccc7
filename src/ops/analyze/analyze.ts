import {layerHistory} from '../../model/config.js';
import type {Archive, Image} from '../../model/image.js';
import type {Platform} from '../../model/platform.js';
import {resolveSettings, type SettingsInput} from '../../settings.js';
import type {ContentSource, Inode} from '../overlay/tree.js';
import {pickImage} from '../select.js';
import {hashMembers, memberKey} from './hash.js';
import {buildSizeTree, type SizeNode} from './sizes.js';
import {bestSquash, predictSquash, type SquashOption} from './squash-plan.js';
import {trackLayers, type FileAttributes, type HiddenCause, type HiddenCopy, type RewriteKind} from './track.js';

/**
 * `ferry analyze`: where an image's bytes go. Definitions (docs/analyze.md):
 *
 * - stored bytes: the bodies of every regular-file member of every layer tar (headers, padding and
 *   hard-link entries carry no body and are not counted);
 * - final bytes: the bodies the final image shows, each file once however many hard links name it;
 * - reclaimable bytes: stored bytes the final image does not show — every copy that a later layer
 *   overwrote (also when only its attributes changed), removed with a whiteout (a file, or a whole
 *   directory), or hid under an opaque directory; never the copy that is kept. So stored = final +
 *   reclaimable, exactly;
 * - duplicate bytes: the same non-empty content at several final paths (distinct files, not hard
 *   links), reported apart: removing them changes the image's content, squashing does not;
 * - efficiency: final / stored (1 for an image that stores no bytes).
 *
 * Everything comes from tar headers, except content hashes where headers cannot answer: an
 * overwritten copy with the same size as its replacement (attribute-only rewrite, or new content?)
 * and final files that share their size with another (duplicates?). `hash: false` skips both.
 */

export interface AnalyzeOptions {
  /** The image to analyze when the archive holds several (name, image ID or manifest digest). */
  images?: readonly string[];
  platform?: Platform;
  note?: (message: string) => void;
  /** Hash the bodies headers cannot tell apart (default true); false: headers only. */
  hash?: boolean;
  /** How many paths, hiding entries and duplicate groups to list (0: all; default 10). */
  top?: number;
  /** Also build `sizes`, the tree the HTML picture draws (not part of the JSON document). */
  sizes?: boolean;
  settings?: SettingsInput;
}

export interface AnalyzedLayer {
  index: number;
  digest: string;
  diffId: string;
  mediaType: string;
  /** The blob as stored. */
  compressedBytes: number;
  /** The layer tar. */
  uncompressedBytes: number;
  /** The history line that made the layer (created_by, else comment). */
  createdBy: string | null;
  /** Non-directory paths: new, replacing a path of the layers below, deleted from the layers below. */
  files: {added: number; changed: number; removed: number};
  /** File bodies stored in this layer … */
  storedBytes: number;
  storedFiles: number;
  /** … of which the final image shows … */
  keptBytes: number;
  /** … and does not. */
  reclaimableBytes: number;
  /** Bytes of copies in lower layers (or earlier in this one) that this layer's entries hide. */
  hidesBytes: number;
}

export interface HiddenCopyReport {
  /** Layer that stores the copy. */
  layer: number;
  bytes: number;
  /** Layer whose entry hides it. */
  hiddenBy: number;
  cause: HiddenCause;
  /** overwritten: what replaced it; `same-size` when content hashes were off. */
  rewrite: RewriteKind | null;
  /** overwritten by a file: the attributes that differ (mode, owner, mtime, xattrs). */
  changed: string[];
  /** sha256 of the copy, when it was hashed. */
  sha256: string | null;
}

export interface ReclaimablePath {
  path: string;
  bytes: number;
  copies: HiddenCopyReport[];
  /** The copy the final image shows at this path, if any. */
  final: {layer: number; bytes: number; mode: number} | null;
}

export interface HidingEntry {
  /** Layer of the entry. */
  layer: number;
  /** What it targets: the overwritten path, the whiteout's target, the opaque directory. */
  path: string;
  cause: HiddenCause;
  files: number;
  bytes: number;
}

export interface DuplicateGroup {
  sha256: string;
  bytesEach: number;
  /** Distinct files (inodes) holding it. */
  copies: number;
  /** Every final path holding it (hard links included), sorted. */
  paths: string[];
  /** bytesEach * (copies - 1). */
  reclaimableBytes: number;
  /** Layers storing the copies. */
  layers: number[];
}

export interface AnalyzeResult {
  image: {names: string[]; configDigest: string; manifestDigest: string | null; platform: Platform; created: string | null};
  totals: {
    layers: number;
    compressedBytes: number;
    uncompressedBytes: number;
    storedBytes: number;
    storedFiles: number;
    finalBytes: number;
    finalFiles: number;
    reclaimableBytes: number;
    reclaimableFiles: number;
    duplicateBytes: number;
    efficiency: number;
    /** Stored bytes of layers 1..top (dive's "user" bytes: the base layer left out). */
    userStoredBytes: number;
    /** reclaimableBytes / userStoredBytes (dive's userWastedPercent, a ratio). */
    userReclaimableRatio: number;
  };
  layers: AnalyzedLayer[];
  reclaimable: {
    bytes: number;
    byCause: Record<HiddenCause, number>;
    byRewrite: Record<RewriteKind, number>;
    /** Paths by reclaimable bytes, largest first (top N). */
    paths: ReclaimablePath[];
    /** The entries that hid the bytes, largest first (top N): `rm -rf /x` is one line. */
    hidingEntries: HidingEntry[];
  };
  /** count: every group; groups: the top N by reclaimable bytes. */
  duplicates: {bytes: number; count: number; groups: DuplicateGroup[]};
  squash: {options: SquashOption[]; best: SquashOption | null};
  /** Content hashes read (see the module comment for when). */
  hashing: {enabled: boolean; files: number; bytes: number; rewrites: number; duplicateCandidates: number};
  warnings: string[];
  /** Only with `sizes: true`: the final file system with the reclaimable copies, for the picture. */
  sizes?: SizeNode;
}

/** `ferry analyze`: picks the image (--image, --platform) and analyzes it. */
export async function analyzeArchive(archive: Archive, options: AnalyzeOptions = {}): Promise<AnalyzeResult> {
  const picked = await pickImage(archive, options.images ?? [], {...(options.platform ? {platform: options.platform} : {}), ...(options.note ? {note: options.note} : {})});
  return analyzeImage(picked.image, picked.names, options);
}

const byPath = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export async function analyzeImage(image: Image, names: readonly string[], options: AnalyzeOptions = {}): Promise<AnalyzeResult> {
  const settings = resolveSettings(options.settings);
  const top = options.top ?? 10;
  const limit = <T>(list: T[]): T[] => (top > 0 ? list.slice(0, top) : list);
  const concurrency = Math.max(1, Math.min(4, settings.workers || 1));
  const tracked = await trackLayers(image.layers, {concurrency});
  const L = image.layers.length;

  // Final files (each inode once) and the candidates for duplicate content: files sharing a size.
  const finals: Inode[] = [];
  const finalPaths = new Map<Inode, string[]>();
  for (const node of tracked.tree.walk()) {
    if (node.type !== 'file') continue;
    let paths = finalPaths.get(node.inode);
    if (!paths) {
      finalPaths.set(node.inode, (paths = []));
      finals.push(node.inode);
    }
    paths.push(`/${node.path}`);
  }
  const bySize = new Map<number, Inode[]>();
  for (const inode of finals) {
    if (inode.size === 0) continue;
    const list = bySize.get(inode.size);
    if (list) list.push(inode);
    else bySize.set(inode.size, [inode]);
  }
  const duplicateCandidates = [...bySize.values()].filter((l) => l.length > 1).flat();
  const sameSize = tracked.hidden.filter((h) => h.rewrite?.kind === 'same-size');

  const hashing = options.hash !== false;
  const wanted: ContentSource[] = [];
  if (hashing) {
    for (const h of sameSize) wanted.push(h.source, h.rewrite!.source!);
    for (const inode of duplicateCandidates) wanted.push(inode.source!);
  }
  const hashed = wanted.length > 0 ? await hashMembers(image.layers, wanted, {concurrency}) : {digests: new Map<string, string>(), files: 0, bytes: 0};
  const digestOf = (s: ContentSource | undefined): string | null => (s ? (hashed.digests.get(memberKey(s)) ?? null) : null);
  if (hashing) {
    for (const h of sameSize) {
      const a = digestOf(h.source);
      const b = digestOf(h.rewrite!.source);
      if (a !== null && b !== null) h.rewrite!.kind = a === b ? 'attributes' : 'content';
    }
  }

  // Duplicate content among final files.
  const groups = new Map<string, Inode[]>();
  for (const inode of duplicateCandidates) {
    const digest = digestOf(inode.source);
    if (digest === null) continue;
    const list = groups.get(digest);
    if (list) list.push(inode);
    else groups.set(digest, [inode]);
  }
  const duplicates: DuplicateGroup[] = [...groups]
    .filter(([, list]) => list.length > 1)
    .map(([sha256, list]) => ({
      sha256,
      bytesEach: list[0]!.size,
      copies: list.length,
      paths: list.flatMap((i) => finalPaths.get(i)!).sort(byPath),
      reclaimableBytes: list[0]!.size * (list.length - 1),
      layers: [...new Set(list.map((i) => i.source!.layer))].sort((a, b) => a - b),
    }))
    .sort((a, b) => b.reclaimableBytes - a.reclaimableBytes || byPath(a.sha256, b.sha256));
  const duplicateBytes = duplicates.reduce((n, g) => n + g.reclaimableBytes, 0);

  // Per layer.
  const history = layerHistory(image.config.parsed);
  const kept = new Array<number>(L).fill(0);
  for (const inode of finals) kept[inode.source!.layer]! += inode.size;
  const reclaimableIn = new Array<number>(L).fill(0);
  const hides = new Array<number>(L).fill(0);
  for (const h of tracked.hidden) {
    reclaimableIn[h.source.layer]! += h.bytes;
    hides[h.hiddenBy]! += h.bytes;
  }
  const layers: AnalyzedLayer[] = image.layers.map((layer, i) => {
    const t = tracked.layers[i]!;
    return {
      index: i,
      digest: layer.descriptor.digest,
      diffId: layer.diffId,
      mediaType: layer.descriptor.mediaType,
      compressedBytes: layer.descriptor.size,
      uncompressedBytes: t.tarBytes,
      createdBy: history[i]?.created_by ?? history[i]?.comment ?? null,
      files: {added: t.added, changed: t.changed, removed: t.removed},
      storedBytes: t.storedBytes,
      storedFiles: t.storedFiles,
      keptBytes: kept[i]!,
      reclaimableBytes: reclaimableIn[i]!,
      hidesBytes: hides[i]!,
    };
  });

  // Reclaimable bytes by path, by cause, by hiding entry.
  const byCause: Record<HiddenCause, number> = {overwritten: 0, removed: 0, opaque: 0};
  const byRewrite: Record<RewriteKind, number> = {attributes: 0, content: 0, 'same-size': 0, link: 0, type: 0};
  const paths = new Map<string, ReclaimablePath>();
  const hiders = new Map<string, HidingEntry>();
  for (const h of tracked.hidden) {
    byCause[h.cause] += h.bytes;
    if (h.rewrite) byRewrite[h.rewrite.kind] += h.bytes;
    const path = `/${h.path}`;
    let p = paths.get(path);
    if (!p) {
      const node = tracked.tree.physical(h.path);
      const final = node?.type === 'file' ? {layer: node.inode.source!.layer, bytes: node.inode.size, mode: node.inode.mode} : null;
      paths.set(path, (p = {path, bytes: 0, copies: [], final}));
    }
    p.bytes += h.bytes;
    p.copies.push(copyReport(h, digestOf(h.source)));
    const key = `${h.hiddenBy}\0${h.cause}\0${h.hiddenAt}`;
    let e = hiders.get(key);
    if (!e) hiders.set(key, (e = {layer: h.hiddenBy, path: `/${h.hiddenAt}`, cause: h.cause, files: 0, bytes: 0}));
    e.files++;
    e.bytes += h.bytes;
  }
  for (const p of paths.values()) p.copies.sort((a, b) => a.layer - b.layer || a.hiddenBy - b.hiddenBy);
  const sortedPaths = [...paths.values()].sort((a, b) => b.bytes - a.bytes || byPath(a.path, b.path));
  const sortedHiders = [...hiders.values()].sort((a, b) => b.bytes - a.bytes || a.layer - b.layer || byPath(a.path, b.path));

  const storedBytes = layers.reduce((n, l) => n + l.storedBytes, 0);
  const finalBytes = finals.reduce((n, i) => n + i.size, 0);
  const reclaimableBytes = tracked.hidden.reduce((n, h) => n + h.bytes, 0);
  const userStoredBytes = storedBytes - (layers[0]?.storedBytes ?? 0);
  const squashOptions = predictSquash(
    tracked.tree,
    tracked.removedNames,
    tracked.layers.map((l) => l.tarBytes),
    tracked.hidden,
  );
  const best = bestSquash(squashOptions);
  const parsed = image.config.parsed;
  const platform: Platform = {os: image.platform.os, architecture: image.platform.architecture};
  if (image.platform.variant) platform.variant = image.platform.variant;
  return {
    image: {names: [...names], configDigest: image.config.digest, manifestDigest: image.manifest?.digest ?? null, platform, created: typeof parsed.created === 'string' ? parsed.created : null},
    totals: {
      layers: L,
      compressedBytes: layers.reduce((n, l) => n + l.compressedBytes, 0),
      uncompressedBytes: layers.reduce((n, l) => n + l.uncompressedBytes, 0),
      storedBytes,
      storedFiles: layers.reduce((n, l) => n + l.storedFiles, 0),
      finalBytes,
      finalFiles: finals.length,
      reclaimableBytes,
      reclaimableFiles: tracked.hidden.length,
      duplicateBytes,
      efficiency: storedBytes === 0 ? 1 : finalBytes / storedBytes,
      userStoredBytes,
      userReclaimableRatio: userStoredBytes > 0 ? reclaimableBytes / userStoredBytes : reclaimableBytes > 0 ? 1 : 0,
    },
    layers,
    reclaimable: {bytes: reclaimableBytes, byCause, byRewrite, paths: limit(sortedPaths), hidingEntries: limit(sortedHiders)},
    duplicates: {bytes: duplicateBytes, count: duplicates.length, groups: limit(duplicates)},
    squash: {options: squashOptions, best: best ?? null},
    hashing: {enabled: hashing, files: hashed.files, bytes: hashed.bytes, rewrites: hashing ? sameSize.length : 0, duplicateCandidates: hashing ? duplicateCandidates.length : 0},
    warnings: tracked.warnings,
    ...(options.sizes ? {sizes: buildSizeTree(tracked.tree, tracked.hidden)} : {}),
  };
}

function copyReport(h: HiddenCopy, sha256: string | null): HiddenCopyReport {
  return {
    layer: h.source.layer,
    bytes: h.bytes,
    hiddenBy: h.hiddenBy,
    cause: h.cause,
    rewrite: h.rewrite?.kind ?? null,
    changed: h.rewrite && (h.rewrite.kind === 'attributes' || h.rewrite.kind === 'content' || h.rewrite.kind === 'same-size') ? changedAttributes(h.rewrite.before, h.rewrite.after) : [],
    sha256,
  };
}

export function changedAttributes(before: FileAttributes, after: FileAttributes): string[] {
  const out: string[] = [];
  if (before.mode !== after.mode) out.push('mode');
  if (before.uid !== after.uid || before.gid !== after.gid) out.push('owner');
  if (before.mtime !== after.mtime) out.push('mtime');
  if (before.xattrs !== after.xattrs) out.push('xattrs');
  return out;
}
