import {createHash} from 'node:crypto';
import type {Readable} from 'node:stream';
import {DigestMismatchError, FerryError, describeError} from '../../errors.js';
import type {FileRange} from '../../io/bytes/file-range.js';
import {sniffCompression, SNIFF_BYTES} from '../../io/compress/sniff.js';
import type {FileTree} from '../../io/fs/file-tree.js';
import {MissingLayer} from '../../io/layers/missing-layer.js';
import {RangeLayer} from '../../io/layers/range-layer.js';
import {configPlatform, parseConfig, parseJson} from '../../model/config.js';
import {isRecord, parseDescriptor, type Descriptor} from '../../model/descriptor.js';
import {sha256Of, type Digest} from '../../model/digest.js';
import {imagesOf, type ArchiveEntry, type Image, type Layer, type OpenOptions, type ReadResult} from '../../model/image.js';
import {isNondistributable, layerMediaType, MediaType, type Compression} from '../../model/media-types.js';
import {sameReference} from '../../model/reference.js';
import type {Limits} from '../../settings.js';
import {cleanPath} from '../../tar/walk.js';
import {isOciLayout, readLayout, type ReadContext} from '../layout/read.js';

/** One manifest.json item (moby image/spec/v1.2 + tarexport). */
export interface DockerManifestItem {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
  Parent?: string;
  LayerSources?: Record<string, unknown>;
}

export async function hasDockerManifest(tree: FileTree): Promise<boolean> {
  return (await tree.topLevel()).includes('manifest.json');
}

export async function readManifestJson(tree: FileTree, context: ReadContext): Promise<DockerManifestItem[]> {
  const range = await tree.file('manifest.json');
  if (!range) throw new FerryError('BAD_ARCHIVE', `${tree.label}: manifest.json is missing`);
  const where = `${tree.label}: manifest.json`;
  const parsed = parseJson(await range.readAll(context.limits.maxJsonBytes), where);
  if (parsed === null) return []; // docker 20.10 loads nothing from a null manifest (docs/formats.md §1)
  if (!Array.isArray(parsed)) throw new FerryError('BAD_JSON', `${where}: expected a JSON array`);
  return parsed.map((item, i) => {
    const at = `${where} [${i}]`;
    if (!isRecord(item)) throw new FerryError('BAD_JSON', `${at}: not an object`);
    if (typeof item.Config !== 'string') throw new FerryError('BAD_JSON', `${at}: Config is not a string`);
    if (item.RepoTags !== null && item.RepoTags !== undefined && !(Array.isArray(item.RepoTags) && item.RepoTags.every((t) => typeof t === 'string'))) {
      throw new FerryError('BAD_JSON', `${at}: RepoTags is not an array of strings`);
    }
    if (!Array.isArray(item.Layers) || !item.Layers.every((l) => typeof l === 'string')) throw new FerryError('BAD_JSON', `${at}: Layers is not an array of strings`);
    if (item.LayerSources !== undefined && item.LayerSources !== null && !isRecord(item.LayerSources)) throw new FerryError('BAD_JSON', `${at}: LayerSources is not an object`);
    return item as unknown as DockerManifestItem;
  });
}

/**
 * Reads `docker save` output: Docker 25+ (OCI layout + manifest.json: index.json preferred, names
 * from RepoTags merged in) or the legacy layout (manifest.json drives, docs/formats.md §1–2).
 */
export async function readDockerArchive(tree: FileTree, context: ReadContext): Promise<ReadResult> {
  const items = await readManifestJson(tree, context);
  let entries: ArchiveEntry[] = [];
  const warnings: string[] = [];
  const problems: string[] = [];
  /** Whether the OCI view (index.json) was read: images it lacks are invisible to OCI readers. */
  let ociView = false;
  if (await isOciLayout(tree)) {
    try {
      const layout = await readLayout(tree, context);
      entries = layout.entries;
      warnings.push(...layout.warnings);
      problems.push(...layout.problems);
      ociView = true;
    } catch (e) {
      if (!(e instanceof FerryError) || e.code === 'LIMIT_EXCEEDED') throw e;
      // Broken OCI view (e.g. moby#47065's empty layers): manifest.json still describes the images,
      // but containerd and every OCI reader would fail on it, so verify reports it.
      const why = describeError(e).replace(`${tree.label}: `, '');
      problems.push(`${tree.label}: index.json unusable (${why}); the images were read from manifest.json`);
      entries = [];
    }
  }
  const configDigests = new Map<string, ArchiveEntry>();
  for (const entry of entries) for (const image of imagesOf(entry.root)) configDigests.set(image.config.digest, entry);
  for (const [i, item] of items.entries()) {
    const where = `${tree.label}: manifest.json [${i}]`;
    const configRange = await tree.file(item.Config);
    if (!configRange) throw new FerryError('MISSING_BLOB', `${where}: config ${item.Config} is not in the archive`);
    const configBytes = await configRange.readAll(context.limits.maxJsonBytes);
    const digest = sha256Of(configBytes);
    const claimed = claimedConfigDigest(item.Config);
    if (claimed !== undefined && claimed !== digest) throw new DigestMismatchError(`${where}: config ${item.Config}`, claimed, digest);
    const names = item.RepoTags ?? [];
    const known = configDigests.get(digest);
    if (known) {
      // RepoTags first: they are what docker shows; other spellings of the same name are dropped.
      known.names = [...names, ...known.names.filter((n) => !names.some((t) => sameReference(t, n)))];
      continue;
    }
    if (ociView) {
      // Docker's save by digest can leave images out of index.json (moby/moby#51389).
      problems.push(`${where}: image ${digest} (${names.join(', ') || 'untagged'}) is not listed in index.json: OCI readers (containerd, ctr import) will not see it (moby/moby#51389)`);
    }
    const image = await readLegacyImage(tree, item, configBytes, where, context.limits);
    const entry: ArchiveEntry = {names: [...names], root: image};
    configDigests.set(digest, entry);
    entries.push(entry);
  }
  return {entries, warnings, problems};
}

/**
 * The digest a config's archive path claims: `<hex>.json` (docker save ≤24, skopeo) or
 * `blobs/sha256/<hex>` (Docker 25+). docker load does not check it, but a config whose bytes no
 * longer match its name was changed after it was written (docs/formats.md §1–2).
 */
export function claimedConfigDigest(configPath: string): Digest | undefined {
  const clean = cleanPath(configPath);
  const hex = /^([a-f0-9]{64})\.json$/.exec(clean)?.[1] ?? /^blobs\/sha256\/([a-f0-9]{64})$/.exec(clean)?.[1];
  return hex === undefined ? undefined : (`sha256:${hex}` as Digest);
}

async function readLegacyImage(tree: FileTree, item: DockerManifestItem, configBytes: Buffer, where: string, limits: Limits): Promise<Image> {
  const config = parseConfig(configBytes, MediaType.dockerConfig, `${tree.label}: ${item.Config}`);
  const diffIds = config.parsed.rootfs.diff_ids;
  if (diffIds.length !== item.Layers.length) {
    // docker load: "invalid manifest, layers length mismatch"
    throw new FerryError('BAD_ARCHIVE', `${where}: ${item.Layers.length} Layers but the config has ${diffIds.length} diff_ids`);
  }
  const layers: Layer[] = [];
  for (const [i, path] of item.Layers.entries()) {
    const diffId = diffIds[i]! as Digest;
    const label = `${tree.label}:${path}`;
    const range = await tree.file(path);
    // Docker ≤ 24 names a Windows base layer's real home here (a foreign layer, docs/formats.md §1).
    const source = foreignSource(item, diffId, `${where}: LayerSources`);
    if (!range) {
      layers.push(new MissingLayer(source ?? {mediaType: MediaType.dockerLayer, digest: diffId, size: 0}, diffId, label, source));
      continue;
    }
    const compression = sniffCompression(await range.read(0, SNIFF_BYTES));
    const member = range.sub(0, range.size, label);
    // An uncompressed layer's blob digest is its diffID (verify proves it); a compressed one's is
    // learnt by hashing it, which waits until something needs it (Docker itself never writes these).
    if (compression !== 'none') layers.push(new HashedOnDemandLayer(compression, diffId, member, limits));
    else layers.push(new RangeLayer({mediaType: source ? MediaType.dockerForeignLayer : MediaType.dockerLayer, digest: diffId, size: range.size}, diffId, member, limits, source));
  }
  return {manifest: null, config, layers, platform: configPlatform(config.parsed)};
}

/** The LayerSources descriptor of a foreign layer (other entries, which Docker 25 writes for every layer, are no news). */
function foreignSource(item: DockerManifestItem, diffId: Digest, where: string): Descriptor | undefined {
  const raw = item.LayerSources?.[diffId];
  if (raw === undefined) return undefined;
  const descriptor = parseDescriptor(raw, `${where} ${diffId}`);
  return isNondistributable(descriptor.mediaType) ? descriptor : undefined;
}

/**
 * A compressed layer of a legacy archive: manifest.json gives only its diffID, so its blob digest is
 * the hash of the file, computed by `resolve()` the first time an op needs the layer (ops resolve
 * what they select, src/ops/select.ts): inspect of the usual uncompressed archive never pays for it.
 */
class HashedOnDemandLayer implements Layer {
  #resolved: RangeLayer | undefined;
  constructor(
    private readonly stored: Compression,
    readonly diffId: Digest,
    readonly region: FileRange,
    private readonly limits: Limits,
  ) {}

  get label(): string {
    return this.region.label;
  }

  #layer(): RangeLayer {
    if (!this.#resolved) throw new FerryError('IO', `${this.label}: internal: the layer was used before resolve()`);
    return this.#resolved;
  }

  get descriptor(): Descriptor {
    return this.#layer().descriptor;
  }

  async compression(): Promise<Compression> {
    return this.stored;
  }

  openCompressed(options?: OpenOptions): Readable {
    return this.#layer().openCompressed(options);
  }

  openUncompressed(options?: OpenOptions): Readable {
    return this.#layer().openUncompressed(options);
  }

  async resolve(): Promise<void> {
    if (this.#resolved) return;
    const hash = createHash('sha256');
    for await (const chunk of this.region.stream()) hash.update(chunk as Buffer);
    const mediaType = this.stored === 'zstd' ? MediaType.ociLayerZstd : layerMediaType(this.stored, 'docker');
    this.#resolved = new RangeLayer({mediaType, digest: `sha256:${hash.digest('hex')}` as Digest, size: this.region.size}, this.diffId, this.region, this.limits);
  }
}
