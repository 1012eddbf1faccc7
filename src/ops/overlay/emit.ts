import {FerryError} from '../../errors.js';
import type {Layer} from '../../model/image.js';
import {BLOCK, paddedSize} from '../../tar/header.js';
import {walkTar} from '../../tar/walk.js';
import {encodeHeader, END_OF_ARCHIVE, padding, type HeaderSpec} from '../../tar/write.js';
import {openLayerTar} from './layer-tar.js';
import type {TreeSnapshot} from './merge.js';
import type {Inode, MergedTree, TreeNode} from './tree.js';
import {compareNames, sortedChildren} from './tree.js';
import {WHITEOUT_PREFIX} from './whiteout.js';

/**
 * Turning a merged tree back into one tar: the flattened rootfs (`export`) or one changeset layer
 * over kept lower layers (`squash --from-layer N`).
 *
 * Output order, and why: layers may be gzip/zstd streams with no random access, no layer may be held
 * in memory and nothing may be spooled to disk. So the output comes in three runs:
 *   1. every header-only entry — directories (with any whiteouts right after their directory),
 *      symlinks, devices, fifos — in docker export's order (depth first, names in byte order), so
 *      parents always precede children;
 *   2. regular files, by reading each layer that still owns content exactly once, in layer order
 *      and tar order, copying the surviving members' bytes (seekable layers skip the rest by offset);
 *   3. the remaining names of multi-name inodes, as hard links to the name that carried the bytes.
 * The result depends only on the image's layer contents — not on which archive form held them or
 * how they were compressed — so the same image always exports to the same bytes.
 */
export interface EmitOptions {
  /**
   * Layers [0, base) stay below the output (squash --from-layer): only what layers >= base changed is
   * emitted, plus whiteouts for what they removed. 0 (export, squash of everything): the whole tree.
   */
  base: number;
  /** The tree after layers [0, base); required when base > 0. */
  lower?: TreeSnapshot;
  /** Headers as `docker export` writes them (export), rather than as the layers stored them (squash). */
  dockerExport?: ExportOwners;
}

/**
 * `docker export`'s headers (checked against docker 20.10, test/interop/export-docker.test.ts): the
 * mode field holds the file type bits as Go's FileInfoHeader sets them (0o100644, 0o40755, symlinks
 * 0o120777 whatever their stored mode), and uname/gname come from the image's own /etc/passwd and
 * /etc/group (empty where they name nobody), since docker reads them inside the container.
 */
export interface ExportOwners {
  users: ReadonlyMap<number, string>;
  groups: ReadonlyMap<number, string>;
}

const TYPE_BITS: Record<string, number> = {file: 0o100000, dir: 0o40000, symlink: 0o120000, char: 0o20000, block: 0o60000, fifo: 0o10000};

/** uid → name from an /etc/passwd or /etc/group text (name:x:id:…). The first name for an id wins, as getpwuid's scan does. */
export function idNames(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    const id = Number(fields[2]);
    if (fields.length >= 3 && fields[0] !== '' && !line.startsWith('#') && /^\d+$/.test(fields[2]!) && !out.has(id)) out.set(id, fields[0]!);
  }
  return out;
}

interface PlannedFile {
  inode: Inode;
  path: string;
}

interface PlannedLink {
  path: string;
  target: string;
  inode: Inode;
}

export interface EmitPlan {
  /** docker export's header style, when the plan is an export. */
  dockerExport?: ExportOwners;
  /** Run 1: ready-made headers. */
  headers: Buffer[];
  /** Run 2: files per source layer, in tar order. */
  files: Map<number, PlannedFile[]>;
  /** Run 3. */
  links: PlannedLink[];
  /** Counts for summaries. */
  stats: {entries: number; files: number; fileBytes: number; whiteouts: number; hardlinks: number};
}

export function planEmission(tree: MergedTree, options: EmitOptions): EmitPlan {
  const base = options.base;
  if (base > 0 && !options.lower) throw new FerryError('BAD_ARCHIVE', 'internal: a changeset needs the lower tree');
  const nameTouched = (n: TreeNode): boolean => n.createdAt >= base || n.writtenAt >= base;
  const touched = (n: TreeNode): boolean => nameTouched(n) || n.inode.changedAt >= base;

  // Walk order of every node: "first name" of an inode means first in this order (what docker does).
  const order = new Map<TreeNode, number>();
  const fileInodes = new Set<Inode>();
  for (const node of tree.walk()) {
    order.set(node, order.size);
    if (node.type === 'file') fileInodes.add(node.inode);
  }
  const byOrder = (a: TreeNode, b: TreeNode): number => order.get(a)! - order.get(b)!;

  // Which names of each regular-file inode are written, which one carries the bytes, where links point.
  const contentHolder = new Map<TreeNode, Inode>();
  const linkTo = new Map<TreeNode, string>();
  for (const inode of fileInodes) {
    const names = [...inode.names].sort(byOrder);
    const materialise = (holders: TreeNode[]): void => {
      const [first, ...rest] = holders;
      contentHolder.set(first!, inode);
      for (const n of rest) linkTo.set(n, first!.path);
    };
    if (inode.createdAt >= base) {
      materialise(names);
      continue;
    }
    // The inode already exists below: keep lower names, add upper names as links to a surviving
    // lower name (its bytes are not copied again). If no lower name survives, or its attributes
    // changed with no upper name left to carry them, the file is written out again in full.
    const lowerNames = names.filter((n) => !nameTouched(n));
    const upperNames = names.filter(nameTouched);
    if (upperNames.length === 0 && inode.changedAt < base) continue;
    if (lowerNames.length > 0 && upperNames.length > 0) {
      for (const n of upperNames) linkTo.set(n, lowerNames[0]!.path);
    } else materialise(names);
  }

  const whiteouts = new Map<TreeNode, string[]>();
  if (options.lower) collectWhiteouts(options.lower, tree.root, whiteouts);

  // Post-order: a directory is written when it changed or anything below it is written.
  const included = new Set<TreeNode>();
  const include = (node: TreeNode): boolean => {
    let any = whiteouts.has(node);
    for (const child of node.children?.values() ?? []) if (include(child)) any = true;
    const self = node.type === 'file' ? contentHolder.has(node) || linkTo.has(node) : node.parent !== undefined && touched(node);
    if (self || (any && node.parent !== undefined)) included.add(node);
    return self || any;
  };
  include(tree.root);

  const plan: EmitPlan = {headers: [], files: new Map(), links: [], stats: {entries: 0, files: 0, fileBytes: 0, whiteouts: 0, hardlinks: 0}};
  if (options.dockerExport) plan.dockerExport = options.dockerExport;
  const visit = (dir: TreeNode, dirPath: string): void => {
    for (const name of (whiteouts.get(dir) ?? []).sort(compareNames)) {
      plan.headers.push(encodeHeader({name: `${dirPath}${WHITEOUT_PREFIX}${name}`, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: Math.floor(dir.inode.mtime)}));
      plan.stats.whiteouts++;
    }
    for (const child of sortedChildren(dir)) {
      if (!included.has(child)) continue;
      const path = `${dirPath}${child.name}`;
      const target = linkTo.get(child);
      if (target !== undefined) {
        plan.links.push({path, target, inode: child.inode});
        continue;
      }
      if (child.type === 'file') {
        const source = child.inode.source!;
        let list = plan.files.get(source.layer);
        if (!list) plan.files.set(source.layer, (list = []));
        list.push({inode: child.inode, path});
        plan.stats.files++;
        plan.stats.fileBytes += source.size;
        continue;
      }
      plan.headers.push(encodeHeader(headerSpec(child.inode, child.type === 'dir' ? `${path}/` : path, options.dockerExport)));
      if (child.children) visit(child, `${path}/`);
    }
  };
  visit(tree.root, '');
  for (const list of plan.files.values()) list.sort((a, b) => a.inode.source!.headerOffset - b.inode.source!.headerOffset);
  plan.files = new Map([...plan.files].sort(([a], [b]) => a - b));
  plan.stats.hardlinks = plan.links.length;
  plan.stats.entries = plan.headers.length + plan.stats.files + plan.links.length;
  return plan;
}

/** Lower names missing from the merged tree get a whiteout in their (still present) parent directory. */
function collectWhiteouts(lower: TreeSnapshot, upper: TreeNode, out: Map<TreeNode, string[]>): void {
  for (const [name, lowerChild] of lower.children) {
    const upperChild = upper.children!.get(name);
    if (!upperChild) {
      let list = out.get(upper);
      if (!list) out.set(upper, (list = []));
      list.push(name);
    } else if (lowerChild && upperChild.children) collectWhiteouts(lowerChild, upperChild, out);
  }
}

export function headerSpec(inode: Inode, name: string, dockerExport?: ExportOwners): HeaderSpec {
  const spec: HeaderSpec = {
    name,
    type: inode.type,
    mode: dockerExport ? TYPE_BITS[inode.type]! | (inode.type === 'symlink' ? 0o777 : inode.mode) : inode.mode,
    uid: inode.uid,
    gid: inode.gid,
    size: inode.type === 'file' ? inode.size : 0,
    mtime: inode.mtime,
    mtimeText: inode.mtimeText,
    uname: dockerExport ? (dockerExport.users.get(inode.uid) ?? '') : inode.uname,
    gname: dockerExport ? (dockerExport.groups.get(inode.gid) ?? '') : inode.gname,
  };
  if (inode.pax) spec.pax = inode.pax;
  if (inode.type === 'symlink') spec.linkname = inode.linkname;
  if (inode.type === 'char' || inode.type === 'block') {
    spec.devmajor = inode.devmajor;
    spec.devminor = inode.devminor;
  }
  return spec;
}

/** Header blocks may be copied as they are only when they hold no global (`g`) PAX header. */
function hasGlobalHeader(headerBytes: Buffer): boolean {
  let at = 0;
  while (at + BLOCK < headerBytes.length) {
    const flag = String.fromCharCode(headerBytes[at + 156]!);
    if (flag === 'g') return true;
    const sizeText = headerBytes.toString('latin1', at + 124, at + 136).replace(/[\0 ]/g, '');
    at += BLOCK + paddedSize(parseInt(sizeText || '0', 8));
  }
  return false;
}

const FLUSH_BYTES = 1 << 20;

/**
 * Streams the planned tar. Small pieces (headers, padding, small bodies) are gathered into ~1 MiB
 * writes; large bodies pass through in the reader's chunks.
 */
export async function* emitTar(plan: EmitPlan, layers: readonly Layer[]): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  function* push(buf: Buffer): Generator<Buffer> {
    if (buf.length === 0) return;
    if (buf.length >= FLUSH_BYTES) {
      if (pendingBytes > 0) yield flush();
      yield buf;
      return;
    }
    pending.push(buf);
    pendingBytes += buf.length;
    if (pendingBytes >= FLUSH_BYTES) yield flush();
  }
  function flush(): Buffer {
    const out = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    return out;
  }

  for (const header of plan.headers) yield* push(header);

  for (const [layerIndex, files] of plan.files) {
    const layer = layers[layerIndex]!;
    if (files.every((f) => f.inode.size === 0)) {
      // Nothing to copy: no need to open (or decompress) the layer at all.
      for (const f of files) yield* push(encodeHeader(headerSpec(f.inode, f.path, plan.dockerExport)));
      continue;
    }
    const tar = await openLayerTar(layer);
    try {
      const walk = walkTar(tar.reader);
      let i = 0;
      while (i < files.length) {
        const next = await walk.next();
        if (next.done) throw new FerryError('BAD_TAR', `${layer.label}: ended before member "${files[i]!.inode.source!.name}" (changed while being read?)`);
        const entry = next.value;
        const file = files[i]!;
        const source = file.inode.source!;
        if (entry.headerOffset < source.headerOffset) continue;
        if (entry.headerOffset !== source.headerOffset || entry.name !== source.name || entry.size !== source.size) {
          throw new FerryError('BAD_TAR', `${layer.label}: member "${source.name}" is no longer at offset ${source.headerOffset} (changed while being read?)`);
        }
        const intact = !plan.dockerExport && file.inode.headerIntact && entry.name === file.path && !hasGlobalHeader(entry.headerBytes);
        // Readers never reuse their buffers, so pieces may wait in `pending` without copying.
        yield* push(intact ? entry.headerBytes : encodeHeader(headerSpec(file.inode, file.path, plan.dockerExport)));
        for await (const chunk of tar.reader.chunks(entry.size, `member "${entry.name}"`)) yield* push(chunk);
        yield* push(padding(entry.size));
        i++;
      }
    } finally {
      await tar.close();
    }
  }

  for (const link of plan.links) {
    const spec = headerSpec(link.inode, link.path, plan.dockerExport);
    yield* push(encodeHeader({...spec, type: 'hardlink', size: 0, linkname: link.target}));
  }
  yield* push(END_OF_ARCHIVE);
  if (pendingBytes > 0) yield flush();
}
