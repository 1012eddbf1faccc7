import {FerryError, printable, UsageError} from '../errors.js';
import {decodeName} from '../tar/header.js';
import type {Archive, Layer} from '../model/image.js';
import {cleanPath, walkTar, type TarEntry} from '../tar/walk.js';
import type {Platform} from '../model/platform.js';
import {openLayerTar} from './overlay/layer-tar.js';
import {mergeLayers} from './overlay/merge.js';
import {pickImage} from './select.js';
import {isFailure, type MergedTree, type NodeType, type TreeNode} from './overlay/tree.js';
import {OPAQUE_MARKER, WHITEOUT_META_PREFIX, whiteoutKind} from './overlay/whiteout.js';

/** One path of a listing. Paths are absolute inside the image; directories end in '/'. */
export interface ListedEntry {
  path: string;
  type: NodeType | 'hardlink' | 'whiteout' | 'opaque';
  /** Permission and special bits (0o7777). */
  mode: number;
  permissions: string;
  uid: number;
  gid: number;
  size: number;
  /** ISO 8601, UTC. */
  mtime: string;
  /**
   * The path's exact bytes (base64), given only when they are not UTF-8 (the tar stored a name in
   * another encoding, shown in `path` as Latin-1): `ferry cat --path-base64` takes them back.
   */
  pathBytes?: string;
  /** Symlink target, or for `hardlink` entries (--layer) the path linked to. */
  linkname?: string;
  /** Other names of the same file (merged view, regular files). */
  links?: string[];
  devmajor?: number;
  devminor?: number;
  /** Merged view: the layer whose entry wrote this path last (-1: a parent directory nothing described). */
  layer?: number;
  /** --layer: what this entry does to the layers below it. */
  change?: 'added' | 'changed' | 'deleted';
}

export interface ListOptions {
  images?: readonly string[];
  platform?: Platform;
  note?: (message: string) => void;
  /** List one layer's own entries instead of the merged tree. */
  layer?: number;
}

export interface Listing {
  image: string;
  entries: ListedEntry[];
  warnings: string[];
}

/** `ferry ls`: the merged tree below `path` (default: everything), or one layer's own changes. */
export async function listImage(archive: Archive, path: string | undefined, options: ListOptions = {}): Promise<Listing> {
  const picked = await pickImage(archive, options.images ?? [], {...(options.platform ? {platform: options.platform} : {}), ...(options.note ? {note: options.note} : {})});
  const image = picked.names[0] ?? picked.image.config.digest;
  const layers = picked.image.layers;
  const wanted = path === undefined ? '' : cleanPath(path.replace(/^\/+/, ''));
  if (wanted.startsWith('..')) throw new UsageError(`"${path}": the path must stay inside the image`);
  if (options.layer !== undefined) {
    if (!Number.isInteger(options.layer) || options.layer < 0 || options.layer >= layers.length) {
      throw new UsageError(`--layer ${options.layer} is out of range: the image has ${layers.length} layer(s), numbered 0 (base) to ${layers.length - 1}`);
    }
    const lower = await mergeLayers(layers.slice(0, options.layer));
    return {image, entries: await layerChanges(layers[options.layer]!, lower.tree, wanted), warnings: lower.warnings};
  }
  const view = await mergeLayers(layers);
  const tree = view.tree;
  let start: TreeNode;
  if (wanted === '') start = tree.root;
  else {
    // A trailing slash asks for what a symlink points to, as ls does.
    const found = path!.endsWith('/') ? tree.resolveFollow(wanted) : tree.lookup(wanted);
    if (isFailure(found)) throw new FerryError('NOT_FOUND', `${path}: no such file or directory in ${image}`);
    start = found;
  }
  const entries: ListedEntry[] = [];
  if (start.parent && !(start.children && path!.endsWith('/'))) entries.push(withBytes(describeNode(start)));
  if (start.children) for (const node of tree.walk(start)) entries.push(withBytes(describeNode(node)));
  return {image, entries, warnings: view.warnings};
}

/**
 * The bytes a listed path stands for: names that were not UTF-8 were decoded as Latin-1
 * (src/tar/header.ts decodeName), so a component whose Latin-1 bytes are not UTF-8 came from them.
 */
export function pathBytes(path: string): Buffer | undefined {
  let foreign = false;
  const parts = path.split('/').map((component) => {
    if (!/[\u0080-\u00ff]/.test(component) || /[^\u0000-\u00ff]/.test(component)) return Buffer.from(component, 'utf8');
    const latin1 = Buffer.from(component, 'latin1');
    if (decodeName(latin1) !== component) return Buffer.from(component, 'utf8');
    foreign = true;
    return latin1;
  });
  if (!foreign) return undefined;
  return Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [p] : [Buffer.from('/'), p])));
}

function withBytes(entry: ListedEntry): ListedEntry {
  const bytes = pathBytes(entry.path);
  return bytes ? {...entry, pathBytes: bytes.toString('base64')} : entry;
}

function describeNode(node: TreeNode): ListedEntry {
  const inode = node.inode;
  const path = `/${node.path}${node.type === 'dir' ? '/' : ''}`;
  const entry: ListedEntry = {
    path,
    type: node.type,
    mode: inode.mode,
    permissions: permissions(node.type, inode.mode),
    uid: inode.uid,
    gid: inode.gid,
    size: node.type === 'file' ? inode.size : 0,
    mtime: isoTime(inode.mtime),
    layer: node.writtenAt,
  };
  if (node.type === 'symlink') entry.linkname = inode.linkname;
  if (node.type === 'char' || node.type === 'block') {
    entry.devmajor = inode.devmajor;
    entry.devminor = inode.devminor;
  }
  if (node.type === 'file' && inode.names.size > 1) entry.links = [...inode.names].filter((n) => n !== node).map((n) => `/${n.path}`).sort();
  return entry;
}

/** A layer's entries as they are, each said to add, change or delete something of the layers below. */
async function layerChanges(layer: Layer, lower: MergedTree, wanted: string): Promise<ListedEntry[]> {
  const out: ListedEntry[] = [];
  const tar = await openLayerTar(layer);
  try {
    const walk = walkTar(tar.reader);
    for (;;) {
      const next = await walk.next();
      if (next.done) break;
      const entry = next.value;
      const name = cleanPath(entry.name);
      if (name === '' || name.startsWith('..')) continue;
      const listed = describeChange(entry, name, lower);
      const listedPath = listed.path.replace(/^\/+|\/+$/g, '');
      if (wanted !== '' && listedPath !== wanted && !listedPath.startsWith(`${wanted}/`)) continue;
      out.push(withBytes(listed));
    }
  } finally {
    await tar.close();
  }
  return out;
}

function describeChange(entry: TarEntry, name: string, lower: MergedTree): ListedEntry {
  const slash = name.lastIndexOf('/');
  const dir = slash >= 0 ? name.slice(0, slash) : '';
  const base = name.slice(slash + 1);
  const common = {mode: entry.mode & 0o7777, uid: entry.uid, gid: entry.gid, size: 0, mtime: isoTime(entry.mtime)};
  const wh = whiteoutKind(base);
  if (wh.kind === 'opaque' || (dir === '' && base.startsWith(WHITEOUT_META_PREFIX) && base !== OPAQUE_MARKER)) {
    if (wh.kind !== 'opaque') return {path: `/${name}`, type: 'whiteout', permissions: '----------', change: 'deleted', ...common};
    return {path: dir === '' ? '/' : `/${dir}/`, type: 'opaque', permissions: '----------', change: 'deleted', ...common};
  }
  if (wh.kind !== 'none') {
    const target = wh.kind === 'whiteout' ? (dir === '' ? wh.target : `${dir}/${wh.target}`) : name;
    return {path: `/${target}`, type: 'whiteout', permissions: '----------', change: 'deleted', ...common};
  }
  const existing = lower.lookup(name);
  const change = isFailure(existing) ? 'added' : 'changed';
  const type = entry.type === 'other' ? 'file' : entry.type;
  const listed: ListedEntry = {
    path: `/${name}${type === 'dir' ? '/' : ''}`,
    type,
    permissions: permissions(type === 'hardlink' ? 'file' : type, entry.mode),
    ...common,
    size: type === 'file' ? entry.size : 0,
    change,
  };
  if (type === 'symlink') listed.linkname = entry.linkname;
  if (type === 'hardlink') listed.linkname = `/${cleanPath(entry.linkname)}`;
  if (type === 'char' || type === 'block') {
    listed.devmajor = entry.devmajor;
    listed.devminor = entry.devminor;
  }
  return listed;
}

function isoTime(seconds: number): string {
  const ms = seconds * 1000;
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(seconds);
}

const TYPE_CHAR: Record<string, string> = {file: '-', dir: 'd', symlink: 'l', char: 'c', block: 'b', fifo: 'p', hardlink: 'h'};

/** `ls -l` style: type letter and rwx with setuid/setgid/sticky folded in. */
export function permissions(type: string, mode: number): string {
  const bit = (mask: number, c: string): string => (mode & mask ? c : '-');
  const special = (exec: number, flag: number, on: string, off: string): string => (mode & flag ? (mode & exec ? on : off) : bit(exec, 'x'));
  return (
    (TYPE_CHAR[type] ?? '?') +
    bit(0o400, 'r') +
    bit(0o200, 'w') +
    special(0o100, 0o4000, 's', 'S') +
    bit(0o40, 'r') +
    bit(0o20, 'w') +
    special(0o10, 0o2000, 's', 'S') +
    bit(0o4, 'r') +
    bit(0o2, 'w') +
    special(0o1, 0o1000, 't', 'T')
  );
}

/** One text line per entry: the path; with `long`, `ls -l`-like columns before it. */
export function renderListing(entries: readonly ListedEntry[], options: {long?: boolean; changes?: boolean} = {}): string {
  const lines: string[] = [];
  for (const e of entries) {
    const marker = options.changes ? `${e.change === 'added' ? 'A' : e.change === 'changed' ? 'C' : 'D'} ` : '';
    let tail = '';
    if (e.type === 'symlink') tail = ` -> ${e.linkname}`;
    else if (e.type === 'hardlink') tail = ` link to ${e.linkname}`;
    else if (e.type === 'opaque') tail = ' (opaque: hides everything below it from lower layers)';
    // Names from a stranger's archive may hold a newline or an escape sequence: shown escaped, so a
    // name can never forge a line or rewrite the terminal.
    if (!options.long) {
      lines.push(printable(`${marker}${e.path}${options.changes ? tail : ''}`));
      continue;
    }
    const size = e.type === 'char' || e.type === 'block' ? `${e.devmajor},${e.devminor}` : String(e.size);
    const when = e.mtime.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, '');
    const layer = e.layer === undefined ? '' : `${e.layer < 0 ? '-' : `L${e.layer}`} `.padStart(4);
    lines.push(printable(`${marker}${e.permissions} ${`${e.uid}/${e.gid}`.padEnd(11)} ${size.padStart(10)} ${when} ${layer}${e.path}${tail}`));
  }
  return lines.join('\n');
}
