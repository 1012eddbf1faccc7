import {FerryError} from '../errors.js';
import {DirTree, TarTree} from '../io/fs/file-tree.js';
import type {Readable} from 'node:stream';
import {openInput, spoolStream, type OpenedInput} from '../io/fs/input.js';
import type {LocalSource, ReadOptions, TransportRef} from './types.js';

/**
 * Opens a local path for reading: a directory in place, a tar indexed by its headers (compressed
 * files, pipes and stdin spooled first). A file that is not a tar has no tree (only rootfs reads
 * it, and it says so).
 */
export async function openLocal(path: string, options: ReadOptions, how: {index?: boolean} = {}): Promise<LocalSource> {
  const input = await openInput(path, {settings: options.settings, stdin: options.stdin});
  return indexInput(input, path === '-' ? 'stdin' : path, how);
}

/** A stream read once into a temp file and indexed like a local tar (a daemon's save). */
export async function openStream(stream: Readable, label: string, options: ReadOptions): Promise<LocalSource> {
  return indexInput(await spoolStream(stream, label, options.settings), label, {});
}

async function indexInput(input: OpenedInput, label: string, how: {index?: boolean}): Promise<LocalSource> {
  try {
    if (input.kind === 'dir') return {input, tree: await DirTree.open(input.path), label};
    if (how.index === false) return {input, tree: undefined, label};
    let tree: TarTree | undefined;
    try {
      tree = await TarTree.index(input.range, label);
    } catch (e) {
      // Not a tar at all (the first header is not one): only a detector can say what it might be.
      if (!(e instanceof FerryError && e.code === 'BAD_TAR' && /offset 0\b/.test(e.message))) throw e;
    }
    return {input, tree, label};
  } catch (e) {
    await input.dispose();
    throw e;
  }
}

/** The problems of the container tar itself that verify reports (and a cut-short stdin that stops everything). */
export function containerProblems(source: LocalSource, ref: TransportRef): string[] {
  const tree = source.tree;
  if (!(tree instanceof TarTree)) return [];
  const problems = tree.duplicates.map((d) => `${source.label}: member "${d}" is stored more than once`);
  if (!tree.hasEndMarker) {
    // A pipe that closed early at a member boundary looks like a complete, shorter archive: from
    // stdin nothing else can tell (a file's blobs are at least checked against their digests).
    if (ref.path === '-') throw new FerryError('BAD_TAR', `${source.label}: archive ends without the tar end-of-archive marker (input cut short?)`);
    problems.push(`${source.label}: no end-of-archive marker (truncated archive?)`);
  }
  return problems;
}

/** The tree of a source that must be a tar or directory, or an error naming what it is. */
export function requireTree(source: LocalSource, form: string): NonNullable<LocalSource['tree']> {
  if (!source.tree) {
    const outer = source.input.kind === 'file' && source.input.outerCompression !== 'none' ? ` after ${source.input.outerCompression} decompression` : '';
    throw new FerryError('UNKNOWN_FORMAT', `${source.label}: not a ${form}: not a tar${outer}`);
  }
  return source.tree;
}

/** `PATH[:SUFFIX]`: the path and what follows its first colon (paths with colons cannot take a suffix, as in skopeo). */
export function splitSuffix(rest: string): [path: string, suffix: string | undefined] {
  const colon = rest.indexOf(':');
  return colon < 0 ? [rest, undefined] : [rest.slice(0, colon), rest.slice(colon + 1)];
}
