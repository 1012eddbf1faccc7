import {FerryError} from '../../errors.js';
import {openCheckedBlob} from '../../io/blobs/checked-read.js';
import type {TrackBlob} from '../../io/blobs/jobs.js';
import type {Member, MemberWriteOptions} from '../../io/fs/members.js';
import {isFetchedLayer} from '../../io/layers/fetch.js';
import {isScratchLayer} from '../../io/layers/range-layer.js';
import {isRecord, type Descriptor} from '../../model/descriptor.js';
import {sha256Of, type Digest} from '../../model/digest.js';
import {isArtifact, isImageIndex, type ArchiveEntry, type Blob, type Image, type ImageIndex, type Layer, type Node, type RawDocument} from '../../model/image.js';
import {compressionOfMediaType, isIndexMediaType, isNondistributable, layerMediaType, MediaType, toDockerMediaType, toOciMediaType} from '../../model/media-types.js';
import {tryParseReference} from '../../model/reference.js';
import {ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, blobPath} from './read.js';

/** What every writer takes besides the entries; filled in by the write op (concurrency, workers, progress). */
export interface FormatWriteOptions extends MemberWriteOptions {
  /** For each index entry, the one image docker's manifest.json lists (docker-archive only). */
  primary?: ReadonlyMap<ArchiveEntry, Image>;
  /** The org.opencontainers.image.ref.name of the one image written, verbatim (a destination's `:REF`). */
  refName?: string;
  /** Rewrite every manifest and index into this vocabulary (default: keep the source's bytes where they fit). */
  manifestFormat?: ManifestFormat;
  /** Layer blobs listed but not stored (PlanOptions.omitBlobs). */
  omitBlobs?: ReadonlySet<string>;
  /** Blobs stored with no manifest listing them (PlanOptions.looseBlobs). */
  looseBlobs?: readonly Blob[];
  /** A progress line per blob sent (a push). */
  trackBlob?: TrackBlob;
}

export interface FormatWriteResult {
  images: number;
  blobs: number;
  bytes: number;
  /** Manifests and indexes whose digest changed on the way (recompression, a platform pick, --manifest-format). */
  rewritten?: Array<{from: Digest; to: Digest}>;
  /** The manifest or index the destination now names (a registry reference). */
  digest?: Digest;
  /** What an upload sent and what the destination already had (a registry). */
  uploads?: UploadStats;
  /** What a daemon said it loaded (`name:tag`, or an image ID for an unnamed image). */
  loaded?: string[];
}

export interface UploadStats {
  /** Bytes sent in blob bodies. */
  uploadedBytes: number;
  /** Bytes of blobs the destination already had (HEAD) or mounted from another repository. */
  skippedBytes: number;
  uploaded: number;
  skipped: number;
  mounted: number;
  retries: number;
}

/** `oci-layout` exactly as Docker 25 and skopeo write it (with the space). */
export const OCI_LAYOUT_BYTES = Buffer.from('{"imageLayoutVersion": "1.0.0"}');

/**
 * A blob as an archive member: a byte range of a file when the blob has one (copied by offset, on a
 * worker, hashed against its digest on the way; a scratch file ferry just wrote and hashed is not
 * hashed again), else its stream, checked the same way. A foreign layer that is not here has no
 * member: its descriptor (with urls) is all a layout keeps of it, as registries do.
 */
export function blobMember(name: string, blob: Blob): Member | undefined {
  if (blob.absent !== undefined && blob.foreign) return undefined;
  const source = blob.region;
  if (!source) return {type: 'stream', name, size: blob.descriptor.size, open: () => openCheckedBlob(blob)};
  if (isScratchLayer(blob)) return {type: 'blob', name, size: blob.descriptor.size, source, owned: true};
  // Fetched and hashed as it arrived (io/layers/fetch.ts): copied as it is, and left for the fetch cache.
  if (isFetchedLayer(blob)) return {type: 'blob', name, size: blob.descriptor.size, source};
  return {type: 'blob', name, size: blob.descriptor.size, source, verify: {digest: blob.descriptor.digest, what: `${blob.label}: blob`}};
}

/**
 * The OCI media type for a layer as it will be stored: the declared one when it agrees with the
 * bytes (mapped from Docker's vocabulary), else the one the sniffed compression calls for — tools
 * mislabel (docs/formats.md §3), and a manifest we generate must tell the truth.
 */
export async function ociLayerMediaType(layer: Layer): Promise<string> {
  const declared = toOciMediaType(layer.descriptor.mediaType);
  const known = declared.startsWith('application/vnd.oci.image.layer.') || declared.startsWith('application/vnd.docker.image.rootfs.');
  if (!known || layer.absent !== undefined) return declared; // not ours to rename, or no bytes to tell
  const compression = await layer.compression();
  if (compressionOfMediaType(declared) === compression) return declared;
  if (isNondistributable(declared)) {
    if (compression === 'gzip') return MediaType.ociLayerNondistGzip;
    if (compression === 'zstd') return MediaType.ociLayerNondistZstd;
    return MediaType.ociLayerNondist;
  }
  return layerMediaType(compression, 'oci');
}

/** Descriptor JSON with a fixed key order (deterministic bytes). Annotation keys sorted, as Go does. */
export function descriptorJson(d: Descriptor): Record<string, unknown> {
  const out: Record<string, unknown> = {mediaType: d.mediaType, digest: d.digest, size: d.size};
  if (d.urls && d.urls.length > 0) out.urls = d.urls;
  if (d.annotations && Object.keys(d.annotations).length > 0) out.annotations = sortedRecord(d.annotations);
  if (d.platform) out.platform = d.platform;
  if (d.artifactType !== undefined) out.artifactType = d.artifactType;
  return out;
}

export function sortedRecord<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function document(value: unknown, mediaType: string): RawDocument {
  const bytes = Buffer.from(JSON.stringify(value));
  return {bytes, digest: sha256Of(bytes), mediaType, parsed: value};
}

function sameBlobs(listed: unknown, written: readonly Descriptor[]): boolean {
  if (!Array.isArray(listed) || listed.length !== written.length) return false;
  return listed.every((d, i) => isRecord(d) && d.digest === written[i]!.digest && d.size === written[i]!.size);
}

/** The manifest vocabulary to write: as the source has it (undefined), or rewritten to one of the two. */
export type ManifestFormat = 'oci' | 'docker';

function flavourOf(mediaType: string): ManifestFormat | undefined {
  if (mediaType === MediaType.ociManifest || mediaType === MediaType.ociIndex) return 'oci';
  if (mediaType === MediaType.dockerManifest || mediaType === MediaType.dockerManifestList) return 'docker';
  return undefined;
}

/** A layer's media type in Docker schema2's vocabulary, or an error where it has none (zstd). */
function dockerLayerMediaType(oci: string, label: string): string {
  const docker = toDockerMediaType(oci);
  if (!docker) throw new FerryError('UNSUPPORTED', `${label}: Docker schema2 manifests have no media type for ${oci} (write OCI manifests, or recompress with --compress gzip)`);
  return docker;
}

/**
 * The image manifest a layout (or a registry) gets for `image`. The source manifest's exact bytes are
 * kept — its digest survives, Docker schema2 included — when its config and every layer blob are the
 * ones being written and no other vocabulary is asked for; otherwise a manifest is generated from the
 * model, OCI by default (umoci and oci-image-tool read only OCI) or Docker schema2 when asked:
 * recompressed layers get new descriptors, each layer is labelled by what its bytes are, and the
 * manifest's annotations, subject and artifactType are carried over; a kept layer keeps its urls and
 * annotations.
 */
export async function manifestFor(image: Image, format?: ManifestFormat): Promise<RawDocument> {
  const layers: Descriptor[] = [];
  for (const layer of image.layers) layers.push({...pickLayerFields(layer.descriptor), mediaType: await ociLayerMediaType(layer)});
  const config: Descriptor = {mediaType: configMediaType(image.config.mediaType), digest: image.config.digest, size: image.config.bytes.length};
  const source = image.manifest;
  const parsed = source?.parsed;
  const sourceFlavour = source ? flavourOf(source.mediaType) : undefined;
  if (source && sourceFlavour && (format === undefined || format === sourceFlavour) && isRecord(parsed) && isRecord(parsed.config) && parsed.config.digest === config.digest && parsed.config.size === config.size && sameBlobs(parsed.layers, layers)) {
    return source;
  }
  if (format === 'docker') {
    const out: Record<string, unknown> = {schemaVersion: 2, mediaType: MediaType.dockerManifest};
    out.config = descriptorJson({...config, mediaType: MediaType.dockerConfig});
    out.layers = layers.map((l, i) => descriptorJson({...l, mediaType: dockerLayerMediaType(l.mediaType, image.layers[i]!.label)}));
    return document(out, MediaType.dockerManifest);
  }
  const out: Record<string, unknown> = {schemaVersion: 2, mediaType: MediaType.ociManifest};
  if (isRecord(parsed) && typeof parsed.artifactType === 'string') out.artifactType = parsed.artifactType;
  out.config = descriptorJson(config);
  out.layers = layers.map(descriptorJson);
  if (isRecord(parsed) && isRecord(parsed.subject)) out.subject = parsed.subject;
  if (isRecord(parsed) && isRecord(parsed.annotations)) out.annotations = sortedRecord(parsed.annotations);
  return document(out, MediaType.ociManifest);
}

function pickLayerFields(d: Descriptor): Descriptor {
  const out: Descriptor = {mediaType: d.mediaType, digest: d.digest, size: d.size};
  if (d.urls) out.urls = d.urls;
  if (d.annotations) out.annotations = d.annotations;
  return out;
}

function configMediaType(mediaType: string): string {
  // Docker 25 labels even Docker-flavoured configs with the OCI type (docs/formats.md §2).
  if (mediaType === '' || mediaType === MediaType.dockerConfig) return MediaType.ociConfig;
  return mediaType;
}

/** The written tree of one entry: every blob it needs and its root descriptor. */
export interface LayoutPlan {
  /** Blobs by digest, each stored once however many images share it. */
  blobs: Map<Digest, Member>;
  /** Root descriptor (manifest or index) per entry, in entry order. */
  roots: Array<{entry: ArchiveEntry; descriptor: Descriptor}>;
  /** The manifests and indexes among the blobs, each after the ones it lists (what a registry needs first). */
  documents: Array<{digest: Digest; mediaType: string}>;
  /** Manifests and indexes written with other bytes than the source's (old → new digest). */
  rewritten: Array<{from: Digest; to: Digest}>;
  /** Image manifests written. */
  images: number;
}

/**
 * Resolves every entry to the blobs an OCI layout needs: layers (streamed from their source),
 * configs, manifests and nested indexes (bytes). Shared nodes and blobs are planned once.
 */
export interface PlanOptions {
  manifestFormat?: ManifestFormat;
  /** Layer blobs the manifests list but the output does not store (the destination has them: a differential bundle). */
  omitBlobs?: ReadonlySet<string>;
  /** Blobs stored with no manifest listing them here (a bundle part holding some layers of an image completed in a later part). */
  looseBlobs?: readonly Blob[];
}

/** What planLayout takes from a writer's options. */
export function planOptions(options: FormatWriteOptions): PlanOptions {
  return {
    ...(options.manifestFormat ? {manifestFormat: options.manifestFormat} : {}),
    ...(options.omitBlobs ? {omitBlobs: options.omitBlobs} : {}),
    ...(options.looseBlobs ? {looseBlobs: options.looseBlobs} : {}),
  };
}

export async function planLayout(entries: readonly ArchiveEntry[], options: PlanOptions = {}): Promise<LayoutPlan> {
  const blobs = new Map<Digest, Member>();
  const written = new Map<Node, Descriptor>();
  const documents: LayoutPlan['documents'] = [];
  const rewritten: LayoutPlan['rewritten'] = [];
  let images = 0;
  const putBytes = (doc: {bytes: Buffer; digest: Digest}): void => {
    if (!blobs.has(doc.digest)) blobs.set(doc.digest, {type: 'file', name: blobPath(doc.digest), bytes: doc.bytes});
  };
  const putBlob = (blob: Blob): void => {
    if (blobs.has(blob.descriptor.digest) || options.omitBlobs?.has(blob.descriptor.digest)) return;
    const member = blobMember(blobPath(blob.descriptor.digest), blob);
    if (member) blobs.set(blob.descriptor.digest, member);
  };
  const visit = async (node: Node): Promise<Descriptor> => {
    const done = written.get(node);
    if (done) return done;
    let descriptor: Descriptor;
    if (isArtifact(node)) {
      // Content kept as it is: the manifest's bytes and every blob it lists.
      node.blobs.forEach(putBlob);
      putBytes(node.manifest);
      descriptor = {mediaType: node.manifest.mediaType, digest: node.manifest.digest, size: node.manifest.bytes.length};
    } else if (isImageIndex(node)) {
      const children: Descriptor[] = [];
      for (const child of node.children) {
        if (!child.target) continue; // the write op drops absent platforms (with a note) before this
        const d = await visit(child.target);
        children.push({...child.descriptor, mediaType: d.mediaType, digest: d.digest, size: d.size});
      }
      const doc = indexFor(node, children, options.manifestFormat);
      if (doc.digest !== node.document.digest) rewritten.push({from: node.document.digest, to: doc.digest});
      putBytes(doc);
      descriptor = {mediaType: doc.mediaType, digest: doc.digest, size: doc.bytes.length};
    } else {
      images++;
      node.layers.forEach(putBlob);
      putBytes(node.config);
      const doc = await manifestFor(node, options.manifestFormat);
      if (node.manifest && doc.digest !== node.manifest.digest) rewritten.push({from: node.manifest.digest, to: doc.digest});
      putBytes(doc);
      descriptor = {mediaType: doc.mediaType, digest: doc.digest, size: doc.bytes.length};
    }
    written.set(node, descriptor);
    if (!documents.some((d) => d.digest === descriptor.digest)) documents.push({digest: descriptor.digest, mediaType: descriptor.mediaType});
    return descriptor;
  };
  const roots: LayoutPlan['roots'] = [];
  for (const entry of entries) roots.push({entry, descriptor: await visit(entry.root)});
  options.looseBlobs?.forEach(putBlob);
  return {blobs, roots, documents, rewritten, images};
}

/**
 * An index's bytes: kept when it lists exactly the children written (same digests, media types and
 * order) and no other vocabulary is asked for; otherwise regenerated — absent platforms dropped, child
 * descriptors updated, each child's platform and annotations and the index's own annotations kept —
 * as a Docker manifest list when it was one and still lists only Docker manifests, else as an OCI index.
 */
export function indexFor(index: ImageIndex, children: readonly Descriptor[], format?: ManifestFormat): RawDocument {
  const parsed = index.document.parsed;
  const sourceFlavour = flavourOf(index.document.mediaType);
  if (sourceFlavour && (format === undefined || format === sourceFlavour) && isRecord(parsed) && sameBlobs(parsed.manifests, children)) {
    const listed = parsed.manifests as Array<Record<string, unknown>>;
    if (listed.every((d, i) => d.mediaType === children[i]!.mediaType)) return index.document;
  }
  // A Docker manifest list made anew (a platform subset) stays one while every child is a Docker
  // manifest, as crane and regclient do; asked for OCI, or listing an OCI manifest, it becomes an OCI index.
  const dockerList = format === 'docker' || (format === undefined && sourceFlavour === 'docker' && children.every((c) => c.mediaType === MediaType.dockerManifest));
  if (dockerList) {
    const manifests = children.map((c) => {
      if (c.mediaType !== MediaType.dockerManifest) throw new FerryError('UNSUPPORTED', `index ${index.document.digest}: a Docker manifest list can only list Docker manifests, not ${c.mediaType}`);
      return descriptorJson(c);
    });
    return document({schemaVersion: 2, mediaType: MediaType.dockerManifestList, manifests}, MediaType.dockerManifestList);
  }
  const out: Record<string, unknown> = {schemaVersion: 2, mediaType: MediaType.ociIndex};
  if (isRecord(parsed) && typeof parsed.artifactType === 'string') out.artifactType = parsed.artifactType;
  out.manifests = children.map(descriptorJson);
  if (isRecord(parsed) && isRecord(parsed.subject)) out.subject = parsed.subject;
  if (isRecord(parsed) && isRecord(parsed.annotations)) out.annotations = sortedRecord(parsed.annotations);
  return document(out, MediaType.ociIndex);
}

/** How index.json names an image: the annotations for one full name (docker.io/library/demo:1), or an OCI tag-only ref.name. */
export type NameAnnotations = (fullName: string) => Record<string, string>;

/**
 * Docker 25's `docker save` form: containerd's full name plus the tag alone in ref.name
 * (docs/formats.md §2); containerd and Docker 25+ read the full name.
 */
export const dockerSaveNames: NameAnnotations = (full) => {
  const ref = tryParseReference(full);
  return {[ANNOTATION_CONTAINERD_NAME]: full, ...(ref?.tag !== undefined ? {[ANNOTATION_REF_NAME]: ref.tag} : {})};
};

/**
 * The form for oci/oci-archive (README "Names in archives"): containerd's full name, which podman
 * load and ctr import read first, plus the full name in ref.name — what podman save writes and what
 * `skopeo copy oci-archive:FILE:NAME` and `umoci --image DIR:NAME` match verbatim.
 */
export const ociLayoutNames: NameAnnotations = (name) =>
  // A full name always has a '/' (docker.io/library/…); without one it is a tag-only ref.name kept as read.
  name.includes('/') ? {[ANNOTATION_CONTAINERD_NAME]: name, [ANNOTATION_REF_NAME]: name} : {[ANNOTATION_REF_NAME]: name};

/**
 * index.json: one descriptor per name (so every name can be picked), one bare descriptor for an
 * unnamed entry. Non-name annotations and platform of the source descriptor are kept.
 */
export function indexJson(roots: LayoutPlan['roots'], names: NameAnnotations, refName?: string): Buffer {
  const manifests: Array<Record<string, unknown>> = [];
  for (const {entry, descriptor} of roots) {
    // An artifact (a chart, a signature) keeps the descriptor it came with, names and all: its names
    // are the tool's (a chart version, cosign's sha256-HEX.sig), not image references.
    if (isArtifact(entry.root) && entry.descriptor) {
      manifests.push(descriptorJson(entry.descriptor));
      continue;
    }
    const base: Descriptor = {mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size};
    const kept = Object.fromEntries(Object.entries(entry.descriptor?.annotations ?? {}).filter(([k]) => k !== ANNOTATION_CONTAINERD_NAME && k !== ANNOTATION_REF_NAME));
    if (entry.descriptor?.platform && !isIndexMediaType(descriptor.mediaType)) base.platform = entry.descriptor.platform;
    if (refName !== undefined) {
      // skopeo's `oci:DIR:REF`: REF as given; containerd's full name beside it when REF is a reference.
      manifests.push(descriptorJson({...base, annotations: {...kept, ...(entry.names[0]?.includes('/') ? {[ANNOTATION_CONTAINERD_NAME]: entry.names[0]} : {}), [ANNOTATION_REF_NAME]: refName}}));
      continue;
    }
    if (entry.names.length === 0) manifests.push(descriptorJson(Object.keys(kept).length > 0 ? {...base, annotations: kept} : base));
    for (const name of entry.names) manifests.push(descriptorJson({...base, annotations: {...kept, ...names(name)}}));
  }
  return Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.ociIndex, manifests}));
}

/** The members of an OCI layout (oci-layout, index.json, blobs/…), in byte order of their names. */
export function layoutMembers(plan: LayoutPlan, names: NameAnnotations, refName?: string): Member[] {
  const algorithms = new Set([...plan.blobs.keys()].map((d) => d.slice(0, d.indexOf(':'))));
  const members: Member[] = [
    {type: 'file', name: 'oci-layout', bytes: OCI_LAYOUT_BYTES},
    {type: 'file', name: 'index.json', bytes: indexJson(plan.roots, names, refName)},
    {type: 'dir', name: 'blobs'},
    ...[...algorithms].map((a): Member => ({type: 'dir', name: `blobs/${a}`})),
    ...plan.blobs.values(),
  ];
  return members;
}

/** The image the entry stands for in a one-image-per-name view (docker's manifest.json); none for an artifact. */
export function primaryImage(entry: ArchiveEntry, options: FormatWriteOptions): Image | undefined {
  if (isArtifact(entry.root)) return undefined;
  if (!isImageIndex(entry.root)) return entry.root;
  const image = options.primary?.get(entry);
  if (!image) throw new FerryError('UNSUPPORTED', `${entry.names.join(', ') || 'index'}: no image chosen for docker's manifest.json from a multi-platform index`);
  return image;
}

