import {FerryError, UsageError} from '../../errors.js';
import type {Archive} from '../../model/image.js';
import {formatPlatform, hostPlatform, platformMatches} from '../../model/platform.js';
import {selectImages, type SelectedImage} from '../select.js';

/**
 * The one image a layer command works on: the archive's only image, the one `--image` names, or —
 * when a name matches a multi-platform index — the host's platform (what `docker run` would pick).
 */
export function pickImage(archive: Archive, refs: readonly string[]): SelectedImage {
  const images = selectImages(archive, refs);
  if (images.length === 1) return images[0]!;
  if (images.length === 0) throw new FerryError('NOT_FOUND', `${archive.location}: holds no image`);
  const sameEntry = images.every((i) => i.entry === images[0]!.entry);
  if (sameEntry) {
    const host = {...hostPlatform(), os: 'linux'};
    const hits = images.filter((i) => platformMatches(i.image.platform, host));
    if (hits.length === 1) return hits[0]!;
  }
  const list = images.map((i) => `${i.names.length > 0 ? i.names.join(', ') : i.image.config.digest.slice(0, 19)} (${formatPlatform(i.image.platform)})`).join('; ');
  throw new UsageError(`${archive.location} holds ${images.length} images: ${list}; choose one with --image NAME, image ID or manifest digest`);
}
