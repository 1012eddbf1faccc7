import {FerryError, UsageError} from '../errors.js';
import {describeNode, imagesOf, isArtifact, isImageIndex, listImages, referrersAmong, resolveLayers, type ArchiveEntry, type Image, type ListedImage, type Node, type ReadResult} from '../model/image.js';
import {formatPlatform, hostPlatform, platformMatches, type Platform} from '../model/platform.js';
import {referenceProblem, sameReference} from '../model/reference.js';

/**
 * Image selection, in one place: what `--image REF` (and a transport's `:NAME`) means for every
 * command. REF is a name (demo:1 ≡ docker.io/library/demo:1), an image ID (config digest) or a
 * manifest digest, in full or as a 12+ hex-digit prefix. Selected images have their layers resolved
 * (src/model/image.ts `resolveLayers`), so ops can use their descriptors.
 */

type Source = Pick<ReadResult, 'entries'> & {location: string};

const HEX_PREFIX = /^(?:sha256:)?([a-f0-9]{12,64})$/;

/** A REF that is neither a digest prefix nor a valid reference is a usage error, said why. */
export function checkImageRef(ref: string): void {
  if (HEX_PREFIX.test(ref)) return;
  const problem = referenceProblem(ref);
  if (problem !== undefined) throw new UsageError(`--image "${ref}": not an image name, image ID or manifest digest: ${problem}`);
}

function digestMatches(ref: string, digests: ReadonlyArray<string | undefined>): boolean {
  const hex = HEX_PREFIX.exec(ref)?.[1];
  return hex !== undefined && digests.some((d) => d?.slice(d.indexOf(':') + 1).startsWith(hex));
}

/** True when `ref` names this image: one of its names, its image ID or its manifest digest. */
export function matchesImage(ref: string, image: Image, names: readonly string[]): boolean {
  return names.some((n) => sameReference(n, ref)) || digestMatches(ref, [image.config.digest, image.manifest?.digest]);
}

function describe(listed: ListedImage): string {
  return listed.names.length > 0 ? listed.names.join(', ') : listed.image.config.digest.slice(0, 19);
}

function noMatch(source: Source, ref: string, available: string[]): FerryError {
  return new FerryError('NOT_FOUND', `${source.location}: no image matches "${ref}" (images: ${available.join('; ') || 'none'})`);
}

/** Images matching any of `refs` (every image when refs is empty), each once, layers resolved. */
export async function selectImages(source: Source, refs: readonly string[]): Promise<ListedImage[]> {
  refs.forEach(checkImageRef);
  const all = listImages(source);
  let out: ListedImage[] = all;
  if (refs.length > 0) {
    out = [];
    for (const ref of refs) {
      const hits = all.filter((c) => matchesImage(ref, c.image, c.names));
      if (hits.length === 0) throw noMatch(source, ref, all.map(describe));
      for (const hit of hits) if (!out.includes(hit)) out.push(hit);
    }
  }
  await resolveLayers(out.map((o) => o.image));
  return out;
}

/**
 * The one image a layer command (export, squash, ls, cat) works on: the only image, the one REF
 * names, or — when several platforms of one index match — `platform` if given, else the host's
 * (what `docker run` would pick). `note` hears which platform was chosen.
 */
export async function pickImage(source: Source, refs: readonly string[], options: {platform?: Platform; note?: (message: string) => void} = {}): Promise<ListedImage> {
  let images = await selectImages(source, refs);
  if (options.platform) {
    const want = options.platform;
    const hits = images.filter((i) => platformMatches(i.image.platform, want));
    if (hits.length === 0) throw new FerryError('NOT_FOUND', `${source.location}: no image for platform ${formatPlatform(want)} (present: ${images.map((i) => formatPlatform(i.image.platform)).join(', ') || 'none'})`);
    images = hits;
  }
  if (images.length === 1) return images[0]!;
  if (images.length === 0) throw new FerryError('NOT_FOUND', `${source.location}: holds no image`);
  const sameEntry = images.every((i) => i.entry === images[0]!.entry);
  if (sameEntry) {
    const host = {...hostPlatform(), os: 'linux'};
    const hits = images.filter((i) => platformMatches(i.image.platform, host));
    if (hits.length === 1) {
      options.note?.(`${describe(hits[0]!)}: chose platform ${formatPlatform(hits[0]!.image.platform)} of ${images.map((i) => formatPlatform(i.image.platform)).join(', ')} (this machine's; pick another with --platform)`);
      return hits[0]!;
    }
  }
  const list = images.map((i) => `${describe(i)} (${formatPlatform(i.image.platform)})`).join('; ');
  throw new UsageError(`${source.location} holds ${images.length} images: ${list}; choose one with --image NAME, image ID or manifest digest`);
}

/**
 * The entries `refs` select, for commands that keep index structure (convert). A name selects its
 * entry (an index stays whole) and keeps only the names asked for, as `docker save NAME` does; an
 * index digest selects the whole index; an image ID or manifest digest selects that image alone,
 * with the entry's names.
 */
export async function selectEntries(source: Source, refs: readonly string[]): Promise<ArchiveEntry[]> {
  refs.forEach(checkImageRef);
  let out: ArchiveEntry[];
  if (refs.length === 0) out = [...source.entries];
  else {
    const picked = new Map<Node, {entry: ArchiveEntry; names: Set<string>}>();
    const add = (entry: ArchiveEntry, root: Node, names: readonly string[]): void => {
      const existing = picked.get(root);
      if (existing) for (const n of names) existing.names.add(n);
      else picked.set(root, {entry, names: new Set(names)});
    };
    for (const ref of refs) {
      let hit = false;
      for (const entry of source.entries) {
        if (isArtifact(entry.root)) continue; // never picked by name: it comes along with its subject below
        const byName = entry.names.filter((n) => sameReference(n, ref));
        if (byName.length > 0) {
          add(entry, entry.root, byName);
          hit = true;
          continue;
        }
        if (isImageIndex(entry.root) && digestMatches(ref, [entry.root.document.digest, entry.descriptor?.digest])) {
          add(entry, entry.root, entry.names);
          hit = true;
          continue;
        }
        for (const image of imagesOf(entry.root)) {
          if (!matchesImage(ref, image, [])) continue;
          add(entry, image, entry.names);
          hit = true;
        }
      }
      if (!hit) {
        throw noMatch(source, ref, source.entries.filter((e) => !isArtifact(e.root)).map((e) => (e.names.length > 0 ? e.names.join(', ') : describeNode(e.root))));
      }
    }
    out = [...picked].map(([root, {entry, names}]) => {
      const selected: ArchiveEntry = {names: [...names], root};
      if (root === entry.root && entry.descriptor) selected.descriptor = entry.descriptor;
      return selected;
    });
    // Signatures, attestations and other referrers of what was picked travel with it.
    out.push(...referrersAmong(source, out));
  }
  await resolveLayers(out.flatMap((e) => imagesOf(e.root)));
  return out;
}
