/**
 * Building blocks for the bad-input corpus: read a good fixture's tar members, take its images apart
 * (config + uncompressed layers + names), and put them back together as a legacy docker-save, a
 * Docker 25+ save or an OCI layout — every digest, size and name recomputed from the bytes, so that
 * a case breaks exactly the one thing it means to break. Tars are written with ferry's own header
 * encoder (src/tar/write.ts); nothing here is committed as a binary.
 */
import {createHash} from 'node:crypto';
import {readFileSync} from 'node:fs';
import path from 'node:path';
import {Readable} from 'node:stream';
import zlib from 'node:zlib';
import {StreamReader} from '../../src/io/bytes/readers.js';
import {BLOCK, type EntryType} from '../../src/tar/header.js';
import type {PaxRecords} from '../../src/tar/pax.js';
import {walkTar} from '../../src/tar/walk.js';
import {encodeHeader, padding} from '../../src/tar/write.js';

export interface Member {
  name: string;
  type: EntryType;
  data?: Buffer;
  linkname?: string;
  mode?: number;
  mtime?: number;
  uid?: number;
  gid?: number;
  typeflag?: string;
  pax?: PaxRecords;
  /** Replaces the encoded header blocks verbatim (for headers the encoder would refuse to write). */
  rawHeader?: Buffer;
}

export const sha256Hex = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');
export const digestOf = (bytes: Uint8Array | string): string => `sha256:${sha256Hex(bytes)}`;
export const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
export const gzip = (bytes: Buffer): Buffer => zlib.gzipSync(bytes, {level: 9});

/** Every member of a tar, bodies included (test fixtures are small). */
export async function readTarMembers(bytes: Buffer): Promise<Member[]> {
  const reader = new StreamReader(Readable.from([bytes]), 'fixture');
  const out: Member[] = [];
  const walk = walkTar(reader);
  for (;;) {
    const next = await walk.next();
    if (next.done) return out;
    const e = next.value;
    const parts: Buffer[] = [];
    for await (const chunk of reader.chunks(e.size, e.name)) parts.push(Buffer.from(chunk));
    const m: Member = {name: e.name, type: e.type, mode: e.mode, mtime: e.mtime, uid: e.uid, gid: e.gid, typeflag: e.typeflag};
    if (e.type === 'file') m.data = Buffer.concat(parts);
    if (e.type === 'symlink' || e.type === 'hardlink') m.linkname = e.linkname;
    out.push(m);
  }
}

/** The header blocks ferry's encoder writes for a member. */
export function headerOf(m: Member): Buffer {
  if (m.rawHeader) return m.rawHeader;
  const data = m.data ?? Buffer.alloc(0);
  return encodeHeader({
    name: m.name,
    type: m.type,
    ...(m.typeflag !== undefined ? {typeflag: m.typeflag} : {}),
    mode: m.mode ?? (m.type === 'dir' ? 0o755 : m.type === 'symlink' ? 0o777 : 0o644),
    uid: m.uid ?? 0,
    gid: m.gid ?? 0,
    size: m.type === 'file' ? data.length : 0,
    mtime: m.mtime ?? 0,
    linkname: m.linkname ?? '',
    ...(m.pax ? {pax: m.pax} : {}),
  });
}

/** A tar of `members` (Go-style end: two zero blocks, unless `endMarker` is false). */
export function packTar(members: readonly Member[], options: {endMarker?: boolean} = {}): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    parts.push(headerOf(m));
    if (m.type === 'file' && m.data && m.data.length > 0) parts.push(m.data, padding(m.data.length));
  }
  if (options.endMarker !== false) parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

/** Byte offsets of each member in a tar (header start, data start, data size), by name. */
export async function memberOffsets(bytes: Buffer): Promise<Map<string, {header: number; data: number; size: number}>> {
  const reader = new StreamReader(Readable.from([bytes]), 'fixture');
  const out = new Map<string, {header: number; data: number; size: number}>();
  const walk = walkTar(reader);
  for (;;) {
    const next = await walk.next();
    if (next.done) return out;
    out.set(next.value.name, {header: next.value.headerOffset, data: next.value.dataOffset, size: next.value.size});
  }
}

export const file = (name: string, data: Buffer | string, extra: Partial<Member> = {}): Member => ({name, type: 'file', data: Buffer.isBuffer(data) ? data : Buffer.from(data), ...extra});
export const dir = (name: string): Member => ({name: name.endsWith('/') ? name : `${name}/`, type: 'dir'});

/** One image taken apart: its config as parsed JSON, its layers as uncompressed tars, its names. */
export interface ImageParts {
  config: Record<string, unknown>;
  /** Config bytes to store instead of JSON.stringify(config) (non-JSON and wrong-typed cases). */
  rawConfig?: Buffer;
  layers: Buffer[];
  /** Stored blobs to use instead of the layers (compressed, cut, bombs); layers still give the diffIDs. */
  blobs?: Array<{data: Buffer; mediaType: string} | undefined>;
  tags: string[];
}

/** Reads the images of a `docker save` (legacy layout), following docker's layer.tar symlinks. */
export async function loadDockerSave(archive: string): Promise<ImageParts[]> {
  const members = await readTarMembers(readFileSync(archive));
  const byName = new Map(members.map((m) => [m.name.replace(/^\.\//, ''), m]));
  const read = (name: string): Buffer => {
    let current = name;
    for (let hop = 0; hop < 8; hop++) {
      const m = byName.get(current);
      if (!m) throw new Error(`fixture ${archive} lacks ${name}`);
      if (m.type === 'file') return m.data ?? Buffer.alloc(0);
      current = path.posix.normalize(path.posix.join(path.posix.dirname(current), m.linkname ?? ''));
    }
    throw new Error(`link loop at ${name}`);
  };
  const manifest = JSON.parse(read('manifest.json').toString()) as Array<{Config: string; RepoTags: string[] | null; Layers: string[]}>;
  return manifest.map((item) => ({
    config: JSON.parse(read(item.Config).toString()) as Record<string, unknown>,
    layers: item.Layers.map(read),
    tags: item.RepoTags ?? [],
  }));
}

/** A copy of `parts` whose config's rootfs.diff_ids match its layers (after a case swapped one). */
export function withDiffIds(parts: ImageParts): ImageParts {
  const config = structuredClone(parts.config);
  config.rootfs = {type: 'layers', diff_ids: parts.layers.map((l) => digestOf(l))};
  return {config, layers: parts.layers, tags: parts.tags, ...(parts.blobs ? {blobs: parts.blobs} : {})};
}

/** A copy of `parts` with layer `i` replaced and the config's diff_ids updated. */
export function replaceLayer(parts: ImageParts, i: number, layer: Buffer): ImageParts {
  const layers = [...parts.layers];
  layers[i < 0 ? layers.length + i : i] = layer;
  return withDiffIds({...parts, layers});
}

/** Legacy `docker save` layout (docs/formats.md §1): `<v1id>/layer.tar`, `<confighex>.json`, manifest.json. */
export function buildLegacy(images: readonly ImageParts[], options: {manifest?: (items: Array<Record<string, unknown>>) => unknown} = {}): Member[] {
  const members = new Map<string, Member>();
  const items: Array<Record<string, unknown>> = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const image of images) {
    const configBytes = image.rawConfig ?? json(image.config);
    const configName = `${sha256Hex(configBytes)}.json`;
    members.set(configName, file(configName, configBytes));
    const layerNames: string[] = [];
    let parent = '';
    for (const [j, uncompressed] of image.layers.entries()) {
      const layer = image.blobs?.[j]?.data ?? uncompressed;
      // Any unique 64-hex id will do (loaders never check them, docs/formats.md §1).
      const id = sha256Hex(`${parent} ${sha256Hex(layer)}`);
      parent = id;
      members.set(`${id}/`, dir(`${id}/`));
      members.set(`${id}/VERSION`, file(`${id}/VERSION`, '1.0'));
      members.set(`${id}/json`, file(`${id}/json`, JSON.stringify({id})));
      members.set(`${id}/layer.tar`, file(`${id}/layer.tar`, layer));
      layerNames.push(`${id}/layer.tar`);
    }
    items.push({Config: configName, RepoTags: image.tags.length > 0 ? image.tags : null, Layers: layerNames});
    for (const tag of image.tags) {
      const [repo, t] = [tag.slice(0, tag.lastIndexOf(':')), tag.slice(tag.lastIndexOf(':') + 1)];
      (repositories[repo] ??= {})[t] = parent;
    }
  }
  const manifest = options.manifest ? options.manifest(items) : items;
  const sorted = [...members.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  return [...sorted, file('manifest.json', `${JSON.stringify(manifest)}\n`), file('repositories', `${JSON.stringify(repositories)}\n`)];
}

export interface LayoutOptions {
  /** Layer blobs: uncompressed (Docker 25+) or gzip (registry form). */
  compress?: 'none' | 'gzip';
  /** Docker 25+ compat files: manifest.json and repositories beside the OCI layout. */
  docker?: boolean;
  /** Edits the OCI manifest of image i before it is hashed. */
  manifest?: (manifest: Record<string, unknown>, i: number) => void;
  /** Edits index.json before it is written (descriptors already final). */
  index?: (index: Record<string, unknown>) => void;
  /** Edits docker's manifest.json items before they are written. */
  dockerManifest?: (items: Array<Record<string, unknown>>) => unknown;
  /** Layer blobs (by diffID hex) to leave out of the archive. */
  omitBlobs?: (hex: string, kind: 'layer' | 'config' | 'manifest') => boolean;
}

/** An OCI image layout (docs/formats.md §2–3), optionally with Docker 25+'s manifest.json beside it. */
export function buildLayout(images: readonly ImageParts[], options: LayoutOptions = {}): Member[] {
  const blobs = new Map<string, {data: Buffer; kind: 'layer' | 'config' | 'manifest'}>();
  const descriptors: Array<Record<string, unknown>> = [];
  const dockerItems: Array<Record<string, unknown>> = [];
  for (const [i, image] of images.entries()) {
    const configBytes = image.rawConfig ?? json(image.config);
    blobs.set(sha256Hex(configBytes), {data: configBytes, kind: 'config'});
    const layers = image.layers.map((layer, j) => {
      const given = image.blobs?.[j];
      const blob = given?.data ?? (options.compress === 'gzip' ? gzip(layer) : layer);
      blobs.set(sha256Hex(blob), {data: blob, kind: 'layer'});
      const mediaType = given?.mediaType ?? `application/vnd.oci.image.layer.v1.tar${options.compress === 'gzip' ? '+gzip' : ''}`;
      return {mediaType, digest: digestOf(blob), size: blob.length};
    });
    const manifest: Record<string, unknown> = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(configBytes), size: configBytes.length},
      layers,
    };
    options.manifest?.(manifest, i);
    const manifestBytes = json(manifest);
    blobs.set(sha256Hex(manifestBytes), {data: manifestBytes, kind: 'manifest'});
    const names = image.tags.length > 0 ? image.tags : [undefined];
    for (const name of names) {
      const d: Record<string, unknown> = {mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(manifestBytes), size: manifestBytes.length};
      if (name) d.annotations = {'io.containerd.image.name': fullName(name), 'org.opencontainers.image.ref.name': name.slice(name.lastIndexOf(':') + 1)};
      descriptors.push(d);
    }
    dockerItems.push({Config: `blobs/sha256/${sha256Hex(configBytes)}`, RepoTags: image.tags.length > 0 ? image.tags : null, Layers: layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`)});
  }
  const index: Record<string, unknown> = {schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: descriptors};
  options.index?.(index);
  const members: Member[] = [dir('blobs/'), dir('blobs/sha256/')];
  for (const hex of [...blobs.keys()].sort()) {
    const blob = blobs.get(hex)!;
    if (options.omitBlobs?.(hex, blob.kind)) continue;
    members.push(file(`blobs/sha256/${hex}`, blob.data));
  }
  members.push(file('index.json', json(index)));
  if (options.docker) {
    const items = options.dockerManifest ? options.dockerManifest(dockerItems) : dockerItems;
    members.push(file('manifest.json', `${JSON.stringify(items)}\n`));
  }
  members.push(file('oci-layout', '{"imageLayoutVersion": "1.0.0"}'));
  return members;
}

function fullName(name: string): string {
  const first = name.split('/')[0]!;
  if (name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) return name;
  return `docker.io/${name.includes('/') ? '' : 'library/'}${name}`;
}

/** The member called `name`; throws when absent (a case built on a wrong assumption). */
export function member(members: readonly Member[], name: string): Member {
  const m = members.find((x) => x.name === name);
  if (!m) throw new Error(`no member ${name} in [${members.map((x) => x.name).join(', ')}]`);
  return m;
}

/** Flips one byte (XOR 0x20 keeps ASCII letters letters, so JSON stays JSON where that matters). */
export function flipByte(bytes: Buffer, at: number, mask = 0x20): Buffer {
  const out = Buffer.from(bytes);
  out[at] = out[at]! ^ mask;
  return out;
}

/**
 * A hand-made zstd frame of `bytes` zeros from RLE blocks (RFC 8878 §3.1.1.2): each 4-byte block
 * expands to 128 KiB, so a ~100 KB file decompresses to gigabytes — a ratio no real layer has.
 */
export function zstdZeroBomb(bytes: number): Buffer {
  const BLOCK_MAX = 128 * 1024;
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.from([0x00, 0x38])]; // magic; no FCS, window 128 KiB
  for (let left = bytes; left > 0; left -= BLOCK_MAX) {
    const size = Math.min(left, BLOCK_MAX);
    const last = left <= BLOCK_MAX ? 1 : 0;
    const header = last | (1 << 1) | (size << 3); // Block_Type 1 = RLE
    parts.push(Buffer.from([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff, 0x00]));
  }
  return Buffer.concat(parts);
}
