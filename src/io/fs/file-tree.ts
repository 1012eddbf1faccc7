import {lstat, readdir, realpath, stat} from 'node:fs/promises';
import path from 'node:path';
import {FerryError, ioError} from '../../errors.js';
import {cleanPath, walkTar} from '../../tar/walk.js';
import {FileRange} from '../bytes/file-range.js';

/**
 * A read-only view of an archive's files, whether a directory on disk (OCI layout read in place) or a
 * tar indexed once by header offsets. Formats read through this and never care which it is.
 */
export interface FileTree {
  readonly label: string;
  readonly kind: 'dir' | 'tar';
  /** The regular file at `name` (symlinks followed inside the tree), or undefined when absent. */
  file(name: string): Promise<FileRange | undefined>;
  /** Top-level names (for format detection). */
  topLevel(): Promise<string[]>;
  /** Members stored more than once (tar only); docker rejects such archives. */
  readonly duplicates: string[];
}

/** A cleaned path that climbs out of the root (`..`, `../x`); `..data` is an ordinary name. */
function isOutside(clean: string): boolean {
  return clean === '..' || clean.startsWith('../');
}

interface TarNode {
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';
  range?: FileRange;
  linkname?: string;
}

const MAX_LINK_HOPS = 40;

export class TarTree implements FileTree {
  readonly kind = 'tar';
  readonly duplicates: string[] = [];
  private constructor(
    readonly label: string,
    readonly source: FileRange,
    private readonly nodes: Map<string, TarNode>,
    /** End-of-archive position: bytes after it are ignored. */
    readonly endOffset: number,
    /** False when the archive ends without its two zero blocks: a cut-short copy. */
    readonly hasEndMarker: boolean,
  ) {}

  /** Indexes a tar by walking its headers only (no member data is read). */
  static async index(source: FileRange, label = source.label): Promise<TarTree> {
    const nodes = new Map<string, TarNode>();
    const dups: string[] = [];
    const {reader, close} = await source.openReader();
    let endOffset = 0;
    let hasEndMarker = false;
    try {
      const walk = walkTar(reader);
      for (;;) {
        const next = await walk.next();
        if (next.done) {
          endOffset = next.value.endOffset;
          hasEndMarker = next.value.hasEndMarker;
          break;
        }
        const e = next.value;
        const name = cleanPath(e.name);
        if (name === '' || isOutside(name)) continue; // root entry, or an escape nobody can address
        if (nodes.has(name) && !(e.type === 'dir' && nodes.get(name)?.type === 'dir')) dups.push(name);
        const type = e.type === 'file' || e.type === 'dir' || e.type === 'symlink' || e.type === 'hardlink' ? e.type : 'other';
        const node: TarNode = {type};
        if (type === 'file') node.range = source.sub(e.dataOffset, e.size, `${label}:${name}`);
        if (type === 'symlink' || type === 'hardlink') node.linkname = e.linkname;
        nodes.set(name, node);
      }
    } finally {
      await close();
    }
    const tree = new TarTree(label, source, nodes, endOffset, hasEndMarker);
    tree.duplicates.push(...dups);
    return tree;
  }

  async file(name: string): Promise<FileRange | undefined> {
    let current = cleanPath(name);
    for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
      if (isOutside(current)) throw new FerryError('UNSAFE_PATH', `${this.label}: "${name}" points outside the archive`);
      const node = this.nodes.get(current);
      if (!node) return undefined;
      // Readers disagree on which copy counts (containers/image the first, docker load the last):
      // a member ferry needs must be unambiguous.
      if (this.duplicates.includes(current)) throw new FerryError('BAD_ARCHIVE', `${this.label}: member "${current}" is stored more than once (readers disagree on which copy counts)`);
      if (node.type === 'file') return node.range;
      if (node.type === 'dir') throw new FerryError('BAD_ARCHIVE', `${this.label}: "${name}" is a directory, expected a file`);
      if (node.type === 'other') throw new FerryError('BAD_ARCHIVE', `${this.label}: "${name}" is not a regular file`);
      const target = node.linkname ?? '';
      // Symlinks resolve relative to the link's directory; hardlink names are archive-root relative.
      current = node.type === 'symlink' ? cleanPath(target.startsWith('/') ? target : path.posix.join(path.posix.dirname(current), target)) : cleanPath(target);
    }
    throw new FerryError('BAD_ARCHIVE', `${this.label}: too many levels of links resolving "${name}"`);
  }

  async topLevel(): Promise<string[]> {
    const names = new Set<string>();
    for (const key of this.nodes.keys()) names.add(key.split('/')[0]!);
    return [...names];
  }

  /** Names of every file-like member (for format sniffing and listings). */
  names(): string[] {
    return [...this.nodes.keys()];
  }
}

export class DirTree implements FileTree {
  readonly kind = 'dir';
  readonly duplicates: string[] = [];
  private constructor(
    readonly label: string,
    private readonly root: string,
  ) {}

  static async open(dir: string): Promise<DirTree> {
    try {
      return new DirTree(dir, await realpath(dir));
    } catch (e) {
      throw ioError(e, dir);
    }
  }

  async file(name: string): Promise<FileRange | undefined> {
    const clean = cleanPath(name);
    if (isOutside(clean)) throw new FerryError('UNSAFE_PATH', `${this.label}: "${name}" points outside the directory`);
    const full = path.join(this.root, clean);
    let real: string;
    try {
      await lstat(full);
      real = await realpath(full);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw ioError(e, `${this.label}/${clean}`);
    }
    if (real !== this.root && !real.startsWith(this.root + path.sep)) {
      throw new FerryError('UNSAFE_PATH', `${this.label}: "${name}" is a link that points outside the directory`);
    }
    const s = await stat(real).catch((e) => {
      throw ioError(e, `${this.label}/${clean}`);
    });
    if (!s.isFile()) throw new FerryError('BAD_ARCHIVE', `${this.label}/${clean}: not a regular file`);
    return new FileRange(real, 0, s.size, `${this.label}/${clean}`);
  }

  async topLevel(): Promise<string[]> {
    return readdir(this.root).catch((e) => {
      throw ioError(e, this.label);
    });
  }
}

/**
 * Several trees seen as one (a bundle's parts): a name is found in the first tree that holds it.
 * Blobs are named by their digest, so whichever part holds one holds the same bytes.
 */
export class UnionTree implements FileTree {
  readonly kind = 'dir';
  readonly duplicates: string[] = [];
  constructor(
    readonly label: string,
    private readonly trees: readonly FileTree[],
  ) {}

  async file(name: string): Promise<FileRange | undefined> {
    for (const tree of this.trees) {
      const found = await tree.file(name);
      if (found) return found;
    }
    return undefined;
  }

  async topLevel(): Promise<string[]> {
    const names = new Set<string>();
    for (const tree of this.trees) for (const name of await tree.topLevel()) names.add(name);
    return [...names].sort();
  }
}
