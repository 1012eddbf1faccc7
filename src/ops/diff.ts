import {FerryError, printable, UsageError} from '../errors.js';
import {isRecord} from '../model/descriptor.js';
import type {Archive, Image, Layer} from '../model/image.js';
import {formatPlatform, type Platform} from '../model/platform.js';
import {xattrsOf} from '../tar/pax.js';
import {cleanPath} from '../tar/walk.js';
import {hashMembers, memberKey} from './analyze/hash.js';
import {mergeLayers} from './overlay/merge.js';
import {compareNames, type ContentSource, type NodeType, type TreeNode} from './overlay/tree.js';
import {pickImage} from './select.js';

/**
 * `ferry diff A B`: what differs between two images, as a container would see them (docs/analyze.md
 * has the --json shape). Both file trees come from the layer engine (tar headers only); contents are
 * compared by size first, then — only for files of equal size not stored in the very same member of
 * a shared layer — by sha256. Modification times (of files, directories, the config and history
 * entries) are left out unless `times` is set: rebuilding the same thing stamps new times, and a
 * content diff must not call that a change.
 */

export interface DiffOptions {
  /** Only this path and what is below it (absolute, inside the image). */
  path?: string;
  /** Paths to leave out (globs, see matchesGlob); a matched directory takes everything below it. */
  ignore?: readonly string[];
  /** Also compare mtimes and the config's and history's `created` times. */
  times?: boolean;
}

export interface DiffSelectOptions extends DiffOptions {
  /** --image: one for both sources, two for A and B, or two for the one archive. */
  images?: readonly string[];
  platform?: Platform;
  note?: (message: string) => void;
}

export type FileDifference = 'type' | 'content' | 'mode' | 'owner' | 'mtime' | 'xattrs' | 'linkname' | 'device';

export interface FileState {
  type: NodeType;
  /** Body bytes (regular files; 0 otherwise). */
  size: number;
  /** Given for both sides of a `modified` regular file; null elsewhere. */
  sha256: string | null;
  /** Permission and special bits. */
  mode: number;
  uid: number;
  gid: number;
  /** ISO 8601, UTC. */
  mtime: string;
  /** Symlink target. */
  linkname: string | null;
  /** Extended attributes (PAX SCHILY.xattr.*): name → value as hex. */
  xattrs: Record<string, string>;
  /** char/block devices: "major,minor". */
  device: string | null;
  /** The layer (of its image) whose entry last wrote the path (-1: a parent nothing described). */
  layer: number;
}

export interface FileChange {
  /** Absolute path; directories end in '/'. */
  path: string;
  change: 'added' | 'removed' | 'modified';
  /** What differs (modified only; empty for added and removed). */
  differences: FileDifference[];
  before: FileState | null;
  after: FileState | null;
}

export interface ValueChange {
  name: string;
  before: string | null;
  after: string | null;
}

export interface FieldChange {
  field: string;
  before: unknown;
  after: unknown;
}

export interface HistoryChange {
  index: number;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

export interface DiffSide {
  source: string;
  names: string[];
  configDigest: string;
  manifestDigest: string | null;
  platform: Platform;
  layers: Array<{index: number; digest: string; diffId: string; size: number}>;
}

export interface ConfigDiff {
  env: ValueChange[];
  labels: ValueChange[];
  exposedPorts: {added: string[]; removed: string[]};
  volumes: {added: string[]; removed: string[]};
  entrypoint: {before: unknown; after: unknown} | null;
  cmd: {before: unknown; after: unknown} | null;
  user: {before: unknown; after: unknown} | null;
  workingDir: {before: unknown; after: unknown} | null;
  history: HistoryChange[];
  /** Everything else that differs: platform, stopSignal, healthcheck, shell, onBuild, author, created (with times)… */
  other: FieldChange[];
}

export interface DiffResult {
  /** No file and no config difference (times left out unless asked for). */
  equal: boolean;
  /** The very same image (config digests equal). */
  identical: boolean;
  a: DiffSide;
  b: DiffSide;
  summary: {added: number; removed: number; modified: number; config: number; sharedLayers: number};
  files: FileChange[];
  layers: {
    /** Blobs both images use (same digest), with their positions. */
    shared: Array<{digest: string; diffId: string; a: number; b: number}>;
    /** Same layer content stored differently (same diffID, other digest: another compression). */
    sameContent: Array<{diffId: string; a: {index: number; digest: string}; b: {index: number; digest: string}}>;
    /** How many bottom layers are the same content in both (a shared base). */
    commonBase: number;
  };
  config: ConfigDiff;
  warnings: string[];
}

interface Side {
  image: Image;
  names: string[];
  source: string;
}

/** Picks A and B from one or two archives, by the --image rules above, then diffs them. */
export async function diffArchives(archiveA: Archive, archiveB: Archive | undefined, options: DiffSelectOptions = {}): Promise<DiffResult> {
  const images = options.images ?? [];
  const pick = {...(options.platform ? {platform: options.platform} : {}), ...(options.note ? {note: options.note} : {})};
  let a: Side;
  let b: Side;
  if (!archiveB) {
    if (images.length !== 2) throw new UsageError(`diff with one source compares two of its images: give --image twice (got ${images.length})`);
    const pa = await pickImage(archiveA, [images[0]!], pick);
    const pb = await pickImage(archiveA, [images[1]!], pick);
    a = {image: pa.image, names: pa.names, source: archiveA.location};
    b = {image: pb.image, names: pb.names, source: archiveA.location};
  } else {
    if (images.length > 2) throw new UsageError(`--image: at most two (one for each source), got ${images.length}`);
    const pa = await pickImage(archiveA, images.length === 2 ? [images[0]!] : images, pick);
    const pb = await pickImage(archiveB, images.length === 2 ? [images[1]!] : images, pick);
    a = {image: pa.image, names: pa.names, source: archiveA.location};
    b = {image: pb.image, names: pb.names, source: archiveB.location};
  }
  return diffImages(a, b, options);
}

function sideOf(s: Side): DiffSide {
  const platform: Platform = {os: s.image.platform.os, architecture: s.image.platform.architecture};
  if (s.image.platform.variant) platform.variant = s.image.platform.variant;
  return {
    source: s.source,
    names: [...s.names],
    configDigest: s.image.config.digest,
    manifestDigest: s.image.manifest?.digest ?? null,
    platform,
    layers: s.image.layers.map((l, index) => ({index, digest: l.descriptor.digest, diffId: l.diffId, size: l.descriptor.size})),
  };
}

export async function diffImages(a: Side, b: Side, options: DiffOptions = {}): Promise<DiffResult> {
  const times = options.times === true;
  const root = options.path === undefined ? '' : cleanPath(options.path.replace(/^\/+/, ''));
  if (root.startsWith('..')) throw new UsageError(`--path "${options.path}": the path must stay inside the image`);
  const ignore = (options.ignore ?? []).map(globMatcher);
  const identical = a.image.config.digest === b.image.config.digest;

  // Same config digest: same diff_ids, so the same file system; nothing to read.
  const views = identical ? undefined : await Promise.all([mergeLayers(a.image.layers), mergeLayers(b.image.layers)]);
  const files: Pending[] = [];
  const warnings: string[] = [];
  if (views) {
    warnings.push(...views[0].warnings.map((w) => `A: ${w}`), ...views[1].warnings.map((w) => `B: ${w}`));
    const startA = root === '' ? views[0].tree.root : views[0].tree.physical(root);
    const startB = root === '' ? views[1].tree.root : views[1].tree.physical(root);
    if (!startA && !startB) throw new FerryError('NOT_FOUND', `--path ${options.path}: in neither image`);
    const walker = new Walker(a.image.layers, b.image.layers, times, ignore, files);
    if (root === '') walker.children(startA, startB, '/');
    else walker.pair(startA, startB, `/${root}`);
  }
  await settleContent(files, a.image.layers, b.image.layers);
  const changes: FileChange[] = [];
  for (const p of files) {
    if (p.change === 'modified' && p.differences.length === 0) continue;
    changes.push({path: p.path, change: p.change, differences: p.differences, before: p.before, after: p.after});
  }

  const config = identical ? emptyConfigDiff() : diffConfigs(a.image, b.image, times);
  const configCount = config.env.length + config.labels.length + config.exposedPorts.added.length + config.exposedPorts.removed.length + config.volumes.added.length + config.volumes.removed.length + [config.entrypoint, config.cmd, config.user, config.workingDir].filter((x) => x !== null).length + config.history.length + config.other.length;

  const shared: DiffResult['layers']['shared'] = [];
  const sameContent: DiffResult['layers']['sameContent'] = [];
  const bByDigest = new Map(b.image.layers.map((l, i) => [l.descriptor.digest as string, i]));
  const bByDiff = new Map(b.image.layers.map((l, i) => [l.diffId as string, i]));
  for (const [i, l] of a.image.layers.entries()) {
    const j = bByDigest.get(l.descriptor.digest);
    if (j !== undefined) shared.push({digest: l.descriptor.digest, diffId: l.diffId, a: i, b: j});
    else {
      const k = bByDiff.get(l.diffId);
      if (k !== undefined) sameContent.push({diffId: l.diffId, a: {index: i, digest: l.descriptor.digest}, b: {index: k, digest: b.image.layers[k]!.descriptor.digest}});
    }
  }
  let commonBase = 0;
  while (commonBase < a.image.layers.length && commonBase < b.image.layers.length && a.image.layers[commonBase]!.diffId === b.image.layers[commonBase]!.diffId) commonBase++;

  const count = (c: FileChange['change']): number => changes.filter((x) => x.change === c).length;
  return {
    equal: changes.length === 0 && configCount === 0,
    identical,
    a: sideOf(a),
    b: sideOf(b),
    summary: {added: count('added'), removed: count('removed'), modified: count('modified'), config: configCount, sharedLayers: shared.length},
    files: changes,
    layers: {shared, sameContent, commonBase},
    config,
    warnings,
  };
}

// ---- Files ----

interface Pending {
  path: string;
  change: FileChange['change'];
  differences: FileDifference[];
  before: FileState | null;
  after: FileState | null;
  /** Both sides regular files whose content is not settled by headers. */
  content?: {a: ContentSource; b: ContentSource; state: 'same' | 'differs' | 'unknown'};
}

function isoTime(seconds: number): string {
  const ms = seconds * 1000;
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(seconds);
}

function stateOf(node: TreeNode): FileState {
  const i = node.inode;
  const xattrs: Record<string, string> = {};
  if (i.pax) for (const [k, v] of [...xattrsOf(i.pax)].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) xattrs[k] = v.toString('hex');
  return {
    type: node.type,
    size: node.type === 'file' ? i.size : 0,
    sha256: null,
    mode: i.mode,
    uid: i.uid,
    gid: i.gid,
    mtime: isoTime(i.mtime),
    linkname: node.type === 'symlink' ? i.linkname : null,
    xattrs,
    device: node.type === 'char' || node.type === 'block' ? `${i.devmajor},${i.devminor}` : null,
    layer: node.writtenAt,
  };
}

class Walker {
  constructor(
    private readonly layersA: readonly Layer[],
    private readonly layersB: readonly Layer[],
    private readonly times: boolean,
    private readonly ignore: Array<(path: string) => boolean>,
    private readonly out: Pending[],
  ) {}

  #ignored(path: string): boolean {
    return this.ignore.some((m) => m(path));
  }

  /** The children of two directories (either may be missing), in docker export's order. */
  children(a: TreeNode | undefined, b: TreeNode | undefined, prefix: string): void {
    const names = new Set<string>([...(a?.children?.keys() ?? []), ...(b?.children?.keys() ?? [])]);
    for (const name of [...names].sort(compareNames)) this.pair(a?.children?.get(name), b?.children?.get(name), `${prefix}${name}`);
  }

  pair(a: TreeNode | undefined, b: TreeNode | undefined, path: string): void {
    if (this.#ignored(path)) return;
    const shown = (n: TreeNode): string => (n.type === 'dir' ? `${path}/` : path);
    if (a && !b) {
      this.out.push({path: shown(a), change: 'removed', differences: [], before: stateOf(a), after: null});
      if (a.children) this.children(a, undefined, `${path}/`);
      return;
    }
    if (b && !a) {
      this.out.push({path: shown(b), change: 'added', differences: [], before: null, after: stateOf(b)});
      if (b.children) this.children(undefined, b, `${path}/`);
      return;
    }
    if (!a || !b) return;
    const before = stateOf(a);
    const after = stateOf(b);
    const differences: FileDifference[] = [];
    const pending: Pending = {path: a.type === 'dir' && b.type === 'dir' ? `${path}/` : path, change: 'modified', differences, before, after};
    if (a.type !== b.type) differences.push('type');
    else {
      if (a.type === 'file') {
        const sa = a.inode.source!;
        const sb = b.inode.source!;
        if (sa.size !== sb.size) {
          differences.push('content');
          pending.content = {a: sa, b: sb, state: 'differs'};
        } else if (sa.size > 0) {
          // The same member of the same layer content holds both: the same bytes, no need to read them.
          const same = this.layersA[sa.layer]!.diffId === this.layersB[sb.layer]!.diffId && sa.headerOffset === sb.headerOffset && sa.name === sb.name;
          pending.content = {a: sa, b: sb, state: same ? 'same' : 'unknown'};
        }
      }
      if (before.linkname !== after.linkname) differences.push('linkname');
      if (before.device !== after.device) differences.push('device');
    }
    // A symlink's own mode means nothing on Linux (producers write 0777 or 0755): not compared.
    if (before.mode !== after.mode && a.type !== 'symlink' && b.type !== 'symlink') differences.push('mode');
    if (before.uid !== after.uid || before.gid !== after.gid) differences.push('owner');
    if (this.times && a.inode.mtime !== b.inode.mtime) differences.push('mtime');
    if (JSON.stringify(before.xattrs) !== JSON.stringify(after.xattrs)) differences.push('xattrs');
    this.out.push(pending);
    if (a.type === 'dir' || b.type === 'dir') this.children(a.type === 'dir' ? a : undefined, b.type === 'dir' ? b : undefined, `${path}/`);
  }
}

/** Hashes what headers could not settle, and both sides of every file reported as modified. */
async function settleContent(files: Pending[], layersA: readonly Layer[], layersB: readonly Layer[]): Promise<void> {
  if (!files.some((p) => p.content)) return settleContentEmpty(files);
  const wantA: ContentSource[] = [];
  const wantB: ContentSource[] = [];
  for (const p of files) {
    if (!p.content) continue;
    if (p.content.state === 'unknown' || p.differences.length > 0) {
      wantA.push(p.content.a);
      wantB.push(p.content.b);
    }
  }
  const [ha, hb] = await Promise.all([hashMembers(layersA, wantA), hashMembers(layersB, wantB)]);
  for (const p of files) {
    const c = p.content;
    if (!c) {
      // Both empty: the sha256 of nothing, without reading anything.
      if (p.differences.length > 0 && p.before?.type === 'file' && p.after?.type === 'file' && p.before.size === 0 && p.after.size === 0) p.before.sha256 = p.after.sha256 = EMPTY_SHA256;
      continue;
    }
    const da = ha.digests.get(memberKey(c.a));
    const db = hb.digests.get(memberKey(c.b));
    if (c.state === 'unknown' && da !== undefined && db !== undefined && da !== db) p.differences.unshift('content');
    if (p.differences.length > 0) {
      p.before!.sha256 = da ?? null;
      p.after!.sha256 = db ?? null;
    }
  }
}

function settleContentEmpty(files: Pending[]): void {
  for (const p of files) {
    if (p.differences.length > 0 && p.before?.type === 'file' && p.after?.type === 'file' && p.before.size === 0 && p.after.size === 0) p.before.sha256 = p.after.sha256 = EMPTY_SHA256;
  }
}

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * A glob for --ignore, matched against absolute paths: `*` is any run of characters but '/', `**`
 * any run including '/', `?` one character but '/', `[abc]`/`[!abc]` a class. A pattern with a '/'
 * is anchored at the root (`/var/cache/**`, `usr/share/doc`); one without matches a name at any
 * depth (`*.pyc`, `__pycache__`). A path is left out when it or one of its parent directories matches.
 */
export function globMatcher(pattern: string): (path: string) => boolean {
  if (pattern === '') throw new UsageError('--ignore: empty pattern');
  const anchored = pattern.replace(/\/+$/, '').includes('/');
  const body = pattern.replace(/^\/+/, '').replace(/\/+$/, '');
  let re = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '*') {
      if (body[i + 1] === '*') {
        i++;
        if (body[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = body.indexOf(']', i + 2);
      if (end < 0) throw new UsageError(`--ignore "${pattern}": unterminated [ class`);
      let cls = body.slice(i + 1, end);
      if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  const full = new RegExp(`^${re}$`, 's');
  return (path: string): boolean => {
    const parts = path.replace(/^\/+/, '').replace(/\/+$/, '').split('/');
    for (let n = 1; n <= parts.length; n++) {
      if (anchored ? full.test(parts.slice(0, n).join('/')) : full.test(parts[n - 1]!)) return true;
    }
    return false;
  };
}

// ---- Config ----

function emptyConfigDiff(): ConfigDiff {
  return {env: [], labels: [], exposedPorts: {added: [], removed: []}, volumes: {added: [], removed: []}, entrypoint: null, cmd: null, user: null, workingDir: null, history: [], other: []};
}

const same = (x: unknown, y: unknown): boolean => JSON.stringify(x ?? null) === JSON.stringify(y ?? null);

function envMap(env: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (!Array.isArray(env)) return out;
  for (const e of env) {
    if (typeof e !== 'string') continue;
    const eq = e.indexOf('=');
    out.set(eq < 0 ? e : e.slice(0, eq), eq < 0 ? '' : e.slice(eq + 1));
  }
  return out;
}

function stringMap(value: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (isRecord(value)) for (const [k, v] of Object.entries(value)) out.set(k, typeof v === 'string' ? v : JSON.stringify(v));
  return out;
}

function valueChanges(a: Map<string, string>, b: Map<string, string>): ValueChange[] {
  const out: ValueChange[] = [];
  for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const before = a.get(name) ?? null;
    const after = b.get(name) ?? null;
    if (before !== after) out.push({name, before, after});
  }
  return out;
}

function keySetChange(a: unknown, b: unknown): {added: string[]; removed: string[]} {
  const ka = new Set(isRecord(a) ? Object.keys(a) : []);
  const kb = new Set(isRecord(b) ? Object.keys(b) : []);
  return {added: [...kb].filter((k) => !ka.has(k)).sort(), removed: [...ka].filter((k) => !kb.has(k)).sort()};
}

const HANDLED = new Set(['Env', 'Labels', 'ExposedPorts', 'Volumes', 'Entrypoint', 'Cmd', 'User', 'WorkingDir']);

export function diffConfigs(a: Image, b: Image, times: boolean): ConfigDiff {
  const pa = a.config.parsed;
  const pb = b.config.parsed;
  const ca: Record<string, unknown> = isRecord(pa.config) ? pa.config : {};
  const cb: Record<string, unknown> = isRecord(pb.config) ? pb.config : {};
  const change = (x: unknown, y: unknown): {before: unknown; after: unknown} | null => (same(x, y) ? null : {before: x ?? null, after: y ?? null});
  const other: FieldChange[] = [];
  if (formatPlatform(a.platform) !== formatPlatform(b.platform)) other.push({field: 'platform', before: formatPlatform(a.platform), after: formatPlatform(b.platform)});
  for (const key of [...new Set([...Object.keys(ca), ...Object.keys(cb)])].sort()) {
    if (HANDLED.has(key) || same(unlessZero(ca[key]), unlessZero(cb[key]))) continue;
    other.push({field: `config.${key}`, before: ca[key] ?? null, after: cb[key] ?? null});
  }
  for (const key of ['author', 'os.version', 'os.features'] as const) {
    if (!same(pa[key], pb[key])) other.push({field: key, before: pa[key] ?? null, after: pb[key] ?? null});
  }
  if (times && !same(pa.created, pb.created)) other.push({field: 'created', before: pa.created ?? null, after: pb.created ?? null});

  const ha = Array.isArray(pa.history) ? pa.history : [];
  const hb = Array.isArray(pb.history) ? pb.history : [];
  const history: HistoryChange[] = [];
  const comparable = (h: unknown): unknown => {
    if (!isRecord(h) || times) return h;
    const {created: _c, ...rest} = h;
    return rest;
  };
  for (let i = 0; i < Math.max(ha.length, hb.length); i++) {
    const x = ha[i];
    const y = hb[i];
    if (same(comparable(x), comparable(y))) continue;
    history.push({index: i, before: isRecord(x) ? x : null, after: isRecord(y) ? y : null});
  }
  return {
    env: valueChanges(envMap(ca.Env), envMap(cb.Env)),
    labels: valueChanges(stringMap(ca.Labels), stringMap(cb.Labels)),
    exposedPorts: keySetChange(ca.ExposedPorts, cb.ExposedPorts),
    volumes: keySetChange(ca.Volumes, cb.Volumes),
    entrypoint: change(ca.Entrypoint, cb.Entrypoint),
    cmd: change(ca.Cmd, cb.Cmd),
    user: change(emptyAsNull(ca.User), emptyAsNull(cb.User)),
    workingDir: change(emptyAsNull(ca.WorkingDir), emptyAsNull(cb.WorkingDir)),
    history,
    other,
  };
}

/**
 * A container-config field at its zero value means what an absent one means (Docker's Go structs
 * write `"Tty": false`, `"Domainname": ""`; OCI producers and skopeo's conversion omit them).
 */
function unlessZero(v: unknown): unknown {
  if (v === false || v === '' || v === 0 || v === null) return undefined;
  if (Array.isArray(v) && v.length === 0) return undefined;
  if (isRecord(v) && Object.keys(v).length === 0) return undefined;
  return v;
}

/** Docker writes "" and omits alike for User and WorkingDir: both mean the default. */
function emptyAsNull(v: unknown): unknown {
  return v === '' ? null : v;
}

// ---- Text ----

const quote = (v: unknown): string => (v === null || v === undefined ? '(unset)' : typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v));
const short = (sha: string | null): string => (sha ? sha.slice(0, 12) : '?');

function describeState(s: FileState): string {
  if (s.type === 'file') return `file, ${s.size} B, mode ${s.mode.toString(8).padStart(4, '0')}, L${s.layer}`;
  if (s.type === 'symlink') return `symlink -> ${s.linkname}`;
  if (s.type === 'dir') return `directory, mode ${s.mode.toString(8).padStart(4, '0')}`;
  return `${s.type}${s.device ? ` ${s.device}` : ''}`;
}

function describeChange(f: FileChange): string {
  const a = f.before!;
  const b = f.after!;
  const parts: string[] = [];
  for (const d of f.differences) {
    if (d === 'type') parts.push(`type ${a.type} → ${b.type}`);
    else if (d === 'content') parts.push(`content ${a.size} B → ${b.size} B (sha256 ${short(a.sha256)} → ${short(b.sha256)})`);
    else if (d === 'mode') parts.push(`mode ${a.mode.toString(8).padStart(4, '0')} → ${b.mode.toString(8).padStart(4, '0')}`);
    else if (d === 'owner') parts.push(`owner ${a.uid}:${a.gid} → ${b.uid}:${b.gid}`);
    else if (d === 'mtime') parts.push(`mtime ${a.mtime} → ${b.mtime}`);
    else if (d === 'linkname') parts.push(`link ${a.linkname ?? '-'} → ${b.linkname ?? '-'}`);
    else if (d === 'device') parts.push(`device ${a.device ?? '-'} → ${b.device ?? '-'}`);
    else parts.push(`xattrs ${Object.keys(a.xattrs).join(',') || '-'} → ${Object.keys(b.xattrs).join(',') || '-'}`);
  }
  return parts.join('; ');
}

/** The readable report `ferry diff` prints without --json (a removed or added directory is one line). */
export function renderDiff(r: DiffResult): string {
  const name = (s: DiffSide): string => `${s.names[0] ?? '<untagged>'} (${s.configDigest.slice(0, 19)}…, ${formatPlatform(s.platform)}) in ${s.source}`;
  const lines = [`A: ${name(r.a)}`, `B: ${name(r.b)}`];
  if (r.identical) lines.push('the same image (same config digest): nothing differs');
  const shared = r.layers.shared.map((s) => `A${s.a}=B${s.b}`).join(' ');
  lines.push(`layers: A has ${r.a.layers.length}, B has ${r.b.layers.length}; ${r.layers.shared.length} shared blob(s)${shared ? ` (${shared})` : ''}${r.layers.sameContent.length > 0 ? `; ${r.layers.sameContent.length} with the same content stored differently` : ''}; common base: ${r.layers.commonBase} layer(s)`);
  const s = r.summary;
  lines.push('', `files: ${s.added} added, ${s.removed} removed, ${s.modified} modified`);
  let skipUnder: string | undefined;
  for (const f of r.files) {
    if (skipUnder !== undefined && f.path.startsWith(skipUnder)) continue;
    skipUnder = undefined;
    if (f.change === 'modified') {
      lines.push(`  M ${f.path}  ${describeChange(f)}`);
      continue;
    }
    const state = (f.before ?? f.after)!;
    let below = '';
    if (state.type === 'dir') {
      const n = r.files.filter((g) => g.change === f.change && g.path.startsWith(f.path) && g.path !== f.path).length;
      if (n > 0) below = `, and ${n} entr${n === 1 ? 'y' : 'ies'} below it`;
      skipUnder = f.path;
    }
    lines.push(`  ${f.change === 'added' ? 'A' : 'D'} ${f.path}  (${describeState(state)}${below})`);
  }
  const c = r.config;
  const cfg: string[] = [];
  for (const e of c.env) cfg.push(`env ${e.name}: ${quote(e.before)} → ${quote(e.after)}`);
  for (const l of c.labels) cfg.push(`label ${l.name}: ${quote(l.before)} → ${quote(l.after)}`);
  for (const p of c.exposedPorts.added) cfg.push(`exposed port ${p} added`);
  for (const p of c.exposedPorts.removed) cfg.push(`exposed port ${p} removed`);
  for (const v of c.volumes.added) cfg.push(`volume ${v} added`);
  for (const v of c.volumes.removed) cfg.push(`volume ${v} removed`);
  for (const [k, v] of [['entrypoint', c.entrypoint], ['cmd', c.cmd], ['user', c.user], ['workingDir', c.workingDir]] as const) if (v) cfg.push(`${k}: ${quote(v.before)} → ${quote(v.after)}`);
  for (const h of c.history) {
    const what = (x: Record<string, unknown> | null): string => (x ? quote(x.created_by ?? x.comment ?? '') : '(none)');
    cfg.push(`history[${h.index}]: ${what(h.before)} → ${what(h.after)}`);
  }
  for (const o of c.other) cfg.push(`${o.field}: ${quote(o.before)} → ${quote(o.after)}`);
  lines.push('', `config: ${cfg.length === 0 ? 'no differences' : ''}`.trimEnd(), ...cfg.map((x) => `  ${x}`));
  lines.push('', r.equal ? 'equal' : `different: ${s.added + s.removed + s.modified} path(s), ${s.config} config difference(s)`);
  // Names come from a stranger's archive: control characters are shown as \xNN, never sent to the terminal.
  return lines.map(printable).join('\n');
}
