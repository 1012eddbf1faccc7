import type {Readable} from 'node:stream';
import type {ConfigBlob} from './config.js';
import type {Descriptor} from './descriptor.js';
import type {Digest} from './digest.js';
import type {Compression} from './media-types.js';
import type {Platform} from './platform.js';
import type {Region} from './region.js';

export type {Region};

/** How a layer's bytes are read: the checks that run on the way, and who hears about progress. */
export interface OpenOptions {
  /** Called with the count of stored (compressed) bytes as they are read. */
  onBytes?: (bytes: number) => void;
  signal?: AbortSignal;
}

/**
 * A layer: the stored blob (descriptor) and its uncompressed identity (diffID), opened lazily and as
 * often as needed (go-containerregistry's v1.Layer is the model).
 */
export interface Layer {
  readonly descriptor: Descriptor;
  readonly diffId: Digest;
  /** Human name for errors: archive and member. */
  readonly label: string;
  /** Compression sniffed from the blob's first bytes (reads at most a few bytes). */
  compression(): Promise<Compression>;
  /** The blob as stored, unchecked (a re-openable stream). */
  openCompressed(options?: OpenOptions): Readable;
  /**
   * The layer tar, checked as it streams: the blob against its digest and size, the tar against
   * the diffID, decompression behind the bomb guard. A reader that reaches the end gets the error
   * there instead of an end (src/io/blobs/checked-read.ts states which error wins).
   */
  openUncompressed(options?: OpenOptions): Readable;
  /** The stored blob's place in a file, when it has one (copied by offset, walked without reading bodies). */
  readonly region?: Region;
  /**
   * Why the blob is not here, when it is not (a foreign layer, a blob the archive lacks): the layer
   * can be described but not read.
   */
  readonly absent?: string;
  /** Computes what the reader left to compute on first use (a legacy archive's compressed-layer digests). */
  resolve?(): Promise<void>;
}

/** Raw JSON document kept byte-exact (manifest, index) with its digest and parsed view. */
export interface RawDocument<T = unknown> {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
  parsed: T;
}

/** A runnable image. Its names live on the archive entry that holds it (one image, many names). */
export interface Image {
  /** The manifest as stored, or null where the archive has none (legacy docker-archive). */
  manifest: RawDocument | null;
  config: ConfigBlob;
  layers: Layer[];
  platform: Platform;
}

/** One entry of an index: a present image or nested index, or an absent one (blob missing). */
export interface IndexChild {
  descriptor: Descriptor;
  target: Image | ImageIndex | null;
  /** Why target is null (e.g. "blob sha256:… not in archive"). */
  absent?: string;
}

export interface ImageIndex {
  document: RawDocument;
  children: IndexChild[];
}

/** A top-level thing an archive holds: a single image or a (multi-platform) index, with its names. */
export interface ArchiveEntry {
  names: string[];
  root: Image | ImageIndex;
  /** The top-level descriptor (index.json entry) where the archive has one. */
  descriptor?: Descriptor;
}

/** The forms ferry reads and writes (one transport each, src/transports/table.ts). */
export type FormatName = 'docker-archive' | 'oci-archive' | 'oci' | 'rootfs';

/** What a reader found: the entries, and what did not stop it. */
export interface ReadResult {
  entries: ArchiveEntry[];
  /** Notes found while reading that did not stop it (e.g. absent platforms, skipped descriptors). */
  warnings: string[];
  /** Integrity problems of the container file itself (duplicate members, no end-of-archive marker); verify reports them. */
  problems: string[];
}

/** An opened source. Close it (or `await using` it) to release spooled temp files. */
export interface Archive extends ReadResult, AsyncDisposable {
  format: FormatName;
  /** The location the user named. */
  location: string;
  close(): Promise<void>;
}

export function isImageIndex(node: Image | ImageIndex): node is ImageIndex {
  return (node as ImageIndex).children !== undefined;
}

/** Present images below a node, depth first (first match wins, as the OCI index spec says). */
export function imagesOf(node: Image | ImageIndex): Image[] {
  return isImageIndex(node) ? node.children.flatMap((c) => (c.target ? imagesOf(c.target) : [])) : [node];
}

/** Absent children (platforms whose blobs the archive lacks) below a node. */
export function absentOf(node: Image | ImageIndex): IndexChild[] {
  return isImageIndex(node) ? node.children.flatMap((c) => (c.target ? absentOf(c.target) : [c])) : [];
}

export interface ListedImage {
  image: Image;
  /** Every name any entry gives the image. */
  names: string[];
  /** The first entry that holds it. */
  entry: ArchiveEntry;
}

/**
 * Every present image of an archive, once each however many entries reach it (one descriptor per
 * name, or a manifest both inside an index and on its own), with all the names the entries give it.
 */
export function listImages(archive: Pick<ReadResult, 'entries'>): ListedImage[] {
  const byImage = new Map<Image, ListedImage>();
  for (const entry of archive.entries) {
    for (const image of imagesOf(entry.root)) {
      const listed = byImage.get(image);
      if (!listed) byImage.set(image, {image, names: [...entry.names], entry});
      else for (const n of entry.names) if (!listed.names.includes(n)) listed.names.push(n);
    }
  }
  return [...byImage.values()];
}

/** Absent children (platforms whose blobs the archive lacks), with the names of their entry. */
export function listAbsent(archive: Pick<ReadResult, 'entries'>): Array<{child: IndexChild; names: string[]}> {
  return archive.entries.flatMap((entry) => absentOf(entry.root).map((child) => ({child, names: entry.names})));
}

/** Runs every layer's `resolve()` (once each): what an op that reports or writes descriptors needs first. */
export async function resolveLayers(images: readonly Image[]): Promise<void> {
  const seen = new Set<Layer>();
  for (const image of images) for (const layer of image.layers) if (layer.resolve && !seen.has(layer)) seen.add(layer);
  await Promise.all([...seen].map((layer) => layer.resolve!()));
}
