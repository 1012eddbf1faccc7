import {FerryError} from '../../errors.js';
import {XATTR_PREFIX, type PaxRecords} from '../../tar/pax.js';
import {cleanPath, entryPathProblem, type TarEntry} from '../../tar/walk.js';
import {Inode, isFailure, type Attributes, type MergedTree, type ResolveFailure, type TreeNode} from './tree.js';
import {WHITEOUT_META_PREFIX, whiteoutKind} from './whiteout.js';

/**
 * Applies one layer's tar entries, in tar order, to the merged tree — the way Docker's applier
 * (moby pkg/archive/diff.go UnpackLayer, run chrooted in the layer root) does it, checked against
 * docker 20.10 (docs/formats.md §5, test/ops/overlay-docker.test.ts):
 *
 * - A member's missing parent directories are made first, mode 0600 owned by root (Docker's
 *   `MkdirAll(parent, 0600)`), for whiteouts too.
 * - `.wh.NAME` removes NAME and everything below it — even when NAME was created earlier in the
 *   same layer. The OCI spec says same-layer entries survive; Docker deletes them, and ferry matches
 *   Docker because Docker's result is what users run.
 * - `.wh..wh..opq` removes every child of its directory that this layer has not written (Docker
 *   keeps a set of the paths each layer unpacked). Position in the tar matters only as it does for
 *   Docker: a child written later in the layer survives, one written earlier survives too, a
 *   directory made implicitly (no entry of its own) does not. When the directory itself is a symlink
 *   the marker does nothing (Docker walks the link, not its target; stereoscope#694).
 * - A member replaces whatever is at its path, except that a directory over a directory merges
 *   (attributes replaced, children kept).
 * - The last component of a member is never followed; symlinks among its parent directories are
 *   followed, inside the image root (Docker writes `s/f` through a lower `s -> a` into `a/f`;
 *   containerd does the same). ferry therefore places such members at their resolved path.
 * - A hard link adds a name to the target's inode; the link's header then sets the inode's owner,
 *   and its mode and mtime unless the target is a symlink (Docker's Lchown/Chmod/Chtimes on the new
 *   name). The target must exist (Docker: `link … no such file or directory`).
 * - Top-level `.wh..wh.*` members (AUFS metadata) are skipped; a root `.wh..wh..opq` is honoured.
 *
 * Where ferry deliberately differs from Docker: a bare `.wh.` (also `.wh..`) names nothing and is
 * ignored with a warning — Docker's applier removes the whole directory it sits in (the root, for a
 * top-level one), the bug anchore/stereoscope#647 describes. What `entryPathProblem` (src/tar/walk.ts)
 * calls unsafe is refused, naming the member: absolute names (Docker joins them under the root), `..`
 * escapes and hard links leaving the root; so are sparse files and unknown entry types. Symlink
 * targets are kept as written, also when they climb out (`up -> ../..`), as docker 20.10 keeps them:
 * the tree resolves every link inside the image root, so none leads out of it.
 */
export interface ApplyContext {
  tree: MergedTree;
  layer: number;
  /** Human name of the layer for errors and warnings. */
  label: string;
  warnings: string[];
}

/**
 * PAX keys that describe the entry itself (recomputed on output), that Docker drops (atime/ctime), or
 * that describe the original encoding of names ferry re-encodes as UTF-8 (hdrcharset: GNU tar warns
 * about it).
 */
const NOT_CARRIED = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname', 'mtime', 'atime', 'ctime', 'hdrcharset']);

export function carriedPax(records: PaxRecords): PaxRecords | undefined {
  let out: PaxRecords | undefined;
  for (const [key, value] of records) {
    if (NOT_CARRIED.has(key) || key.startsWith('GNU.sparse.')) continue;
    (out ??= new Map()).set(key, value);
  }
  return out;
}

export function attributesOf(entry: TarEntry): Attributes {
  return {
    mode: entry.mode & 0o7777,
    uid: entry.uid,
    gid: entry.gid,
    mtime: entry.mtime,
    mtimeText: entry.mtimeText,
    uname: entry.uname,
    gname: entry.gname,
    pax: carriedPax(entry.pax),
  };
}

/** Docker 20.10 makes a member's missing parents with MkdirAll(parent, 0600), owned by root. */
function implicitDirAttributes(entry: TarEntry): Attributes {
  // Docker stamps them with the wall clock; the member's own mtime keeps ferry's output deterministic.
  return {mode: 0o600, uid: 0, gid: 0, mtime: Math.floor(entry.mtime), mtimeText: undefined, uname: '', gname: '', pax: undefined};
}

function describeFailure(f: ResolveFailure): string {
  switch (f.problem) {
    case 'missing':
      return `"${f.at}" does not exist`;
    case 'not-a-directory':
      return `"${f.at}" is not a directory`;
    case 'dangling-symlink':
      return `a symlink on the way points to "${f.at}", which does not exist`;
    case 'symlink-loop':
      return `too many levels of symbolic links at "${f.at}"`;
  }
}

export function applyEntry(ctx: ApplyContext, entry: TarEntry): void {
  const {tree, layer, label} = ctx;
  const problem = entryPathProblem(entry);
  if (problem) throw new FerryError('UNSAFE_PATH', `${label}: ${problem}`);
  if (entry.sparse) throw new FerryError('UNSUPPORTED', `${label}: entry "${entry.name}" is a sparse file, which image layers should not contain (OCI layer.md); not supported`);
  if (entry.type === 'other') throw new FerryError('UNSUPPORTED', `${label}: entry "${entry.name}" has tar type '${entry.typeflag}', which no container runtime unpacks`);

  const name = cleanPath(entry.name);
  if (name === '') {
    // The root's own entry: Docker applies its metadata to "/" (docs/formats.md §6); it is never emitted.
    if (entry.type !== 'dir') throw new FerryError('BAD_ARCHIVE', `${label}: entry "${entry.name}" names the image root but is not a directory`);
    tree.root.inode.setAttributes(attributesOf(entry), layer);
    tree.root.writtenAt = layer;
    return;
  }
  const parts = name.split('/');
  const base = parts.pop()!;
  const parent = tree.resolveDir(parts, {attrs: implicitDirAttributes(entry), layer});
  if (parts.length === 0 && base.startsWith(WHITEOUT_META_PREFIX) && base !== '.wh..wh..opq') return;

  const wh = whiteoutKind(base);
  if (wh.kind === 'invalid') {
    ctx.warnings.push(`${label}: whiteout "${entry.name}" names nothing; ignored (docker would delete the directory "${parts.join('/') || '/'}" it is in)`);
    return;
  }
  if (wh.kind === 'whiteout') {
    // Nothing can exist below a path that is not a directory: nothing to delete.
    if (isFailure(parent)) return;
    const victim = parent.children!.get(wh.target);
    if (victim) tree.remove(victim);
    return;
  }
  if (wh.kind === 'opaque') {
    applyOpaque(tree, parts, layer);
    return;
  }

  if (isFailure(parent)) throw new FerryError('BAD_ARCHIVE', `${label}: cannot place "${entry.name}": ${describeFailure(parent)}`);
  const existing = parent.children!.get(base);
  if (entry.type === 'dir' && existing?.type === 'dir') {
    existing.inode.setAttributes(attributesOf(entry), layer);
    existing.writtenAt = layer;
    return;
  }
  if (existing) tree.remove(existing);

  if (entry.type === 'hardlink') {
    const target = linkTarget(tree, entry, label);
    const inode = target.inode;
    // Docker: Lchown on the new name always; Chmod and Chtimes only when the target is not a symlink.
    const attrs = attributesOf(entry);
    inode.uid = attrs.uid;
    inode.gid = attrs.gid;
    inode.uname = attrs.uname;
    inode.gname = attrs.gname;
    if (inode.type !== 'symlink') {
      inode.mode = attrs.mode;
      inode.mtime = attrs.mtime;
      inode.mtimeText = attrs.mtimeText;
    }
    inode.pax = mergeXattrs(inode.pax, attrs.pax);
    inode.changedAt = layer;
    inode.headerIntact = false;
    tree.addNode(parent, base, inode, layer, layer);
    return;
  }

  const type = entry.type; // file | dir | symlink | char | block | fifo
  const inode = new Inode(type, attributesOf(entry), layer);
  if (type === 'symlink') inode.linkname = entry.linkname;
  if (type === 'char' || type === 'block') {
    inode.devmajor = entry.devmajor;
    inode.devminor = entry.devminor;
  }
  if (type === 'file') {
    inode.size = entry.size;
    inode.source = {layer, headerOffset: entry.headerOffset, dataOffset: entry.dataOffset, name: entry.name, size: entry.size};
  }
  tree.addNode(parent, base, inode, layer, layer);
}

/** The existing non-directory a hard link names: parents followed, the target itself not (link(2)). */
function linkTarget(tree: MergedTree, entry: TarEntry, label: string): TreeNode {
  const targetPath = cleanPath(entry.linkname);
  const where = `${label}: hardlink "${entry.name}" -> "${entry.linkname}"`;
  if (targetPath === '') throw new FerryError('BAD_ARCHIVE', `${where}: target is the image root`);
  const node = tree.lookup(targetPath);
  if (isFailure(node)) throw new FerryError('BAD_ARCHIVE', `${where}: target does not exist${node.problem === 'missing' ? '' : ` (${describeFailure(node)})`}`);
  if (node.type === 'dir') throw new FerryError('BAD_ARCHIVE', `${where}: target is a directory`);
  return node;
}

function mergeXattrs(current: PaxRecords | undefined, incoming: PaxRecords | undefined): PaxRecords | undefined {
  if (!incoming) return current;
  let out = current;
  for (const [key, value] of incoming) {
    if (!key.startsWith(XATTR_PREFIX)) continue;
    out = new Map(out ?? []);
    out.set(key, value);
  }
  return out;
}

/**
 * `dir/.wh..wh..opq`: `dir`'s parents are followed, `dir` itself is not (Docker's filepath.Walk does
 * not descend into a symlink). Removes what this layer has not written, recursively.
 */
function applyOpaque(tree: MergedTree, dirParts: string[], layer: number): void {
  let dir: TreeNode | undefined;
  if (dirParts.length === 0) dir = tree.root;
  else {
    const grand = tree.resolveDir(dirParts.slice(0, -1));
    if (isFailure(grand)) return;
    dir = grand.children!.get(dirParts.at(-1)!);
  }
  if (!dir || dir.type !== 'dir') return;
  const stack: TreeNode[] = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    for (const child of [...d.children!.values()]) {
      if (child.writtenAt !== layer) tree.remove(child);
      else if (child.children) stack.push(child);
    }
  }
}
