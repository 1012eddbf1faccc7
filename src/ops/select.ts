import {FerryError} from '../errors.js';
import {listImages, type Archive, type ArchiveEntry, type Image} from '../model/image.js';
import {sameReference} from '../model/reference.js';

export interface SelectedImage {
  image: Image;
  names: string[];
  entry: ArchiveEntry;
}

/** True when `ref` names this image: a name (demo:1 ≡ docker.io/library/demo:1), an image ID or manifest digest (or a 12+ hex prefix). */
export function matchesImage(ref: string, image: Image, names: readonly string[]): boolean {
  if (names.some((n) => sameReference(n, ref))) return true;
  const hex = ref.replace(/^sha256:/, '');
  if (/^[a-f0-9]{12,64}$/.test(hex)) {
    const ids = [image.config.digest, image.manifest?.digest].filter((d): d is NonNullable<typeof d> => d !== undefined);
    return ids.some((d) => d.slice('sha256:'.length).startsWith(hex));
  }
  return false;
}

/** Images matching any of `refs` (all images when refs is empty); an unmatched ref is an error listing what exists. */
export function selectImages(archive: Archive, refs: readonly string[]): SelectedImage[] {
  const all = listImages(archive);
  if (refs.length === 0) return all;
  const out: SelectedImage[] = [];
  for (const ref of refs) {
    const hits = all.filter((c) => matchesImage(ref, c.image, c.names));
    if (hits.length === 0) {
      const available = all.map((c) => (c.names.length > 0 ? c.names.join(', ') : c.image.config.digest.slice(0, 19))).join('; ');
      throw new FerryError('NOT_FOUND', `${archive.location}: no image matches "${ref}" (images: ${available || 'none'})`);
    }
    for (const hit of hits) if (!out.some((o) => o.image === hit.image)) out.push(hit);
  }
  return out;
}

/** Entries (top-level, indexes kept whole) matching refs; used where the index structure matters. */
export function selectEntries(archive: Archive, refs: readonly string[]): ArchiveEntry[] {
  if (refs.length === 0) return archive.entries;
  const images = selectImages(archive, refs);
  return archive.entries.filter((e) => images.some((i) => i.entry === e));
}
