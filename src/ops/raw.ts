import {FerryError, UsageError} from '../errors.js';
import {describeNode, imagesOf, isArtifact, isImageIndex, type Archive, type Node} from '../model/image.js';
import {formatPlatform, platformMatches, type Platform} from '../model/platform.js';
import {writtenManifest} from '../transports/table.js';
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
  // Artifacts beside an image (signatures, attestations) are printed only when nothing else is picked.
  const all = [...new Set(entries.map((e) => e.root))];
  const images = all.filter((r) => !isArtifact(r));
  const roots = images.length > 0 ? images : all;
  if (roots.length === 0) throw new FerryError('NOT_FOUND', `${archive.location}: holds no image`);
  let target: Node;
  if (options.platform) {
    const want = options.platform;
    const candidates = [...new Set(roots.flatMap((r) => imagesOf(r)))];
    const hits = candidates.filter((i) => platformMatches(i.platform, want));
    if (hits.length === 0) throw new FerryError('NOT_FOUND', `${archive.location}: no image for platform ${formatPlatform(want)} (present: ${candidates.map((i) => formatPlatform(i.platform)).join(', ') || 'none'})`);
    if (hits.length > 1) throw new UsageError(`${archive.location}: ${hits.length} images for platform ${formatPlatform(want)}; choose one with --image`);
    target = hits[0]!;
  } else {
    if (roots.length > 1) {
      const list = entries.filter((e) => roots.includes(e.root)).map((e) => e.names.join(', ') || describeNode(e.root));
      throw new UsageError(`${archive.location} holds ${roots.length} images or indexes: ${[...new Set(list)].join('; ')}; choose one with --image NAME, image ID or digest`);
    }
    target = roots[0]!;
  }
  if (isArtifact(target)) return {kind: 'manifest', bytes: target.manifest.bytes, digest: target.manifest.digest, mediaType: target.manifest.mediaType, stored: true};
  if (isImageIndex(target)) return {kind: 'index', bytes: target.document.bytes, digest: target.document.digest, mediaType: target.document.mediaType, stored: true};
  if (target.manifest) return {kind: 'manifest', bytes: target.manifest.bytes, digest: target.manifest.digest, mediaType: target.manifest.mediaType, stored: true};
  const written = await writtenManifest(target);
  return {
    kind: 'manifest',
    bytes: written.bytes,
    digest: written.digest,
    mediaType: written.mediaType,
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
