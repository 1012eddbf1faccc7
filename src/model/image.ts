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
  /** openCompressed: the first byte wanted (a download resumed where a partial copy ends). */
  start?: number;
}

/** A stored blob: its descriptor and its bytes, opened lazily and as often as needed. */
export interface Blob {
  readonly descriptor: Descriptor;
  /** Human name for errors: archive and member. */
  readonly label: string;
  /** The blob as stored, unchecked (a re-openable stream). */
  openCompressed(options?: OpenOptions): Readable;
  /** The blob's place in a file, when it has one (copied by offset). */
  readonly region?: Region;
  /**
   * Why the blob is not here, when it is not (a foreign layer, a blob the archive lacks): it can be
   * described and written as a descriptor, but not read.
   */
  readonly absent?: string;
  /** A foreign (non-distributable) layer: where its blob lives instead (the descriptor's urls). */
  readonly foreign?: boolean;
  /** The registry repository the blob is read from: another repository of that registry can mount it. */
  readonly origin?: {registry: string; repository: string};
}

/**
 * A layer: the stored blob (descriptor) and its uncompressed identity (diffID), opened lazily and as
 * often as needed (go-containerregistry's v1.Layer is the model).
 */
export interface Layer extends Blob {
  readonly diffId: Digest;
  /** Compression sniffed from the blob's first bytes (reads at most a few bytes). */
  compression(): Promise<Compression>;
  /**
   * The layer tar, checked as it streams: the blob against its digest and size, the tar against
   * the diffID, decompression behind the bomb guard. A reader that reaches the end gets the error
   * there instead of an end (src/io/blobs/checked-read.ts states which error wins).
   */
  openUncompressed(options?: OpenOptions): Readable;
  /** Computes what the reader left to compute on first use (a legacy archive's compressed-layer digests). */
  resolve?(): Promise<void>;
  /** manifest.json's LayerSources entry for it (a foreign layer docker ≤ 24 saved), re-emitted by docker-archive writers. */
  readonly layerSource?: Descriptor | undefined;
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

/** Why a manifest is content rather than a runnable image. */
export type ArtifactKind = 'attestation' | 'signature' | 'artifact';

/**
 * Content that is not a runnable image: an attestation (buildx / Docker 25+ provenance and SBOM), a
 * cosign signature, a Helm chart, an OCI 1.1 referrer — any manifest whose config is not an image
 * config or whose layers are not layer tars. Kept byte for byte wherever an OCI layout is written;
 * never selected by --image, walked as tars, squashed or loaded.
 */
export interface Artifact {
  readonly kind: ArtifactKind;
  manifest: RawDocument;
  /** The config blob and the layer blobs, as the manifest lists them. */
  blobs: Blob[];
  /** manifest.artifactType, else the config's media type. */
  artifactType: string;
  /** The manifest it refers to (OCI 1.1 `subject`, or an attestation's vnd.docker.reference.digest). */
  subject?: Descriptor | {digest: Digest};
}

/** Any node of an archive's tree. */
export type Node = Image | ImageIndex | Artifact;

/** One entry of an index: a present image, nested index or artifact, or an absent one (blob missing). */
export interface IndexChild {
  descriptor: Descriptor;
  target: Node | null;
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
  root: Node;
  /** The top-level descriptor (index.json entry) where the archive has one. */
  descriptor?: Descriptor;
  /** Every org.opencontainers.image.ref.name the archive gives it, as written (what `oci:DIR:REF` matches). */
  refNames?: string[];
}

/** The forms ferry reads and writes (one transport each, src/transports/table.ts). */
export type FormatName = 'docker-archive' | 'oci-archive' | 'oci' | 'rootfs' | 'dir' | 'bundle' | 'docker' | 'docker-daemon';

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

export function isImageIndex(node: Node): node is ImageIndex {
  return (node as ImageIndex).children !== undefined;
}

export function isArtifact(node: Node): node is Artifact {
  return (node as Artifact).kind !== undefined && (node as Artifact).blobs !== undefined;
}

/** How errors and notes name a node without names: its index, artifact manifest, or image ID. */
export function describeNode(node: Node): string {
  if (isImageIndex(node)) return `index ${node.document.digest}`;
  if (isArtifact(node)) return `${node.kind} ${node.manifest.digest}`;
  return `image ${node.config.digest}`;
}

/** Present runnable images below a node, depth first (first match wins, as the OCI index spec says). */
export function imagesOf(node: Node): Image[] {
  if (isArtifact(node)) return [];
  return isImageIndex(node) ? node.children.flatMap((c) => (c.target ? imagesOf(c.target) : [])) : [node];
}

/** Artifacts below a node, with the index descriptor that lists each (where one does). */
export function artifactsOf(node: Node, descriptor?: Descriptor): Array<{artifact: Artifact; descriptor: Descriptor | undefined}> {
  if (isArtifact(node)) return [{artifact: node, descriptor}];
  return isImageIndex(node) ? node.children.flatMap((c) => (c.target ? artifactsOf(c.target, c.descriptor) : [])) : [];
}

/** Absent children (platforms whose blobs the archive lacks) below a node. */
export function absentOf(node: Node): IndexChild[] {
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

export interface ListedArtifact {
  artifact: Artifact;
  /** The names of the entry that holds it (a top-level artifact's own; an attestation's index's). */
  names: string[];
  /** The descriptor that lists it (index.json's, or its index's), with its annotations and platform. */
  descriptor: Descriptor | undefined;
}

/** Every artifact of an archive, once each. */
export function listArtifacts(archive: Pick<ReadResult, 'entries'>): ListedArtifact[] {
  const seen = new Map<Artifact, ListedArtifact>();
  for (const entry of archive.entries) {
    for (const {artifact, descriptor} of artifactsOf(entry.root, entry.descriptor)) {
      const listed = seen.get(artifact);
      if (!listed) seen.set(artifact, {artifact, names: [...entry.names], descriptor});
      else for (const n of entry.names) if (!listed.names.includes(n)) listed.names.push(n);
    }
  }
  return [...seen.values()];
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

/** The manifest and index digests a node answers to (what a referrer's subject names). */
function nodeDigests(node: Node): string[] {
  if (isArtifact(node)) return [node.manifest.digest];
  if (isImageIndex(node)) return [node.document.digest, ...node.children.flatMap((c) => (c.target ? nodeDigests(c.target) : []))];
  return node.manifest ? [node.manifest.digest] : [];
}

/** What a top-level artifact refers to: its subject, or the manifest a cosign `sha256-HEX.sig` tag names. */
function artifactSubjects(entry: ArchiveEntry): string[] {
  const out: string[] = [];
  if (isArtifact(entry.root) && entry.root.subject) out.push(entry.root.subject.digest);
  for (const ref of [...(entry.refNames ?? []), ...entry.names]) {
    const tag = /sha256-([a-f0-9]{64})\.(?:sig|att|sbom)$/.exec(ref)?.[1];
    if (tag) out.push(`sha256:${tag}`);
  }
  return out;
}

/** The top-level artifacts of `source` that refer to any of `picked` (signatures, attestations, referrers). */
export function referrersAmong(source: Pick<ReadResult, 'entries'>, picked: readonly ArchiveEntry[]): ArchiveEntry[] {
  const digests = new Set(picked.flatMap((e) => nodeDigests(e.root)));
  return source.entries.filter((entry) => isArtifact(entry.root) && !picked.includes(entry) && artifactSubjects(entry).some((d) => digests.has(d)));
}
