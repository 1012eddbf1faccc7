import {FerryError, UsageError} from './errors.js';
import {DirTree, TarTree, type FileTree} from './io/file-tree.js';
import {openInput, type OpenedInput} from './io/input.js';
import {hasDockerManifest, readDockerArchiveEntries} from './formats/docker-archive/read.js';
import {isOciLayout, readLayoutEntries} from './formats/layout/read.js';
import {readRootfsEntries, type RootfsOptions} from './formats/rootfs/read.js';
import type {Archive, ArchiveEntry, FormatName} from './model/image.js';
import type {DockerLayout} from './formats/docker-archive/write.js';
import type {FormatWriteOptions, FormatWriteResult} from './formats/layout/write.js';
import type {Compression} from './model/media-types.js';

/**
 * The one table of transports (skopeo's names): which prefix forces which reader. Detection without
 * a prefix follows FORMATS.md §0.
 */
export const TRANSPORTS: readonly FormatName[] = ['docker-archive', 'oci-archive', 'oci', 'rootfs'];

export interface SourceSpec {
  transport?: FormatName;
  path: string;
}

export function parseSource(text: string): SourceSpec {
  for (const t of TRANSPORTS) {
    if (text.startsWith(`${t}:`)) {
      const path = text.slice(t.length + 1);
      if (path === '') throw new UsageError(`"${text}": missing path after ${t}:`);
      return {transport: t, path};
    }
  }
  if (/^[a-z][a-z0-9-]*:/.test(text) && !text.startsWith('./') && !/^[a-zA-Z]:[\\/]/.test(text)) {
    const prefix = text.slice(0, text.indexOf(':'));
    if (['docker', 'docker-daemon', 'containers-storage', 'dir'].includes(prefix)) {
      throw new UsageError(`unsupported transport "${prefix}:": ferry reads ${TRANSPORTS.map((t) => `${t}:`).join(', ')}`);
    }
  }
  return {path: text};
}

export interface OpenOptions {
  stdin?: NodeJS.ReadableStream;
  rootfs?: RootfsOptions;
}

/** Opens and reads an archive: `docker-archive:x.tar`, `oci:dir`, `oci-archive:x.tar`, `rootfs:x.tar`, or detected. */
export async function openArchive(source: string, options: OpenOptions = {}): Promise<Archive> {
  const spec = parseSource(source);
  const input = await openInput(spec.path, options.stdin);
  try {
    const warnings: string[] = [];
    const problems: string[] = [];
    const {format, entries} = await readInput(input, spec, warnings, options, problems);
    return {format, location: spec.path, entries, warnings, problems, close: () => input.dispose()};
  } catch (e) {
    await input.dispose();
    throw e;
  }
}

async function readInput(input: OpenedInput, spec: SourceSpec, warnings: string[], options: OpenOptions, problems: string[]): Promise<{format: FormatName; entries: ArchiveEntry[]}> {
  const label = spec.path === '-' ? 'stdin' : spec.path;
  if (input.kind === 'dir') {
    if (spec.transport === 'oci-archive' || spec.transport === 'rootfs') {
      throw new FerryError('BAD_ARCHIVE', `${label}: is a directory, but ${spec.transport}: expects a tar file`);
    }
    const tree = await DirTree.open(input.path);
    const detected = await detectTree(tree);
    const format = spec.transport ?? detected;
    if (!format) throw new FerryError('UNKNOWN_FORMAT', `${label}: directory is not an image: tried oci (oci-layout + index.json) and docker-archive (manifest.json)`);
    if (format === 'docker-archive' || (format === 'oci' && detected === 'docker-archive' && !(await isOciLayout(tree)))) {
      return {format: 'docker-archive', entries: await readDockerArchiveEntries(tree, warnings, problems)};
    }
    return {format: 'oci', entries: await readTreeAs('oci', tree, warnings, problems)};
  }
  if (spec.transport === 'oci') throw new FerryError('BAD_ARCHIVE', `${label}: oci: expects a layout directory, got a file (use oci-archive:)`);
  if (spec.transport === 'rootfs') return {format: 'rootfs', entries: await readRootfsEntries(input.range, options.rootfs)};
  let tree: TarTree;
  try {
    tree = await TarTree.index(input.range, label);
  } catch (e) {
    if (e instanceof FerryError && e.code === 'BAD_TAR' && !spec.transport && /offset 0\b/.test(e.message)) {
      throw new FerryError('UNKNOWN_FORMAT', `${label}: not an image archive: tried docker-archive, oci-archive and rootfs (not a tar${input.outerCompression !== 'none' ? ` after ${input.outerCompression} decompression` : ''}; gzip, bzip2, xz and zstd are recognised)`);
    }
    throw e;
  }
  for (const d of tree.duplicates) problems.push(`${label}: member "${d}" is stored more than once`);
  if (!tree.hasEndMarker) {
    // A pipe that closed early at a member boundary looks like a complete, shorter archive: from
    // stdin nothing else can tell (a file's blobs are at least checked against their digests).
    if (spec.path === '-') throw new FerryError('BAD_TAR', `${label}: archive ends without the tar end-of-archive marker (input cut short?)`);
    problems.push(`${label}: no end-of-archive marker (truncated archive?)`);
  }
  const detected = await detectTree(tree);
  const format = spec.transport ?? detected ?? 'rootfs';
  if (format === 'rootfs') return {format, entries: await readRootfsEntries(input.range, options.rootfs)};
  if (spec.transport && detected === undefined) {
    throw new FerryError('UNKNOWN_FORMAT', `${label}: not a ${spec.transport} archive: it has neither manifest.json nor oci-layout + index.json`);
  }
  return {format, entries: await readTreeAs(format, tree, warnings, problems)};
}

async function detectTree(tree: FileTree): Promise<FormatName | undefined> {
  const oci = await isOciLayout(tree);
  const docker = await hasDockerManifest(tree);
  if (docker) return 'docker-archive';
  if (oci) return tree.kind === 'dir' ? 'oci' : 'oci-archive';
  const top = await tree.topLevel();
  if (top.includes('repositories') && top.some((n) => /^[a-f0-9]{64}$/.test(n))) {
    throw new FerryError('UNSUPPORTED', `${tree.label}: pre-1.10 docker save archive (repositories + v1 layer dirs, no manifest.json) is not supported`);
  }
  return undefined;
}

async function readTreeAs(format: FormatName, tree: FileTree, warnings: string[], problems: string[]): Promise<ArchiveEntry[]> {
  if (format === 'docker-archive') return readDockerArchiveEntries(tree, warnings, problems);
  if (!(await isOciLayout(tree))) throw new FerryError('UNKNOWN_FORMAT', `${tree.label}: not an OCI layout: oci-layout or index.json is missing`);
  return readLayoutEntries(tree, warnings, problems);
}

// ---- Destinations (writers) ----

export type WritableFormat = Exclude<FormatName, 'rootfs'>;
export const WRITABLE: readonly WritableFormat[] = ['docker-archive', 'oci-archive', 'oci'];

export interface DestinationSpec {
  format: WritableFormat;
  /** File or directory; `-` = stdout (tar forms only). */
  path: string;
}

/** `docker-archive:PATH`, `oci-archive:PATH` or `oci:DIR`; the form is always named (a usage error otherwise). */
export function parseDestination(text: string): DestinationSpec {
  const forms = WRITABLE.map((t) => (t === 'oci' ? 'oci:DIR' : `${t}:PATH`)).join(', ');
  if (text.startsWith('rootfs:')) throw new UsageError(`"${text}": rootfs: is not a destination form (a flattened rootfs is written by ferry export); use ${forms}`);
  for (const format of WRITABLE) {
    if (!text.startsWith(`${format}:`)) continue;
    const path = text.slice(format.length + 1);
    if (path === '') throw new UsageError(`"${text}": missing path after ${format}:`);
    if (path === '-' && format === 'oci') throw new UsageError(`"${text}": oci: is a directory and cannot be written to stdout; use oci-archive:- for a tar on stdout`);
    return {format, path};
  }
  throw new UsageError(`invalid destination "${text}": expected ${forms} (PATH - is stdout for the tar forms)`);
}

/** What the write op needs to know about a destination, and the writer itself. */
export interface ArchiveWriter {
  format: WritableFormat;
  output: 'file' | 'dir';
  /**
   * How multi-platform indexes fit: `keep` (the whole index), `keep+primary` (the whole index in
   * index.json, one image per name in docker's manifest.json), `one` (single images only).
   */
  indexes: 'keep' | 'keep+primary' | 'one';
  /** Layer compressions every consumer of this form loads as they are (FORMATS.md §8–9). */
  accepts(compression: Compression): boolean;
  write(entries: readonly ArchiveEntry[], target: string, options: FormatWriteOptions): Promise<FormatWriteResult>;
}

/**
 * The one table of writers; docker-archive's two layouts differ in what they can hold. Writers are
 * loaded when a write starts: commands that only read (inspect, verify, ls) start ~15 ms sooner.
 */
export function writerFor(format: WritableFormat, options: {dockerLayout?: DockerLayout} = {}): ArchiveWriter {
  // containerd (and every OCI consumer) reads gzip and zstd, not bzip2/xz.
  const oci = (c: Compression): boolean => c === 'none' || c === 'gzip' || c === 'zstd';
  switch (format) {
    case 'oci':
      return {format, output: 'dir', indexes: 'keep', accepts: oci, write: async (entries, target, o) => (await import('./formats/oci/write.js')).writeOciDirectory(entries, target, o)};
    case 'oci-archive':
      return {format, output: 'file', indexes: 'keep', accepts: oci, write: async (entries, target, o) => (await import('./formats/oci-archive/write.js')).writeOciArchive(entries, target, o)};
    case 'docker-archive': {
      const layout = options.dockerLayout ?? 'oci';
      return {
        format,
        output: 'file',
        indexes: layout === 'legacy' ? 'one' : 'keep+primary',
        // Docker 20.10 loads none/gzip/bzip2/xz, not zstd; the OCI view must also suit containerd.
        accepts: layout === 'legacy' ? (c) => c !== 'zstd' : (c) => c === 'none' || c === 'gzip',
        write: async (entries, target, o) => (await import('./formats/docker-archive/write.js')).writeDockerArchive(entries, target, {...o, layout}),
      };
    }
  }
}
