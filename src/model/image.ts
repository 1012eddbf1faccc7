import type {Readable} from 'node:stream';
import type {ConfigBlob} from './config.js';
import type {Descriptor} from './descriptor.js';
import type {Digest} from './digest.js';
import type {Compression} from './media-types.js';
import type {Platform} from './platform.js';

/**
 * Where a blob's bytes are when they sit uncompressed in a file: lets the layer engine walk a layer
 * tar by offset (seek past bodies) instead of streaming it.
 */
export interface FileRegion {
  path: string;
  offset: number;
  size: number;
  label: string;
}

/** A layer: the stored blob (descriptor) and its uncompressed identity (diffID), opened lazily. */
export interface Layer {
  readonly descriptor: Descriptor;
  readonly diffId: Digest;
  /** Human name for errors: archive and member. */
  readonly label: string;
  /** Compression sniffed from the blob's first bytes (reads at most a few bytes). */
  compression(): Promise<Compression>;
  /** The blob as stored (a re-openable stream). */
  openCompressed(): Readable;
  /** The layer tar (decompressed when needed, with the bomb guard). */
  openUncompressed(): Promise<Readable>;
  /** The stored blob's file region, when it has one. */
  readonly region?: FileRegion;
}

/** Raw JSON document kept byte-exact (manifest, index) with its digest and parsed view. */
export interface RawDocument<T = unknown> {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
  parsed: T;
}

export interface Image {
  /** Names the archive gives this image (RepoTags, ref annotations), most specific first. */
  names: string[];
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

export type FormatName = 'docker-archive' | 'oci-archive' | 'oci' | 'rootfs';

export interface Archive {
  format: FormatName;
  /** The location the user named. */
  location: string;
  entries: ArchiveEntry[];
  /** Notes found while reading that did not stop it (e.g. absent platforms, skipped descriptors). */
  warnings: string[];
  /** Integrity problems of the container file itself (duplicate members, no end-of-archive marker). */
  problems: string[];
  /** Releases temp files (spooled stdin or decompressed input). */
  close(): Promise<void>;
}

export function isImageIndex(node: Image | ImageIndex): node is ImageIndex {
  return (node as ImageIndex).children !== undefined;
}

/** Every present image of an archive with the names of its entry and its platform, depth first. */
export function listImages(archive: Pick<Archive, 'entries'>): Array<{image: Image; names: string[]; entry: ArchiveEntry}> {
  const out: Array<{image: Image; names: string[]; entry: ArchiveEntry}> = [];
  const visit = (node: Image | ImageIndex, names: string[], entry: ArchiveEntry): void => {
    if (!isImageIndex(node)) {
      out.push({image: node, names, entry});
      return;
    }
    for (const child of node.children) if (child.target) visit(child.target, names, entry);
  };
  for (const entry of archive.entries) visit(entry.root, entry.names, entry);
  return out;
}

/** Absent children (platforms whose blobs the archive lacks), with their paths. */
export function listAbsent(archive: Pick<Archive, 'entries'>): Array<{child: IndexChild; names: string[]}> {
  const out: Array<{child: IndexChild; names: string[]}> = [];
  const visit = (node: Image | ImageIndex, names: string[]): void => {
    if (!isImageIndex(node)) return;
    for (const child of node.children) {
      if (child.target) visit(child.target, names);
      else out.push({child, names});
    }
  };
  for (const entry of archive.entries) visit(entry.root, entry.names);
  return out;
}
