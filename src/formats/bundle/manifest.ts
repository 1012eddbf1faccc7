import {FerryError} from '../../errors.js';
import {parseJson} from '../../model/config.js';
import {isRecord} from '../../model/descriptor.js';
import {isDigest, type Digest} from '../../model/digest.js';

/**
 * A bundle (docs/bundles.md): a directory holding `bundle.json`, `SHA256SUMS` and parts, each part a
 * docker-archive in ferry's default layout that docker, ctr and k3s load alone. bundle.json records
 * every image (the reference it came from, the digest it was pinned to, its platforms, the parts that
 * hold its blobs), every part (size, sha256, what it completes) and every blob's size. Its bytes
 * depend only on the inputs' digests and the options: no time, no host name.
 */

export const BUNDLE_FILE = 'bundle.json';
export const SUMS_FILE = 'SHA256SUMS';
export const BUNDLE_MEDIA_TYPE = 'application/vnd.ferry.bundle.v1+json';

export interface BundleImage {
  /** The input as written (`alpine:3.20`, `docker://…@sha256:…`, `app.tar`). */
  ref: string;
  /** The full name it is pushed and loaded under (`docker.io/library/alpine:3.20`); null when it has none. */
  name: string | null;
  /** The manifest or index digest the source named when the bundle was made (the pin). */
  sourceDigest: Digest;
  /** The manifest or index stored (differs from sourceDigest only when --platform picked platforms). */
  digest: Digest;
  mediaType: string;
  size: number;
  platforms: string[];
  /** The parts holding its blobs, in order; the last one lists it in its index. */
  parts: string[];
  /** Every blob it needs: manifests and indexes, configs, layers (sorted). */
  blobs: Digest[];
}

export interface BundlePart {
  file: string;
  size: number;
  sha256: string;
  /** Names (or digests) of the images this part completes. */
  images: string[];
  /** Layer blobs it stores (sorted); the manifests and configs of the images it completes are stored too. */
  blobs: Digest[];
}

export interface BundleManifest {
  schemaVersion: 1;
  mediaType: typeof BUNDLE_MEDIA_TYPE;
  maxPartSize: number | null;
  images: BundleImage[];
  parts: BundlePart[];
  /** Every blob the images need → its size. */
  blobs: Record<string, number>;
  /** Blobs left out because the target has them (--have) → repositories there that hold them. */
  omitted: Record<string, string[]>;
  /** Blobs stored in more than one part (so each stands alone), and what that costs. */
  repeated: {blobs: number; bytes: number};
}

function fail(file: string, why: string): never {
  throw new FerryError('BAD_JSON', `${file}: ${why}`);
}

function digestList(value: unknown, file: string, where: string): Digest[] {
  if (!Array.isArray(value) || !value.every((d) => typeof d === 'string' && isDigest(d))) fail(file, `${where} is not a list of digests`);
  return value as Digest[];
}

/** bundle.json parsed and checked: a hostile or damaged file is one error naming what is wrong. */
export function parseBundleManifest(bytes: Buffer, file: string): BundleManifest {
  const parsed = parseJson(bytes, file);
  if (!isRecord(parsed)) fail(file, 'not a JSON object');
  if (parsed.schemaVersion !== 1) fail(file, `schemaVersion ${JSON.stringify(parsed.schemaVersion)} is not 1 (made by a newer ferry?)`);
  if (!Array.isArray(parsed.images) || !Array.isArray(parsed.parts) || !isRecord(parsed.blobs)) fail(file, 'images, parts or blobs is missing');
  const parts = parsed.parts.map((p, i): BundlePart => {
    if (!isRecord(p) || typeof p.file !== 'string' || typeof p.size !== 'number' || typeof p.sha256 !== 'string' || !Array.isArray(p.images)) fail(file, `parts[${i}] is malformed`);
    if (!/^[A-Za-z0-9._-]+$/.test(p.file) || p.file.startsWith('.')) fail(file, `parts[${i}].file "${p.file}" is not a plain file name`);
    if (!/^[a-f0-9]{64}$/.test(p.sha256)) fail(file, `parts[${i}].sha256 is not a sha256`);
    return {file: p.file, size: p.size, sha256: p.sha256, images: p.images.map(String), blobs: digestList(p.blobs, file, `parts[${i}].blobs`)};
  });
  const known = new Set(parts.map((p) => p.file));
  const images = parsed.images.map((m, i): BundleImage => {
    if (!isRecord(m) || typeof m.ref !== 'string' || typeof m.digest !== 'string' || !isDigest(m.digest) || typeof m.mediaType !== 'string' || typeof m.size !== 'number') fail(file, `images[${i}] is malformed`);
    if (!Array.isArray(m.parts) || !m.parts.every((p) => typeof p === 'string' && known.has(p))) fail(file, `images[${i}].parts names a part the bundle does not list`);
    const sourceDigest = typeof m.sourceDigest === 'string' && isDigest(m.sourceDigest) ? m.sourceDigest : m.digest;
    return {
      ref: m.ref,
      name: typeof m.name === 'string' ? m.name : null,
      sourceDigest,
      digest: m.digest,
      mediaType: m.mediaType,
      size: m.size,
      platforms: Array.isArray(m.platforms) ? m.platforms.map(String) : [],
      parts: m.parts as string[],
      blobs: digestList(m.blobs, file, `images[${i}].blobs`),
    };
  });
  const blobs: Record<string, number> = {};
  for (const [d, size] of Object.entries(parsed.blobs)) {
    if (!isDigest(d) || typeof size !== 'number' || size < 0) fail(file, `blobs["${d}"] is malformed`);
    blobs[d] = size;
  }
  const omitted: Record<string, string[]> = {};
  if (isRecord(parsed.omitted)) for (const [d, repos] of Object.entries(parsed.omitted)) if (isDigest(d)) omitted[d] = Array.isArray(repos) ? repos.map(String) : [];
  const repeated = isRecord(parsed.repeated) && typeof parsed.repeated.blobs === 'number' && typeof parsed.repeated.bytes === 'number' ? {blobs: parsed.repeated.blobs, bytes: parsed.repeated.bytes} : {blobs: 0, bytes: 0};
  return {schemaVersion: 1, mediaType: BUNDLE_MEDIA_TYPE, maxPartSize: typeof parsed.maxPartSize === 'number' ? parsed.maxPartSize : null, images, parts, blobs, omitted, repeated};
}

/** bundle.json's bytes: fixed key order, sorted maps, two-space indent, a final newline. */
export function bundleManifestBytes(manifest: BundleManifest): Buffer {
  const sorted = <T>(record: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const value = {
    schemaVersion: manifest.schemaVersion,
    mediaType: manifest.mediaType,
    maxPartSize: manifest.maxPartSize,
    images: manifest.images.map((m) => ({ref: m.ref, name: m.name, sourceDigest: m.sourceDigest, digest: m.digest, mediaType: m.mediaType, size: m.size, platforms: m.platforms, parts: m.parts, blobs: m.blobs})),
    parts: manifest.parts.map((p) => ({file: p.file, size: p.size, sha256: p.sha256, images: p.images, blobs: p.blobs})),
    blobs: sorted(manifest.blobs),
    omitted: sorted(manifest.omitted),
    repeated: manifest.repeated,
  };
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
}

/** `SHA256SUMS` as sha256sum writes it (`HEX  NAME`), which `sha256sum -c` checks. */
export function sha256SumsBytes(files: ReadonlyArray<{file: string; sha256: string}>): Buffer {
  return Buffer.from(files.map((f) => `${f.sha256}  ${f.file}\n`).join(''));
}

/** SHA256SUMS parsed: file → hex (lines that are not `HEX  NAME` are refused). */
export function parseSha256Sums(text: string, file: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const m = /^([a-f0-9]{64}) [ *]([A-Za-z0-9._-]+)$/.exec(line);
    if (!m) fail(file, `line ${i + 1} is not "SHA256  NAME"`);
    sums.set(m[2]!, m[1]!);
  }
  return sums;
}
