import {FerryError, UsageError} from '../errors.js';
import {ANNOTATION_REF_NAME} from '../formats/layout/read.js';
import {manifestFor, planLayout, type LayoutPlan} from '../formats/layout/write.js';
import {referrersAmong, type Archive, type ArchiveEntry, type Image, type RawDocument, type ReadResult} from '../model/image.js';
import {sameReference, tryParseReference} from '../model/reference.js';
import type {Platform} from '../model/platform.js';
import {resolveSettings, type SettingsInput} from '../settings.js';
import {bundle} from './bundle/index.js';
import {dir} from './dir/index.js';
import {docker} from './docker/index.js';
import {dockerArchive} from './docker-archive/index.js';
import {dockerDaemon} from './docker-daemon/index.js';
import {openLocal} from './local.js';
import {oci} from './oci/index.js';
import {ociArchive} from './oci-archive/index.js';
import {rootfs} from './rootfs/index.js';
import type {ArchiveWriter, LocalSource, ReadOptions, Transport, TransportRef, WriterOptions} from './types.js';

/**
 * The one table of transports. A row is a name, its reference grammar, how it reads and how it
 * writes (types.ts); its code lives in the folder of the same name. Without a prefix, local forms are
 * detected in this order (docs/formats.md §0): a dir: layout (its `version` file), a bundle (its
 * bundle.json), docker-archive (manifest.json), then an OCI layout (oci for a directory, oci-archive
 * for a tar), then rootfs for any other tar. Remote rows (docker://, docker-daemon:) are only named.
 */
export const TRANSPORTS: readonly Transport[] = [dir, bundle, dockerArchive, ociArchive, oci, rootfs, docker, dockerDaemon];

/** Prefixes of other tools' transports ferry does not read: named in the error instead of read as a path. */
const FOREIGN = ['containers-storage', 'ostree', 'sif', 'tarball'];

function transportNamed(name: string): Transport | undefined {
  return TRANSPORTS.find((t) => t.name === name);
}

/** Splits `transport:rest`; a bare path (no known prefix) has no transport. */
export function parseTransportRef(text: string): TransportRef {
  const colon = text.indexOf(':');
  if (colon > 0) {
    const prefix = text.slice(0, colon);
    const row = transportNamed(prefix);
    if (row) return row.parse(text.slice(colon + 1), text);
    if (FOREIGN.includes(prefix)) throw new UsageError(`unsupported transport "${prefix}:": ferry reads ${TRANSPORTS.map((t) => t.usage).join(', ')}`);
  }
  return {transport: undefined, path: text, text};
}

/** A source: any transport reference, or a path whose form is detected. */
export function parseSource(text: string): TransportRef {
  return parseTransportRef(text);
}

/** A destination names its form (a usage error otherwise) and must be one ferry writes. */
export function parseDestination(text: string): TransportRef & {transport: string} {
  const forms = TRANSPORTS.filter((t) => t.writer).map((t) => t.destination ?? t.usage).join(', ');
  const prefix = text.slice(0, Math.max(0, text.indexOf(':')));
  if (FOREIGN.includes(prefix)) throw new UsageError(`invalid destination "${text}": ferry does not write ${prefix}:; expected ${forms}`);
  const ref = parseTransportRef(text);
  if (ref.transport === undefined) throw new UsageError(`invalid destination "${text}": expected ${forms} (PATH - is stdout for the tar forms)`);
  if (!transportNamed(ref.transport)?.writer) {
    const why = ref.transport === 'rootfs' ? ' (a flattened rootfs is written by ferry export)' : '';
    throw new UsageError(`"${text}": ${ref.transport}: is not a destination form${why}; use ${forms}`);
  }
  return {...ref, transport: ref.transport};
}

/** The writer for a parsed destination. */
export function writerFor(ref: TransportRef & {transport: string}, options: WriterOptions = {}): ArchiveWriter {
  const row = transportNamed(ref.transport);
  if (!row?.writer) throw new UsageError(`"${ref.text}": ${ref.transport}: is not a destination form`);
  return row.writer(ref, options);
}

export interface OpenArchiveOptions {
  /** Limits, temp dir, workers, and how registries are reached (settings.registry). */
  settings?: SettingsInput;
  /** What `-` reads; the CLI passes process.stdin (the library reads no stream it was not given). */
  stdin?: NodeJS.ReadableStream;
  /** rootfs: the platform written in the synthesized config (default: linux and this machine's architecture). */
  platform?: Platform;
  /** docker://: also read the signatures, SBOMs and attestations that refer to the image (as artifacts). */
  referrers?: boolean;
}

/**
 * Opens and reads a source (`docker-archive:x.tar`, `oci:dir`, `oci-archive:x.tar:name`,
 * `rootfs:x.tar`, `docker://host/repo:tag`, or a path whose form is detected). Close the archive (or `await using` it) to
 * release spooled temp files.
 */
export async function openArchive(source: string, options: OpenArchiveOptions = {}): Promise<Archive> {
  const ref = parseSource(source);
  const settings = resolveSettings(options.settings);
  const readOptions: ReadOptions & {platform?: Platform} = {settings, stdin: options.stdin, ...(options.platform ? {platform: options.platform} : {}), ...(options.referrers ? {referrers: true} : {})};
  const explicit = ref.transport === undefined ? undefined : transportNamed(ref.transport);
  if (explicit?.remote) {
    // A remote source answers with exactly the image named: nothing for narrow() to pick.
    const result = await explicit.remote.read(ref, readOptions);
    return {format: explicit.name as Archive['format'], location: ref.path, ...result, close: result.close, [Symbol.asyncDispose]: result.close};
  }
  if (explicit && !explicit.local) throw new UsageError(`"${source}": ${explicit.name}: cannot be read`);
  const local = await openLocal(ref.path, readOptions, {index: !(explicit?.local?.accepts === 'file' && !explicit.local.detect)}).catch((e: unknown) => {
    // `host/repo:tag` with no file of that name is most likely a registry image without its prefix.
    if (explicit === undefined && e instanceof FerryError && e.code === 'NOT_FOUND' && /[/:]/.test(ref.path) && tryParseReference(ref.path)) {
      throw new FerryError('NOT_FOUND', `${e.message} (for an image in a registry write docker://${ref.path}, in a daemon docker-daemon:${ref.path})`, {cause: e});
    }
    throw e;
  });
  try {
    const row = explicit ?? (await detect(local));
    const result = explicit ? await row.local!.read(local, ref, readOptions) : await readDetected(row, local, ref, readOptions);
    const dispose = (): Promise<void> => local.input.dispose();
    return {format: row.name as Archive['format'], location: ref.path, ...narrow(result, ref), close: dispose, [Symbol.asyncDispose]: dispose};
  } catch (e) {
    await local.input.dispose();
    throw e;
  }
}

/**
 * A detected docker-archive may be a file system tar that happens to hold a top-level manifest.json
 * (a web app's): when that file is not docker save's, or lists no image, the error says what was
 * detected and how to read the tar as a file system instead.
 */
async function readDetected(row: Transport, source: LocalSource, ref: TransportRef, options: ReadOptions): Promise<ReadResult> {
  const asRootfs = `if ${source.label} is a file system tar, read it as rootfs:${ref.path}`;
  try {
    const result = await row.local!.read(source, ref, options);
    if (row === dockerArchive && result.entries.length === 0) throw new FerryError('UNKNOWN_FORMAT', `${source.label}: detected a docker-archive (a top-level manifest.json), but it lists no image; ${asRootfs}`);
    return result;
  } catch (e) {
    if (row === dockerArchive && e instanceof FerryError && e.code === 'BAD_JSON' && e.message.includes(`${source.label}: manifest.json`)) {
      throw new FerryError('BAD_JSON', `${e.message}; detected a docker-archive by its top-level manifest.json: ${asRootfs}`, {cause: e});
    }
    throw e;
  }
}

/** The row whose form an unprefixed local source is, in table order. */
async function detect(source: LocalSource): Promise<Transport> {
  const tree = source.tree;
  if (tree) {
    for (const row of TRANSPORTS) {
      const local = row.local;
      if (!local?.detect) continue;
      if (local.accepts === 'file' && tree.kind === 'dir') continue;
      if (local.accepts === 'dir' && tree.kind !== 'dir') continue;
      if (await local.detect(tree)) return row;
    }
    const top = await tree.topLevel();
    if (top.includes('repositories') && top.some((n) => /^[a-f0-9]{64}$/.test(n))) {
      throw new FerryError('UNSUPPORTED', `${tree.label}: pre-1.10 docker save archive (repositories + v1 layer dirs, no manifest.json) is not supported`);
    }
    if (tree.kind === 'dir') throw new FerryError('UNKNOWN_FORMAT', `${source.label}: directory is not an image: tried oci (oci-layout + index.json) and docker-archive (manifest.json)`);
    return rootfs;
  }
  const outer = source.input.kind === 'file' && source.input.outerCompression !== 'none' ? ` after ${source.input.outerCompression} decompression` : '';
  throw new FerryError('UNKNOWN_FORMAT', `${source.label}: not an image archive: tried docker-archive, oci-archive and rootfs (not a tar${outer}; gzip, bzip2, xz and zstd are recognised)`);
}

/** What a `:NAME` or `@INDEX` suffix keeps of a read: the entries it names (skopeo's meaning), with their referrers. */
function narrow(result: ReadResult, ref: TransportRef): ReadResult {
  if (ref.index !== undefined) {
    const entry = result.entries[ref.index];
    if (!entry) throw new FerryError('NOT_FOUND', `${ref.path}: no image at position ${ref.index} (the archive holds ${result.entries.length})`);
    return {...result, entries: [entry, ...referrersAmong(result, [entry])]};
  }
  const name = ref.name;
  if (name === undefined) return result;
  const entries = result.entries.filter((e) => e.names.some((n) => n === name || sameReference(n, name)) || e.descriptor?.annotations?.[ANNOTATION_REF_NAME] === name);
  if (entries.length === 0) {
    const known = result.entries.flatMap((e) => e.names);
    throw new FerryError('NOT_FOUND', `${ref.path}: no image named "${name}" (names: ${known.join(', ') || 'none'})`);
  }
  // Signatures and attestations of the image named travel with it.
  return {...result, entries: [...entries, ...referrersAmong(result, entries)]};
}

/**
 * The manifest ferry writes for an image into an OCI layout or a registry: the stored one when it
 * still describes the blobs, else one generated from the model (a legacy docker save stores none).
 */
export function writtenManifest(image: Image): Promise<RawDocument> {
  return manifestFor(image);
}

/**
 * The blobs and documents an OCI layout or a registry holds for these entries, each blob once (its
 * bytes, its place in a file, or its stream), with every root's descriptor: what `ferry serve` serves.
 */
export function planStore(entries: readonly ArchiveEntry[]): Promise<LayoutPlan> {
  return planLayout(entries);
}
