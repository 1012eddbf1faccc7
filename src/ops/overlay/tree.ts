import {FerryError} from '../../errors.js';
import type {PaxRecords} from '../../tar/pax.js';

/** What a path in the merged filesystem is. Hard links are not a type: they are extra names of an inode. */
export type NodeType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';

/** Where a regular file's bytes are: one member of one layer tar, found again by its header offset. */
export interface ContentSource {
  layer: number;
  headerOffset: number;
  dataOffset: number;
  /** The member's name as written (checked again when the bytes are streamed). */
  name: string;
  size: number;
}

/**
 * One file-system object. Directories own exactly one name; every other type may have several
 * (hard links), all sharing this object, so a change through one name is seen through all.
 */
export class Inode {
  // Assigned in the constructor through #assign (definite assignment).
  mode!: number;
  uid!: number;
  gid!: number;
  mtime!: number;
  mtimeText!: string | undefined;
  uname!: string;
  gname!: string;
  /** PAX records to carry into output (xattrs and other non-derived keys); undefined when none. */
  pax!: PaxRecords | undefined;
  /** Symlink target. */
  linkname = '';
  devmajor = 0;
  devminor = 0;
  size = 0;
  /** Regular files: the member holding the bytes. */
  source: ContentSource | undefined;
  /** Layer whose entry created this inode (-1: made implicitly, as a parent directory). */
  readonly createdAt: number;
  /** Layer that last changed its attributes (creation, a directory merge, or a hard-link entry's header). */
  changedAt: number;
  /** Every name (node) of this inode in the current tree. */
  readonly names = new Set<TreeNode>();
  /**
   * True while the attributes are still exactly those of the member that created the inode, so that
   * member's original header bytes may be copied to the output.
   */
  headerIntact = true;

  constructor(
    readonly type: NodeType,
    attrs: Attributes,
    createdAt: number,
  ) {
    this.#assign(attrs);
    this.createdAt = createdAt;
    this.changedAt = createdAt;
  }

  setAttributes(attrs: Attributes, layer: number): void {
    this.#assign(attrs);
    this.changedAt = layer;
    this.headerIntact = false;
  }

  #assign(attrs: Attributes): void {
    this.mode = attrs.mode;
    this.uid = attrs.uid;
    this.gid = attrs.gid;
    this.mtime = attrs.mtime;
    this.mtimeText = attrs.mtimeText;
    this.uname = attrs.uname;
    this.gname = attrs.gname;
    this.pax = attrs.pax;
  }
}

export interface Attributes {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeText: string | undefined;
  uname: string;
  gname: string;
  pax: PaxRecords | undefined;
}

/** A name in the tree. */
export class TreeNode {
  /** Children by name (directories only). */
  readonly children: Map<string, TreeNode> | undefined;
  /**
   * Layer whose entry last wrote this name, or -1 when nothing did (a parent directory made
   * implicitly). Docker's applier remembers the paths each layer unpacked, and an opaque marker spares
   * exactly those (docs/formats.md §5); this stamp plays that role.
   */
  writtenAt: number;
  /** Layer in which this name came into being (its entry, or the entry that needed it as a parent). */
  readonly createdAt: number;

  constructor(
    readonly name: string,
    readonly parent: TreeNode | undefined,
    readonly inode: Inode,
    writtenAt: number,
    createdAt: number,
  ) {
    this.children = inode.type === 'dir' ? new Map() : undefined;
    this.writtenAt = writtenAt;
    this.createdAt = createdAt;
  }

  get type(): NodeType {
    return this.inode.type;
  }

  /** Path from the root, no leading slash ('' for the root). */
  get path(): string {
    const parts: string[] = [];
    for (let n: TreeNode | undefined = this; n?.parent; n = n.parent) parts.push(n.name);
    return parts.reverse().join('/');
  }
}

const MAX_SYMLINK_HOPS = 40; // Linux's MAXSYMLINKS

export type ResolveFailure = {problem: 'missing' | 'not-a-directory' | 'dangling-symlink' | 'symlink-loop'; at: string};

export function isFailure<T>(r: T | ResolveFailure): r is ResolveFailure {
  return typeof (r as ResolveFailure).problem === 'string';
}

/** Splits a cleaned path into components ('' → none). */
export function splitPath(path: string): string[] {
  return path === '' ? [] : path.split('/');
}

/**
 * The merged file system of a stack of layers: a tree of names over inodes. Path lookups follow
 * symlinks the way a chroot would (absolute targets start again at the image root, `..` stops at the
 * root), so nothing ever resolves outside the image.
 */
export class MergedTree {
  readonly root: TreeNode;

  constructor(rootAttrs: Attributes = IMPLICIT_ROOT) {
    this.root = new TreeNode('', undefined, new Inode('dir', rootAttrs, -1), -1, -1);
    this.root.inode.names.add(this.root);
  }

  /**
   * The directory at `parts`, every symlink on the way followed. With `create`, missing components
   * of the path itself are made as directories with those attributes (Docker's MkdirAll of a
   * member's parent); a symlink's own target is never created (Docker fails there too).
   */
  resolveDir(parts: readonly string[], create?: {attrs: Attributes; layer: number}): TreeNode | ResolveFailure {
    let current = this.root;
    const queue: Array<{part: string; fromLink: boolean}> = parts.map((part) => ({part, fromLink: false}));
    let hops = 0;
    const trail: string[] = [];
    while (queue.length > 0) {
      const {part, fromLink} = queue.shift()!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        current = current.parent ?? this.root;
        trail.pop();
        continue;
      }
      trail.push(part);
      let child = current.children!.get(part);
      if (!child) {
        if (!create || fromLink) return {problem: fromLink ? 'dangling-symlink' : 'missing', at: trail.join('/')};
        child = this.addNode(current, part, new Inode('dir', create.attrs, create.layer), -1, create.layer);
      }
      if (child.type === 'symlink') {
        if (++hops > MAX_SYMLINK_HOPS) return {problem: 'symlink-loop', at: trail.join('/')};
        const target = child.inode.linkname;
        trail.pop();
        if (target.startsWith('/')) {
          current = this.root;
          trail.length = 0;
        }
        queue.unshift(...target.split('/').map((p) => ({part: p, fromLink: true})));
        continue;
      }
      if (child.type !== 'dir') return {problem: 'not-a-directory', at: trail.join('/')};
      current = child;
    }
    return current;
  }

  /** The node at a path: parents resolved through symlinks, the last component itself not followed. */
  lookup(path: string): TreeNode | ResolveFailure {
    const parts = splitPath(path);
    if (parts.length === 0) return this.root;
    const dir = this.resolveDir(parts.slice(0, -1));
    if (isFailure(dir)) return dir;
    const base = parts.at(-1)!;
    if (base === '..') return dir.parent ?? this.root;
    if (base === '.') return dir;
    return dir.children!.get(base) ?? {problem: 'missing', at: path};
  }

  /** The node at an exact physical path (no symlink is followed at all), or undefined. */
  physical(path: string): TreeNode | undefined {
    let node: TreeNode | undefined = this.root;
    for (const part of splitPath(path)) {
      node = node.children?.get(part);
      if (!node) return undefined;
    }
    return node;
  }

  /** Follows symlinks all the way (the final component too), clamped inside the root, as `cat` does. */
  resolveFollow(path: string): TreeNode | ResolveFailure {
    let parts = splitPath(path);
    for (let hops = 0; ; hops++) {
      if (hops > MAX_SYMLINK_HOPS) return {problem: 'symlink-loop', at: path};
      const dir = this.resolveDir(parts.slice(0, -1));
      if (isFailure(dir)) return dir;
      const base = parts.at(-1);
      if (base === undefined) return dir;
      const node = base === '..' ? (dir.parent ?? this.root) : base === '.' || base === '' ? dir : dir.children!.get(base);
      if (!node) return {problem: 'missing', at: path};
      if (node.type !== 'symlink') return node;
      const target = node.inode.linkname;
      const prefix = target.startsWith('/') ? [] : splitPath(dir.path);
      parts = [...prefix, ...target.split('/').filter((p) => p !== '')];
      if (parts.length === 0) return this.root;
    }
  }

  addNode(parent: TreeNode, name: string, inode: Inode, writtenAt: number, createdAt: number): TreeNode {
    const node = new TreeNode(name, parent, inode, writtenAt, createdAt);
    parent.children!.set(name, node);
    inode.names.add(node);
    return node;
  }

  /** Unlinks a name and everything below it. */
  remove(node: TreeNode): void {
    if (!node.parent) throw new FerryError('BAD_ARCHIVE', 'internal: the image root cannot be removed');
    node.parent.children!.delete(node.name);
    const stack = [node];
    while (stack.length > 0) {
      const n = stack.pop()!;
      n.inode.names.delete(n);
      if (n.children) for (const c of n.children.values()) stack.push(c);
    }
  }

  /** Every node below `from` in output order: depth first, names in byte order (Go's filepath.Walk, i.e. docker export's order). */
  *walk(from: TreeNode = this.root): Generator<TreeNode> {
    const stack: TreeNode[] = [...sortedChildren(from)].reverse();
    while (stack.length > 0) {
      const node = stack.pop()!;
      yield node;
      if (node.children) for (const c of [...sortedChildren(node)].reverse()) stack.push(c);
    }
  }
}

/** Children in byte order of their UTF-8 names (= code point order), as Go sorts them. */
export function sortedChildren(node: TreeNode): TreeNode[] {
  return node.children ? [...node.children.values()].sort((a, b) => compareNames(a.name, b.name)) : [];
}

export function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  // UTF-16 order differs from UTF-8 byte order only between astral and U+E000–U+FFFF characters.
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** Attributes of a root nobody described. */
export const IMPLICIT_ROOT: Attributes = {mode: 0o755, uid: 0, gid: 0, mtime: 0, mtimeText: undefined, uname: '', gname: '', pax: undefined};
