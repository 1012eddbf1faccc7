import {createHash} from 'node:crypto';
import {existsSync} from 'node:fs';
import {mkdir, readdir, readFile, rm, stat} from 'node:fs/promises';
import path from 'node:path';
import {FerryError, ioError, UsageError} from '../errors.js';
import {BUNDLE_FILE, BUNDLE_MEDIA_TYPE, bundleManifestBytes, parseBundleManifest, parseSha256Sums, sha256SumsBytes, SUMS_FILE, type BundleImage, type BundleManifest, type BundlePart} from '../formats/bundle/manifest.js';
import {FileRange} from '../io/bytes/file-range.js';
import {TarTree} from '../io/fs/file-tree.js';
import {parseJson} from '../model/config.js';
import {isRecord, parseDescriptor, type Descriptor} from '../model/descriptor.js';
import {isDigest, type Digest} from '../model/digest.js';
import {imagesOf, isArtifact, isImageIndex, referrersAmong, type Archive, type ArchiveEntry, type Layer, type Node} from '../model/image.js';
import {formatPlatform, type Platform} from '../model/platform.js';
import {fullName, tryParseReference, withDefaultTag} from '../model/reference.js';
import {resolveSettings, type Settings, type SettingsInput} from '../settings.js';
import {ensureBlobsPresent, listRepositories, listTags as listRegistryTags, manifestDigest} from '../transports/docker/api.js';
import {parseRegistryRef} from '../transports/docker/reference.js';
import {openArchive, parseTransportRef, writtenManifest} from '../transports/table.js';
import {loadImages} from './daemon.js';
import {humanSize} from './format.js';
import type {Progress} from './progress.js';
import {pushImages, pushTarget, registrySource, type TransferItem} from './registry.js';
import {selectEntries} from './select.js';
import {pickPlatforms, writeArchive} from './write-archive.js';
import {replaceLayers} from '../model/swap.js';
import {replaceSmallFile, writeReportFile} from '../io/fs/atomic.js';
import {BlobCheck, hashFileInto} from '../io/blobs/digest-check.js';

/**
 * Air-gap bundles (docs/bundles.md): many images carried as parts that stand alone, made again and
 * again (restart-safe, deterministic), optionally leaving out what the far side already holds.
 * `create` plans images into parts and writes each part with writeArchive (a docker-archive in the
 * default layout); `inventory` lists what a target holds; `verify` checks parts against SHA256SUMS
 * and bundle.json; `apply` pushes, loads or adds the images to a registry, daemon or layout.
 */

const STATE_FILE = '.ferry-bundle-state.json';
/** Per-blob tar overhead (header + padding, at most) and per-part fixed members, for planning sizes. */
const MEMBER_OVERHEAD = 1024;
const PART_OVERHEAD = 64 * 1024;

export interface BundleCreateOptions {
  /** Largest part in bytes (0 or undefined: one part). */
  maxPartSize?: number;
  platforms?: Platform[];
  /** A have.json (bundle inventory's output): blobs the far side holds are left out. */
  have?: string;
  /** Replace a bundle already in DIR. */
  force?: boolean;
  note?: (message: string) => void;
  progress?: Progress;
  signal?: AbortSignal;
  settings?: SettingsInput;
}

export interface BundleSummary {
  dir: string;
  images: Array<{ref: string; name: string | null; digest: string; parts: string[]}>;
  parts: Array<{file: string; size: number; images: string[]}>;
  /** Bytes of all parts. */
  bytes: number;
  repeated: {blobs: number; bytes: number};
  /** What --have left out. */
  omitted: {blobs: number; bytes: number};
  /** Parts an earlier, interrupted run had finished (checked, not written again). */
  resumed: string[];
}

/** One ref per line; `#` starts a comment; blank lines are skipped. */
export function parseRefList(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter((line) => line !== '');
}

/** An INPUT: a transport reference or an existing path as it is, anything else a registry reference. */
export function bundleSource(input: string): string {
  if (parseTransportRef(input).transport !== undefined || existsSync(input)) return input;
  return registrySource(input);
}

interface PlannedImage {
  input: string;
  entry: ArchiveEntry;
  /** Artifacts (signatures, attestations) that travel with it. */
  companions: ArchiveEntry[];
  name: string | null;
  sourceDigest: Digest;
  /** Distinct layers it needs, in order. */
  layers: Layer[];
  /** Bytes of its manifests, indexes and configs (always stored). */
  documents: number;
  platforms: string[];
}

interface PlannedPart {
  file: string;
  /** Images this part completes. */
  images: PlannedImage[];
  /** Layers of an image a later part completes, stored here. */
  loose: Layer[];
  /** Layer blobs stored: digest → size. */
  stored: Map<string, number>;
  /** Size estimate. */
  size: number;
}

function layersOf(node: Node): Layer[] {
  const seen = new Map<string, Layer>();
  for (const image of imagesOf(node)) for (const layer of image.layers) if (!seen.has(layer.descriptor.digest)) seen.set(layer.descriptor.digest, layer);
  return [...seen.values()];
}

function documentBytes(node: Node): number {
  if (isArtifact(node)) return node.manifest.bytes.length + node.blobs.reduce((n, b) => n + b.descriptor.size + MEMBER_OVERHEAD, 0);
  if (isImageIndex(node)) return node.document.bytes.length + MEMBER_OVERHEAD + node.children.reduce((n, c) => n + (c.target ? documentBytes(c.target) : 0), 0);
  return (node.manifest?.bytes.length ?? 2048) + node.config.bytes.length + 2 * MEMBER_OVERHEAD;
}

async function rootDigest(entry: ArchiveEntry): Promise<Digest> {
  const root = entry.root;
  if (entry.descriptor) return entry.descriptor.digest;
  if (isArtifact(root)) return root.manifest.digest;
  if (isImageIndex(root)) return root.document.digest;
  return root.manifest?.digest ?? (await writtenManifest(root)).digest;
}

/** Every blob an image needs, as stored: manifests and indexes, configs, layers. */
async function blobsOf(node: Node, rootStored: Digest, isRoot = true): Promise<Digest[]> {
  const out = new Set<Digest>();
  if (isArtifact(node)) {
    out.add(node.manifest.digest);
    for (const b of node.blobs) out.add(b.descriptor.digest);
  } else if (isImageIndex(node)) {
    out.add(isRoot ? rootStored : node.document.digest);
    for (const child of node.children) if (child.target) for (const d of await blobsOf(child.target, rootStored, false)) out.add(d);
  } else {
    out.add(isRoot ? rootStored : (node.manifest?.digest ?? (await writtenManifest(node)).digest));
    out.add(node.config.digest);
    for (const layer of node.layers) out.add(layer.descriptor.digest);
  }
  return [...out].sort();
}

/** have.json: `{blobs: {DIGEST: {size, repositories}}}` (bundle inventory), or a list of digests. */
async function readHave(file: string, settings: Settings): Promise<Map<string, string[]>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw ioError(e, file);
  }
  if (bytes.length > settings.limits.maxJsonBytes * 16) throw new FerryError('LIMIT_EXCEEDED', `${file}: over ${settings.limits.maxJsonBytes * 16} bytes`);
  const parsed = parseJson(bytes, file);
  const have = new Map<string, string[]>();
  const blobs = isRecord(parsed) ? parsed.blobs : parsed;
  if (Array.isArray(blobs)) {
    for (const d of blobs) if (typeof d === 'string' && isDigest(d)) have.set(d, []);
  } else if (isRecord(blobs)) {
    for (const [d, info] of Object.entries(blobs)) if (isDigest(d)) have.set(d, isRecord(info) && Array.isArray(info.repositories) ? info.repositories.map(String) : []);
  } else throw new FerryError('BAD_JSON', `${file}: expected {"blobs": {DIGEST: …}} (ferry bundle inventory's output) or a list of digests`);
  return have;
}

function partName(index: number): string {
  return `part-${String(index + 1).padStart(4, '0')}.tar`;
}

/**
 * Packs images into parts in input order: whole where they fit; an image bigger than a part spans
 * parts (its layers spread over them, the last one completing it). A layer bigger than a part gets a
 * part of its own. Each part stores every layer its images need that the far side lacks, so a blob
 * shared across parts is repeated.
 */
function planParts(images: readonly PlannedImage[], maxPartSize: number, have: ReadonlyMap<string, string[]>, note: (m: string) => void): PlannedPart[] {
  const parts: PlannedPart[] = [];
  let current: PlannedPart | undefined;
  const open = (): PlannedPart => {
    current = {file: partName(parts.length), images: [], loose: [], stored: new Map(), size: PART_OVERHEAD};
    parts.push(current);
    return current;
  };
  const wanted = (layers: readonly Layer[]): Layer[] => layers.filter((l) => !have.has(l.descriptor.digest) && l.absent === undefined);
  const adding = (part: PlannedPart, layers: readonly Layer[]): number => layers.reduce((n, l) => n + (part.stored.has(l.descriptor.digest) ? 0 : l.descriptor.size + MEMBER_OVERHEAD), 0);
  const store = (part: PlannedPart, layers: readonly Layer[]): void => {
    for (const l of layers) {
      if (part.stored.has(l.descriptor.digest)) continue;
      part.stored.set(l.descriptor.digest, l.descriptor.size);
      part.size += l.descriptor.size + MEMBER_OVERHEAD;
    }
  };
  for (const image of images) {
    const layers = wanted(image.layers);
    let part = current ?? open();
    const need = adding(part, layers) + image.documents;
    if (maxPartSize > 0 && part.size + need > maxPartSize && (part.images.length > 0 || part.loose.length > 0)) part = open();
    if (maxPartSize <= 0 || part.size + adding(part, layers) + image.documents <= maxPartSize) {
      store(part, layers);
      part.size += image.documents;
      part.images.push(image);
      continue;
    }
    // Bigger than a part: its layers go out in order, a new part whenever the next one does not fit.
    note(`${image.name ?? image.input}: ${humanSize(layers.reduce((n, l) => n + l.descriptor.size, 0))} is more than --max-part-size: it spans parts`);
    for (const layer of layers) {
      if (part.size + layer.descriptor.size + MEMBER_OVERHEAD > maxPartSize && part.stored.size > 0) part = open();
      if (layer.descriptor.size + MEMBER_OVERHEAD + PART_OVERHEAD > maxPartSize) note(`${layer.label}: one layer of ${humanSize(layer.descriptor.size)} is bigger than --max-part-size; its part is that big`);
      part.loose.push(layer);
      store(part, [layer]);
    }
    // The last part completes it: the layers it holds stop being loose there.
    part.loose = part.loose.filter((l) => !layers.includes(l));
    part.images.push(image);
    part.size += image.documents;
  }
  return parts.filter((p) => p.images.length > 0 || p.loose.length > 0);
}

async function sha256File(file: string): Promise<{sha256: string; size: number}> {
  const check = new BlobCheck(file);
  await hashFileInto(check, file);
  return {sha256: check.finish().slice('sha256:'.length), size: check.bytes};
}

/** The index.json of a written part: its roots with their names (what bundle.json records). */
async function partRoots(file: string, settings: Settings): Promise<PartRoot[]> {
  const tree = await TarTree.index(await FileRange.ofFile(file), file);
  const range = await tree.file('index.json');
  if (!range) return [];
  const parsed = parseJson(await range.readAll(settings.limits.maxJsonBytes), `${file}: index.json`);
  const roots: PartRoot[] = [];
  if (!isRecord(parsed) || !Array.isArray(parsed.manifests)) return roots;
  parsed.manifests.forEach((m, i) => {
    const d = parseDescriptor(m, `${file}: index.json manifests[${i}]`);
    const name = d.annotations?.['io.containerd.image.name'];
    const existing = roots.find((r) => r.descriptor.digest === d.digest);
    if (existing) {
      if (name) existing.names.push(name);
      return;
    }
    roots.push({descriptor: {mediaType: d.mediaType, digest: d.digest, size: d.size}, names: name ? [name] : []});
  });
  return roots;
}

/** What a root of a written part's index.json is, and the names it carries. */
interface PartRoot {
  descriptor: Descriptor;
  names: string[];
}

interface CreateState {
  plan: string;
  done: Record<string, {size: number; sha256: string; roots: PartRoot[]}>;
}

async function readState(dir: string): Promise<CreateState | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path.join(dir, STATE_FILE), 'utf8')) as CreateState;
    return typeof parsed.plan === 'string' && isRecord(parsed.done) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** DIR must be new, empty, an interrupted run's, or (with force) a bundle to replace. */
async function prepareDirectory(dir: string, force: boolean, state: CreateState | undefined): Promise<void> {
  let existing: string[];
  try {
    if (!(await stat(dir)).isDirectory()) throw new FerryError('EXISTS', `${dir}: exists and is not a directory`);
    existing = await readdir(dir);
  } catch (e) {
    if (e instanceof FerryError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(e, dir);
    await mkdir(dir, {recursive: true}).catch((err: unknown) => {
      throw ioError(err, dir);
    });
    return;
  }
  if (state) return; // an interrupted run of ours: continued
  const ours = existing.filter((n) => n === BUNDLE_FILE || n === SUMS_FILE || /^part-\d{4}\.tar$/.test(n));
  if (ours.length === 0) return;
  if (!force) throw new FerryError('EXISTS', `${dir}: holds a bundle (${ours.slice(0, 3).join(', ')}${ours.length > 3 ? ', …' : ''}); --force replaces it`);
  for (const name of ours) await rm(path.join(dir, name), {force: true});
}

/** A temp name of ours in a bundle directory (a part being written, bundle.json, SHA256SUMS, the state file), with the writer's pid. */
const OUR_TEMP = /^(?:\.part-\d{4}\.tar|bundle\.json|SHA256SUMS|\.ferry-bundle-state\.json)\.ferry-(\d+)(?:-[0-9a-f]+)?\.(?:tmp|tmpdir|work|old)$/;

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What a killed run left half-written (its temp files: a SIGKILL removes none); a live writer's are left alone. */
async function removeStaleTemps(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = OUR_TEMP.exec(name);
    if (!m || Number(m[1]) === process.pid || isRunning(Number(m[1]))) continue;
    await rm(path.join(dir, name), {recursive: true, force: true});
  }
}

/**
 * `ferry bundle create INPUT... -o DIR`: every input pinned to its digest, planned into parts, each
 * part written as a docker-archive (atomically, deterministic bytes), then bundle.json and
 * SHA256SUMS. A run that is killed leaves a state file: the same command continues, checking the
 * parts already written and writing the rest.
 */
export async function createBundle(inputs: readonly string[], dir: string, options: BundleCreateOptions = {}): Promise<BundleSummary> {
  if (inputs.length === 0) throw new UsageError('name at least one image to bundle');
  const note = options.note ?? ((): void => {});
  const settings = resolveSettings(options.settings);
  const sources = inputs.map(bundleSource);
  const have = options.have ? await readHave(options.have, settings) : new Map<string, string[]>();
  const archives: Archive[] = [];
  try {
    const images: PlannedImage[] = [];
    const seen = new Set<string>();
    for (const [i, source] of sources.entries()) {
      const archive = await openArchive(source, {settings});
      archives.push(archive);
      for (const w of archive.warnings) note(`warning: ${w}`);
      const all = await selectEntries(archive, []);
      const entries = pickPlatforms(all, options.platforms ?? [], note);
      // pickPlatforms keeps one entry per image entry, in order: the pin is the source's root digest.
      const pins = await Promise.all(all.filter((e) => !isArtifact(e.root)).map(rootDigest));
      for (const [n, entry] of entries.filter((e) => !isArtifact(e.root)).entries()) {
        const sourceDigest = pins[n]!;
        const parsed = entry.names[0] === undefined ? undefined : tryParseReference(entry.names[0]);
        const name = parsed && parsed.digest === undefined ? fullName(withDefaultTag(parsed)) : null;
        const key = `${name ?? ''}@${sourceDigest}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const companions = referrersAmong({entries}, [entry]);
        images.push({
          input: inputs[i]!,
          entry: name ? {...entry, names: [name]} : entry,
          companions,
          name,
          sourceDigest,
          layers: layersOf(entry.root),
          documents: documentBytes(entry.root) + companions.reduce((n, c) => n + documentBytes(c.root), 0),
          platforms: imagesOf(entry.root).map((image) => formatPlatform(image.platform)),
        });
      }
    }
    if (images.length === 0) throw new FerryError('NOT_FOUND', 'nothing to bundle: the inputs hold no image');
    const parts = planParts(images, options.maxPartSize ?? 0, have, note);
    const planKey = createHash('sha256')
      .update(JSON.stringify({max: options.maxPartSize ?? 0, parts: parts.map((p) => ({file: p.file, images: p.images.map((m) => [m.name, m.sourceDigest]), loose: p.loose.map((l) => l.descriptor.digest), stored: [...p.stored.keys()]}))}))
      .digest('hex');
    let state = await readState(dir);
    if (state && state.plan !== planKey) state = undefined;
    await prepareDirectory(dir, options.force === true, state);
    await removeStaleTemps(dir);
    const done: CreateState['done'] = state?.done ?? {};
    const resumed: string[] = [];
    const writtenParts: BundlePart[] = [];
    for (const part of parts) {
      const file = path.join(dir, part.file);
      const previous = done[part.file];
      let written: {size: number; sha256: string} | undefined;
      if (previous && existsSync(file)) {
        const check = await sha256File(file);
        if (check.sha256 === previous.sha256) {
          written = check;
          resumed.push(part.file);
        }
      }
      if (!written) {
        // What the part's images list but it does not store: blobs the far side has, and blobs an
        // earlier part of a spanning image holds.
        const referenced = new Set(part.images.flatMap((m) => m.layers.map((l) => l.descriptor.digest)));
        const omit = new Set([...referenced].filter((d) => !part.stored.has(d)));
        const entries = part.images.flatMap((m) => [m.entry, ...m.companions]);
        await writeArchive(`docker-archive:${file}`, entries, {
          keepBlobs: true,
          keepDigests: true,
          anyPrimary: true,
          force: true,
          ...(omit.size > 0 ? {omitBlobs: omit} : {}),
          ...(part.loose.length > 0 ? {looseLayers: part.loose} : {}),
          note,
          ...(options.progress ? {progress: options.progress} : {}),
          ...(options.signal ? {signal: options.signal} : {}),
          settings,
        });
        written = await sha256File(file);
        done[part.file] = {...written, roots: await partRoots(file, settings)};
        await replaceSmallFile(path.join(dir, STATE_FILE), Buffer.from(JSON.stringify({plan: planKey, done})));
      }
      writtenParts.push({file: part.file, size: written.size, sha256: written.sha256, images: part.images.map((m) => m.name ?? m.sourceDigest), blobs: [...part.stored.keys()].sort() as Digest[]});
    }
    // bundle.json: each image with the digest stored (the source's, unless --platform made a new index).
    const bundleImages: BundleImage[] = [];
    for (const image of images) {
      const partsOf = parts.filter((p) => p.images.includes(image) || p.loose.some((l) => image.layers.includes(l))).map((p) => p.file);
      const roots = done[partsOf.at(-1)!]!.roots;
      const root = roots.find((r) => image.name !== null && r.names.includes(image.name))?.descriptor ?? roots.find((r) => r.descriptor.digest === image.sourceDigest)?.descriptor;
      if (!root) throw new FerryError('IO', `${image.name ?? image.input}: internal: its manifest is not in the part written for it`);
      bundleImages.push({ref: image.input, name: image.name, sourceDigest: image.sourceDigest, digest: root.digest, mediaType: root.mediaType, size: root.size, platforms: image.platforms, parts: partsOf, blobs: await blobsOf(image.entry.root, root.digest)});
    }
    const blobSizes: Record<string, number> = {};
    for (const image of images) {
      for (const layer of image.layers) blobSizes[layer.descriptor.digest] = layer.descriptor.size;
      for (const i of imagesOf(image.entry.root)) blobSizes[i.config.digest] = i.config.bytes.length;
    }
    for (const image of bundleImages) blobSizes[image.digest] = image.size;
    for (const image of images) collect(image.entry.root, undefined, (d, size) => (blobSizes[d] ??= size));
    const copies = new Map<string, number>();
    for (const part of parts) for (const d of part.stored.keys()) copies.set(d, (copies.get(d) ?? 0) + 1);
    const repeated = {blobs: 0, bytes: 0};
    for (const [d, n] of copies) if (n > 1) {
      repeated.blobs++;
      repeated.bytes += (n - 1) * (blobSizes[d] ?? 0);
    }
    const omitted: Record<string, string[]> = {};
    let omittedBytes = 0;
    for (const image of images) for (const layer of image.layers) if (have.has(layer.descriptor.digest) && !(layer.descriptor.digest in omitted)) {
      omitted[layer.descriptor.digest] = [...have.get(layer.descriptor.digest)!].sort();
      omittedBytes += layer.descriptor.size;
    }
    const manifest: BundleManifest = {schemaVersion: 1, mediaType: BUNDLE_MEDIA_TYPE, maxPartSize: options.maxPartSize ? options.maxPartSize : null, images: bundleImages, parts: writtenParts, blobs: blobSizes, omitted, repeated};
    const manifestBytes = bundleManifestBytes(manifest);
    await replaceSmallFile(path.join(dir, BUNDLE_FILE), manifestBytes);
    const manifestSum = createHash('sha256').update(manifestBytes).digest('hex');
    await replaceSmallFile(path.join(dir, SUMS_FILE), sha256SumsBytes([...writtenParts, {file: BUNDLE_FILE, sha256: manifestSum}]));
    await rm(path.join(dir, STATE_FILE), {force: true});
    if (repeated.blobs > 0) note(`${repeated.blobs} blob(s) repeated across parts so each stands alone: ${humanSize(repeated.bytes)} more`);
    if (have.size > 0) note(`left out ${Object.keys(omitted).length} blob(s) the target holds: ${humanSize(omittedBytes)} saved`);
    return {
      dir,
      images: bundleImages.map((m) => ({ref: m.ref, name: m.name, digest: m.digest, parts: m.parts})),
      parts: writtenParts.map((p) => ({file: p.file, size: p.size, images: p.images})),
      bytes: writtenParts.reduce((n, p) => n + p.size, 0),
      repeated,
      omitted: {blobs: Object.keys(omitted).length, bytes: omittedBytes},
      resumed,
    };
  } finally {
    for (const archive of archives) await archive.close();
  }
}

export interface Inventory {
  schemaVersion: 1;
  target: string;
  /** Every blob the target holds → its size and the repositories (registries) that hold it. */
  blobs: Record<string, {size: number; repositories: string[]}>;
}

/**
 * `ferry bundle inventory TARGET`: what a target already holds, for `create --have`. TARGET is a
 * registry (`docker://HOST[:PORT][/PREFIX]`: its catalog below PREFIX, or `repositories`), a bundle
 * directory or a directory of them (the parts present), a bundle.json (everything it lists), or any
 * archive ferry reads.
 */
export async function inventory(target: string, options: {repositories?: string[]; settings?: SettingsInput; note?: (m: string) => void} = {}): Promise<Inventory> {
  const settings = resolveSettings(options.settings);
  const blobs = new Map<string, {size: number; repositories: Set<string>}>();
  const add = (digest: string, size: number, repository?: string): void => {
    const entry = blobs.get(digest) ?? {size, repositories: new Set<string>()};
    if (repository) entry.repositories.add(repository);
    blobs.set(digest, entry);
  };
  if (target.startsWith('docker://')) {
    const body = target.slice('docker://'.length).replace(/\/+$/, '');
    const [registry, ...rest] = body.split('/');
    if (!registry) throw new UsageError(`"${target}": name a registry: docker://HOST[:PORT][/PREFIX]`);
    const prefix = rest.join('/');
    const repositories = options.repositories?.length ? options.repositories.map((r) => (prefix && !r.startsWith(`${prefix}/`) ? `${prefix}/${r}` : r)) : await listRepositories(registry, prefix, settings.registry);
    for (const repository of repositories) {
      const {tags} = await listRegistryTags(`${registry}/${repository}`, settings.registry);
      for (const tag of tags) {
        const archive = await openArchive(`docker://${registry}/${repository}:${tag}`, {settings});
        try {
          for (const entry of archive.entries) collect(entry.root, entry.descriptor, (d, size) => add(d, size, repository));
        } finally {
          await archive.close();
        }
      }
    }
  } else {
    const bundleDirs = await bundleDirectories(target);
    if (bundleDirs.length > 0 || target.endsWith('.json')) {
      const files = bundleDirs.length > 0 ? bundleDirs.map((d) => path.join(d, BUNDLE_FILE)) : [target];
      for (const file of files) {
        const manifest = parseBundleManifest(await readFile(file).catch((e: unknown) => {
          throw ioError(e, file);
        }), file);
        const whole = bundleDirs.length === 0;
        for (const part of manifest.parts) {
          if (!whole && !existsSync(path.join(path.dirname(file), part.file))) continue;
          for (const d of part.blobs) add(d, manifest.blobs[d] ?? 0);
        }
        for (const image of manifest.images) if (whole || image.parts.every((p) => existsSync(path.join(path.dirname(file), p)))) for (const d of image.blobs) add(d, manifest.blobs[d] ?? 0);
      }
    } else {
      const archive = await openArchive(target, {settings});
      try {
        for (const entry of archive.entries) collect(entry.root, entry.descriptor, (d, size) => add(d, size));
      } finally {
        await archive.close();
      }
    }
  }
  const sorted = [...blobs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {schemaVersion: 1, target, blobs: Object.fromEntries(sorted.map(([d, v]) => [d, {size: v.size, repositories: [...v.repositories].sort()}]))};
}

/** Every blob of a node: manifests and indexes, configs, layers present. */
function collect(node: Node, descriptor: Descriptor | undefined, add: (digest: string, size: number) => void): void {
  if (descriptor) add(descriptor.digest, descriptor.size);
  if (isArtifact(node)) {
    add(node.manifest.digest, node.manifest.bytes.length);
    for (const b of node.blobs) if (b.absent === undefined) add(b.descriptor.digest, b.descriptor.size);
  } else if (isImageIndex(node)) {
    add(node.document.digest, node.document.bytes.length);
    for (const c of node.children) if (c.target) collect(c.target, c.descriptor, add);
  } else {
    if (node.manifest) add(node.manifest.digest, node.manifest.bytes.length);
    add(node.config.digest, node.config.bytes.length);
    for (const layer of node.layers) if (layer.absent === undefined) add(layer.descriptor.digest, layer.descriptor.size);
  }
}

/** DIR itself when it is a bundle, else the bundles directly inside it. */
async function bundleDirectories(target: string): Promise<string[]> {
  if (existsSync(path.join(target, BUNDLE_FILE))) return [target];
  try {
    if (!(await stat(target)).isDirectory()) return [];
  } catch {
    return [];
  }
  const names = (await readdir(target)).sort();
  return names.map((n) => path.join(target, n)).filter((d) => existsSync(path.join(d, BUNDLE_FILE)));
}

export interface BundleVerifyResult {
  ok: boolean;
  dir: string;
  images: Array<{ref: string; name: string | null; digest: string; complete: boolean; missing: string[]; damaged: string[]}>;
  parts: Array<{file: string; present: boolean; ok: boolean; problem?: string}>;
  problems: string[];
}

/**
 * `ferry bundle verify DIR`: every part present is hashed against SHA256SUMS and bundle.json, and its
 * members against the blobs bundle.json says it holds; then each image is complete when every part
 * it needs is present and sound.
 */
export async function verifyBundle(dir: string, options: {settings?: SettingsInput; progress?: Progress} = {}): Promise<BundleVerifyResult> {
  const settings = resolveSettings(options.settings);
  const file = path.join(dir, BUNDLE_FILE);
  const bytes = await readFile(file).catch((e: unknown) => {
    throw (e as NodeJS.ErrnoException).code === 'ENOENT' ? new FerryError('UNKNOWN_FORMAT', `${dir}: not a bundle: ${BUNDLE_FILE} is missing`) : ioError(e, file);
  });
  if (bytes.length > settings.limits.maxJsonBytes) throw new FerryError('LIMIT_EXCEEDED', `${file}: over ${settings.limits.maxJsonBytes} bytes`);
  const manifest = parseBundleManifest(bytes, file);
  const problems: string[] = [];
  let sums = new Map<string, string>();
  try {
    sums = parseSha256Sums(await readFile(path.join(dir, SUMS_FILE), 'utf8'), path.join(dir, SUMS_FILE));
  } catch (e) {
    problems.push(e instanceof FerryError ? e.message : `${path.join(dir, SUMS_FILE)}: missing`);
  }
  const manifestSum = createHash('sha256').update(bytes).digest('hex');
  if (sums.size > 0 && sums.get(BUNDLE_FILE) !== manifestSum) problems.push(`${file}: does not match its line in ${SUMS_FILE}`);
  options.progress?.start('verifying', manifest.parts.reduce((n, p) => n + p.size, 0));
  const parts: BundleVerifyResult['parts'] = [];
  for (const part of manifest.parts) {
    const where = path.join(dir, part.file);
    if (!existsSync(where)) {
      parts.push({file: part.file, present: false, ok: false, problem: `${where}: missing`});
      continue;
    }
    const {sha256, size} = await sha256File(where);
    options.progress?.advance(size);
    let problem: string | undefined;
    if (size !== part.size) problem = `${where}: ${size} bytes, bundle.json says ${part.size}`;
    else if (sha256 !== part.sha256) problem = `${where}: sha256 ${sha256}, bundle.json says ${part.sha256}`;
    else if (sums.size > 0 && sums.get(part.file) !== sha256) problem = `${where}: does not match its line in ${SUMS_FILE}`;
    else {
      const tree = await TarTree.index(await FileRange.ofFile(where), where);
      for (const digest of part.blobs) {
        if (!(await tree.file(`blobs/${digest.replace(':', '/')}`))) {
          problem = `${where}: blob ${digest} that bundle.json lists is not in it`;
          break;
        }
      }
    }
    parts.push({file: part.file, present: true, ok: problem === undefined, ...(problem ? {problem} : {})});
  }
  options.progress?.stop();
  const byFile = new Map(parts.map((p) => [p.file, p]));
  const images = manifest.images.map((image) => {
    const missing = image.parts.filter((p) => !byFile.get(p)?.present);
    const damaged = image.parts.filter((p) => byFile.get(p)?.present && !byFile.get(p)!.ok);
    return {ref: image.ref, name: image.name, digest: image.digest, complete: missing.length === 0 && damaged.length === 0, missing, damaged};
  });
  for (const p of parts) if (p.problem) problems.push(p.problem);
  return {ok: problems.length === 0 && images.every((i) => i.complete), dir, images, parts, problems};
}

export interface BundleApplyOptions {
  keepGoing?: boolean;
  report?: string;
  /** An OCI layout target that holds images: they are kept, the bundle's added (the layout is rewritten). */
  force?: boolean;
  note?: (message: string) => void;
  progress?: Progress;
  signal?: AbortSignal;
  settings?: SettingsInput;
}

export interface BundleApplySummary {
  target: string;
  refs: TransferItem[];
}

/**
 * `ferry bundle apply DIR TARGET`: the bundle's images into a registry (every image under TARGET with
 * its digests unchanged, existing blobs skipped, the registry's manifest digest checked after), a
 * daemon (`docker-daemon:`), or an OCI layout (`oci:DIR`, added to what it holds). A differential
 * bundle fails before anything moves, naming the blobs the target lacks.
 */
export async function applyBundle(dir: string, target: string, options: BundleApplyOptions = {}): Promise<BundleApplySummary> {
  const settings = resolveSettings(options.settings);
  const note = options.note ?? ((): void => {});
  const file = path.join(dir, BUNDLE_FILE);
  const manifest = parseBundleManifest(await readFile(file).catch((e: unknown) => {
    throw (e as NodeJS.ErrnoException).code === 'ENOENT' ? new FerryError('UNKNOWN_FORMAT', `${dir}: not a bundle: ${BUNDLE_FILE} is missing`) : ioError(e, file);
  }), file);
  const incomplete = manifest.images.filter((image) => image.parts.some((p) => !existsSync(path.join(dir, p))));
  const items: TransferItem[] = incomplete.map((image) => ({ref: image.name ?? image.ref, error: `incomplete: part ${image.parts.filter((p) => !existsSync(path.join(dir, p))).join(', ')} missing`}));
  if (incomplete.length > 0 && !options.keepGoing) throw new FerryError('MISSING_BLOB', `${dir}: ${incomplete.map((i) => `${i.name ?? i.ref} (${items.find((x) => x.ref === (i.name ?? i.ref))!.error})`).join('; ')}; --keep-going applies the rest`);
  for (const item of items) note(`${item.ref}: ${item.error}`);
  const complete = manifest.images.filter((image) => !incomplete.includes(image));
  const omitted = new Set(Object.keys(manifest.omitted));
  const needsOmitted = (image: BundleImage): string[] => image.blobs.filter((d) => omitted.has(d));
  const source = `bundle:${dir}`;
  const kind = parseTransportRef(target).transport;
  if (target.startsWith('docker://')) {
    const prefix = target.slice('docker://'.length).replace(/\/+$/, '');
    const [registry] = prefix.split('/');
    // A differential bundle: every blob it left out must be in the target repository (or mountable into it).
    const lacking = new Map<string, string[]>();
    for (const image of complete) {
      const wanted = needsOmitted(image);
      if (wanted.length === 0 || !image.name) continue;
      const ref = parseRegistryRef(`docker://${pushTarget(image.name, target)}`);
      const missing = await ensureBlobsPresent(registry!, ref.repository, wanted.map((d) => ({digest: d, from: manifest.omitted[d] ?? []})), settings.registry);
      for (const d of missing) lacking.set(d, [...(lacking.get(d) ?? []), image.name]);
    }
    if (lacking.size > 0) throw lackingError(target, lacking);
    const pushed = await pushImages([source], target, {all: true, keepGoing: options.keepGoing ?? false, ...(omitted.size > 0 ? {omitBlobs: omitted} : {}), note, ...(options.progress ? {progress: options.progress} : {}), settings});
    // The registry's copy, checked: each reference serves the digest the bundle holds.
    for (const item of pushed.refs) {
      if (item.error !== undefined) continue;
      const image = complete.find((m) => m.name && pushTarget(m.name, target) === item.ref);
      const served = await manifestDigest(`docker://${item.ref}`, settings.registry);
      if (image && served !== image.digest) item.error = `the registry serves ${served ?? 'nothing'}, the bundle holds ${image.digest}`;
    }
    items.push(...pushed.refs);
  } else if (kind === 'docker-daemon') {
    const lacking = new Map<string, string[]>();
    for (const image of complete) for (const d of needsOmitted(image)) lacking.set(d, [...(lacking.get(d) ?? []), image.name ?? image.ref]);
    if (lacking.size > 0) throw new FerryError('MISSING_BLOB', `${target}: a daemon loads whole images, and this differential bundle left out ${describeLacking(lacking)}; apply it to a registry, or make a full bundle`);
    const loaded = await loadImages(source, {note, ...(options.progress ? {progress: options.progress} : {}), settings});
    items.push(...complete.map((image) => ({ref: image.name ?? image.ref, digest: image.digest})));
    for (const name of loaded.loaded ?? []) note(`Loaded image: ${name}`);
  } else if (kind === 'oci') {
    await applyToLayout(source, target, manifest, omitted, options, settings, note);
    items.push(...complete.map((image) => ({ref: image.name ?? image.ref, digest: image.digest})));
  } else {
    throw new UsageError(`"${target}": apply a bundle to docker://HOST[:PORT][/PREFIX], docker-daemon: or oci:DIR`);
  }
  if (options.report !== undefined) await writeReportFile(options.report, `${JSON.stringify(items, null, 2)}\n`);
  const failed = items.filter((i) => i.error !== undefined);
  if (failed.length > 0 && !options.keepGoing) throw new FerryError('REGISTRY', `${failed.map((f) => `${f.ref}: ${f.error}`).join('; ')}`);
  // With keepGoing what failed is in refs (and the report): the rest was applied.
  return {target, refs: items};
}

/** `N blob(s): DIGEST (for IMAGE, IMAGE), …`: each blob once, with the images that need it. */
function describeLacking(lacking: ReadonlyMap<string, readonly string[]>): string {
  const listed = [...lacking].map(([d, images]) => `${d} (for ${images.join(', ')})`);
  return `${lacking.size} blob(s): ${listed.slice(0, 5).join(', ')}${listed.length > 5 ? ', …' : ''}`;
}

function lackingError(target: string, lacking: ReadonlyMap<string, readonly string[]>): FerryError {
  return new FerryError('MISSING_BLOB', `${target} lacks ${describeLacking(lacking).replace(/^(\d+ blob\(s\)):/, '$1 this differential bundle left out:')}`);
}

/** Adds the bundle's images to an OCI layout: what it holds stays (and provides what a differential bundle left out). */
async function applyToLayout(source: string, target: string, manifest: BundleManifest, omitted: ReadonlySet<string>, options: BundleApplyOptions, settings: Settings, note: (m: string) => void): Promise<void> {
  const layoutDir = target.slice('oci:'.length);
  const existing = existsSync(path.join(layoutDir, 'index.json')) ? await openArchive(`oci:${layoutDir}`, {settings}) : undefined;
  const bundleArchive = await openArchive(source, {settings});
  try {
    let entries = [...bundleArchive.entries];
    if (omitted.size > 0) {
      const have = new Map<string, Layer>();
      for (const image of existing ? existing.entries.flatMap((e) => imagesOf(e.root)) : []) for (const layer of image.layers) if (layer.absent === undefined) have.set(layer.descriptor.digest, layer);
      const lacking = new Map<string, string[]>();
      for (const d of omitted) if (!have.has(d)) for (const m of manifest.images) if (m.blobs.includes(d as Digest)) lacking.set(d, [...(lacking.get(d) ?? []), m.name ?? m.ref]);
      if (lacking.size > 0) throw lackingError(target, lacking);
      entries = replaceLayers(entries, new Map(), have).entries;
    }
    const kept = existing ? existing.entries.filter((e) => !entries.some((b) => b.descriptor?.digest === e.descriptor?.digest && b.names.join() === e.names.join())) : [];
    if (kept.length > 0) note(`${target}: keeps its ${kept.length} image(s) and adds the bundle's`);
    const indexFile = path.join(layoutDir, 'index.json');
    const before = existing ? await readFile(indexFile).catch((e: unknown) => {
      throw ioError(e, indexFile);
    }) : undefined;
    await writeArchive(target, [...kept, ...entries], {force: true, keepDigests: true, keepBlobs: true, note, ...(options.progress ? {progress: options.progress} : {}), settings});
    if (before) await keepIndexNames(indexFile, before, entries);
  } finally {
    await bundleArchive.close();
    await existing?.close();
  }
}


const CONTAINERD_NAME = 'io.containerd.image.name';
const REF_NAME = 'org.opencontainers.image.ref.name';

/**
 * index.json after a bundle was added to a layout: the layout's own descriptors as they were (their
 * names as written: `skopeo oci:DIR:REF` and umoci match ref.name verbatim, so `keep` must not become
 * `docker.io/library/keep:latest`), less those whose name a bundle image takes over, then the
 * descriptors written for the bundle's images.
 */
async function keepIndexNames(indexFile: string, before: Buffer, added: readonly ArchiveEntry[]): Promise<void> {
  const manifestsOf = (bytes: Buffer, label: string): {parsed: Record<string, unknown>; manifests: Array<Record<string, unknown>>} => {
    const parsed = parseJson(bytes, label);
    if (!isRecord(parsed) || !Array.isArray(parsed.manifests)) throw new FerryError('BAD_JSON', `${label}: manifests is not a list`);
    return {parsed, manifests: parsed.manifests.filter(isRecord)};
  };
  const annotation = (d: Record<string, unknown>, key: string): string | undefined => (isRecord(d.annotations) && typeof d.annotations[key] === 'string' ? d.annotations[key] : undefined);
  const old = manifestsOf(before, `${indexFile} (before)`);
  const written = manifestsOf(await readFile(indexFile).catch((e: unknown) => {
    throw ioError(e, indexFile);
  }), indexFile);
  const names = new Set(added.flatMap((e) => e.names));
  const unnamed = new Set(added.filter((e) => e.names.length === 0).map((e) => e.descriptor?.digest));
  const isAdded = (d: Record<string, unknown>): boolean => {
    const name = annotation(d, CONTAINERD_NAME);
    return name !== undefined ? names.has(name) && added.some((e) => e.names.includes(name) && e.descriptor?.digest === d.digest) : unnamed.has(d.digest as Digest) && annotation(d, REF_NAME) === undefined;
  };
  const takenOver = (d: Record<string, unknown>): boolean => {
    const own = [annotation(d, CONTAINERD_NAME), annotation(d, REF_NAME)].filter((n): n is string => n !== undefined);
    return own.length > 0 ? own.some((n) => names.has(n)) : unnamed.has(d.digest as Digest);
  };
  const manifests = [...old.manifests.filter((d) => !takenOver(d)), ...written.manifests.filter(isAdded)];
  await replaceSmallFile(indexFile, Buffer.from(JSON.stringify({...written.parsed, manifests})));
}
