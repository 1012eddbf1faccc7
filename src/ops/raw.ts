import {FerryError, UsageError} from '../errors.js';
import type {Descriptor} from '../model/descriptor.js';
import {sha256Of} from '../model/digest.js';
import {imagesOf, isImageIndex, type Archive, type Image, type ImageIndex, type Layer} from '../model/image.js';
import {compressionOfMediaType, isNondistributable, layerMediaType, MediaType, toOciMediaType} from '../model/media-types.js';
import {formatPlatform, platformMatches, type Platform} from '../model/platform.js';
import {pickImage, selectEntries} from './select.js';

/**
 * `ferry manifest` and `ferry config`: the stored documents, byte for byte, so that their sha256 is
 * the digest the archive names (what `skopeo inspect --raw` prints for a stored manifest).
 */

export interface RawResult {
  kind: 'index' | 'manifest' | 'config';
  bytes: Buffer;
  digest: string;
  mediaType: string;
  /** False when the archive stores no such document and this one was generated (see `note`). */
  stored: boolean;
  /** Why a document was generated, for stderr. */
  note?: string;
}

export interface RawOptions {
  images?: readonly string[];
  platform?: Platform;
  note?: (message: string) => void;
}

/**
 * The manifest of the selected entry: an index prints as the index (`platform` picks one of its
 * images instead); an image prints its manifest. A legacy docker-archive stores none: then the
 * manifest ferry writes for that image (ferry convert --compress keep to oci:, oci-archive: or a
 * docker-archive) is returned, with `stored: false`.
 */
export async function rawManifest(archive: Archive, options: RawOptions = {}): Promise<RawResult> {
  const refs = options.images ?? [];
  const entries = await selectEntries(archive, refs);
  const roots = [...new Set(entries.map((e) => e.root))];
  if (roots.length === 0) throw new FerryError('NOT_FOUND', `${archive.location}: holds no image`);
  let target: Image | ImageIndex;
  if (options.platform) {
    const want = options.platform;
    const images = [...new Set(roots.flatMap((r) => imagesOf(r)))];
    const hits = images.filter((i) => platformMatches(i.platform, want));
    if (hits.length === 0) throw new FerryError('NOT_FOUND', `${archive.location}: no image for platform ${formatPlatform(want)} (present: ${images.map((i) => formatPlatform(i.platform)).join(', ') || 'none'})`);
    if (hits.length > 1) throw new UsageError(`${archive.location}: ${hits.length} images for platform ${formatPlatform(want)}; choose one with --image`);
    target = hits[0]!;
  } else {
    if (roots.length > 1) {
      const list = entries.map((e) => e.names.join(', ') || (isImageIndex(e.root) ? e.root.document.digest : e.root.config.digest).slice(0, 19));
      throw new UsageError(`${archive.location} holds ${roots.length} images or indexes: ${[...new Set(list)].join('; ')}; choose one with --image NAME, image ID or digest`);
    }
    target = roots[0]!;
  }
  if (isImageIndex(target)) return {kind: 'index', bytes: target.document.bytes, digest: target.document.digest, mediaType: target.document.mediaType, stored: true};
  if (target.manifest) return {kind: 'manifest', bytes: target.manifest.bytes, digest: target.manifest.digest, mediaType: target.manifest.mediaType, stored: true};
  const bytes = await writtenManifest(target);
  return {
    kind: 'manifest',
    bytes,
    digest: sha256Of(bytes),
    mediaType: MediaType.ociManifest,
    stored: false,
    note: `${archive.location} stores no manifest (legacy docker save layout); printed the one ferry writes for this image (ferry convert --compress keep)`,
  };
}

/** The config blob of the selected image (pickImage's rules: --image, --platform, else the host's platform). */
export async function rawConfig(archive: Archive, options: RawOptions = {}): Promise<RawResult> {
  const picked = await pickImage(archive, options.images ?? [], {...(options.platform ? {platform: options.platform} : {}), ...(options.note ? {note: options.note} : {})});
  const config = picked.image.config;
  return {kind: 'config', bytes: config.bytes, digest: config.digest, mediaType: config.mediaType, stored: true};
}

/**
 * The OCI manifest ferry's layout writer generates for an image that has none (legacy
 * docker-archive): src/formats/layout/write.ts `manifestFor`, which an op may not import (ops
 * reach formats only through transports). Same rules, same key order; test/cli/raw-documents.test.ts
 * checks the two agree, reading what `ferry convert` wrote with skopeo.
 */
async function writtenManifest(image: Image): Promise<Buffer> {
  const layers: Array<Record<string, unknown>> = [];
  for (const layer of image.layers) layers.push(descriptorJson({...layerFields(layer.descriptor), mediaType: await ociLayerMediaType(layer)}));
  const configType = image.config.mediaType === '' || image.config.mediaType === MediaType.dockerConfig ? MediaType.ociConfig : image.config.mediaType;
  const config = descriptorJson({mediaType: configType, digest: image.config.digest, size: image.config.bytes.length});
  return Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers}));
}

function layerFields(d: Descriptor): Descriptor {
  const out: Descriptor = {mediaType: d.mediaType, digest: d.digest, size: d.size};
  if (d.urls) out.urls = d.urls;
  if (d.annotations) out.annotations = d.annotations;
  return out;
}

async function ociLayerMediaType(layer: Layer): Promise<string> {
  const declared = toOciMediaType(layer.descriptor.mediaType);
  const known = declared.startsWith('application/vnd.oci.image.layer.') || declared.startsWith('application/vnd.docker.image.rootfs.');
  if (!known) return declared;
  const compression = await layer.compression();
  if (compressionOfMediaType(declared) === compression) return declared;
  if (isNondistributable(declared)) {
    if (compression === 'gzip') return MediaType.ociLayerNondistGzip;
    if (compression === 'zstd') return MediaType.ociLayerNondistZstd;
    return MediaType.ociLayerNondist;
  }
  return layerMediaType(compression, 'oci');
}

function descriptorJson(d: Descriptor): Record<string, unknown> {
  const out: Record<string, unknown> = {mediaType: d.mediaType, digest: d.digest, size: d.size};
  if (d.urls && d.urls.length > 0) out.urls = d.urls;
  if (d.annotations && Object.keys(d.annotations).length > 0) out.annotations = Object.fromEntries(Object.entries(d.annotations).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  if (d.platform) out.platform = d.platform;
  if (d.artifactType !== undefined) out.artifactType = d.artifactType;
  return out;
}
