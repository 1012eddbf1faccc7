import {FerryError} from '../errors.js';
import {isImageIndex, type Archive, type ArchiveEntry, type Image, type ImageIndex} from '../model/image.js';
import {sameReference} from '../model/reference.js';
import {openArchive, parseDestination} from '../transports.js';
import {matchesImage} from './select.js';
import {writeArchive, type WriteOptions, type WriteSummary} from './write-archive.js';

export interface ConvertOptions extends WriteOptions {
  /** Images to convert, by name, image ID or manifest digest (default: all). */
  images?: string[];
}

export interface ConvertSummary extends WriteSummary {
  source: {format: string; location: string};
}

/** `ferry convert SOURCE DEST`: reads any form, writes docker-archive, oci-archive or oci. */
export async function convertArchive(source: string, destination: string, options: ConvertOptions = {}): Promise<ConvertSummary> {
  parseDestination(destination); // a bad DEST is a usage error before any reading
  const archive = await openArchive(source);
  try {
    for (const w of archive.warnings) options.note?.(`warning: ${w}`);
    for (const p of archive.problems) options.note?.(`warning: ${p}`);
    const entries = selectForConvert(archive, options.images ?? []);
    const summary = await writeArchive(destination, entries, options);
    return {...summary, source: {format: archive.format, location: archive.location}};
  } finally {
    await archive.close();
  }
}

function imagesOf(node: Image | ImageIndex): Image[] {
  return isImageIndex(node) ? node.children.flatMap((c) => (c.target ? imagesOf(c.target) : [])) : [node];
}

/**
 * The entries `refs` select. A name selects its entry (an index stays whole) and keeps only the
 * names asked for, as `docker save NAME` does; an index digest selects the whole index; an image ID
 * or manifest digest selects that image alone, with the entry's names.
 */
export function selectForConvert(archive: Pick<Archive, 'entries' | 'location'>, refs: readonly string[]): ArchiveEntry[] {
  if (refs.length === 0) return [...archive.entries];
  const picked = new Map<Image | ImageIndex, {entry: ArchiveEntry; names: Set<string>}>();
  const add = (entry: ArchiveEntry, root: Image | ImageIndex, names: readonly string[]): void => {
    const existing = picked.get(root);
    if (existing) for (const n of names) existing.names.add(n);
    else picked.set(root, {entry, names: new Set(names)});
  };
  for (const ref of refs) {
    let hit = false;
    for (const entry of archive.entries) {
      const byName = entry.names.filter((n) => sameReference(n, ref));
      if (byName.length > 0) {
        add(entry, entry.root, byName);
        hit = true;
        continue;
      }
      const hex = ref.replace(/^sha256:/, '');
      if (isImageIndex(entry.root) && /^[a-f0-9]{12,64}$/.test(hex) && [entry.root.document.digest, entry.descriptor?.digest].some((d) => d?.slice(7).startsWith(hex))) {
        add(entry, entry.root, entry.names);
        hit = true;
        continue;
      }
      for (const image of imagesOf(entry.root)) {
        if (matchesImage(ref, image, [])) {
          add(entry, image, entry.names);
          hit = true;
        }
      }
    }
    if (!hit) {
      const available = archive.entries.map((e) => (e.names.length > 0 ? e.names.join(', ') : isImageIndex(e.root) ? e.root.document.digest.slice(0, 19) : e.root.config.digest.slice(0, 19))).join('; ');
      throw new FerryError('NOT_FOUND', `${archive.location}: no image matches "${ref}" (images: ${available || 'none'})`);
    }
  }
  return [...picked].map(([root, {entry, names}]) => {
    const out: ArchiveEntry = {names: [...names], root};
    if (root === entry.root && entry.descriptor) out.descriptor = entry.descriptor;
    return out;
  });
}
