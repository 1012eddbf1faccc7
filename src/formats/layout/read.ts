import {DigestMismatchError, FerryError, SizeMismatchError} from '../../errors.js';
import type {FileTree} from '../../io/fs/file-tree.js';
import {MissingBlob, MissingLayer} from '../../io/layers/missing-layer.js';
import {RangeBlob, RangeLayer} from '../../io/layers/range-layer.js';
import {configPlatform, parseConfig, parseJson} from '../../model/config.js';
import {isRecord, parseDescriptor, type Descriptor} from '../../model/descriptor.js';
import {isDigest, sha256Of, splitDigest, type Digest} from '../../model/digest.js';
import type {ArchiveEntry, Artifact, ArtifactKind, Blob, Image, IndexChild, Layer, Node, RawDocument, ReadResult} from '../../model/image.js';
import {isIndexMediaType, isManifestMediaType, MediaType} from '../../model/media-types.js';
import {formatPlatform} from '../../model/platform.js';
import {MAX_INDEX_DEPTH, type Limits} from '../../settings.js';

/** What every reader needs besides the tree: the limits its JSON reads and its layers obey. */
export interface ReadContext {
  limits: Limits;
}

export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
export const ANNOTATION_CONTAINERD_NAME = 'io.containerd.image.name';
/** buildx / Docker 25+ attestation manifests: their kind, and the image manifest they describe. */
export const ANNOTATION_REFERENCE_TYPE = 'vnd.docker.reference.type';
export const ANNOTATION_REFERENCE_DIGEST = 'vnd.docker.reference.digest';

/** `blobs/<alg>/<encoded>` (image-layout.md). */
export function blobPath(digest: Digest): string {
  const [alg, hex] = splitDigest(digest);
  return `blobs/${alg}/${hex}`;
}

export async function isOciLayout(tree: FileTree): Promise<boolean> {
  const top = await tree.topLevel();
  return top.includes('oci-layout') && top.includes('index.json');
}

/** Reads a small JSON member, checking it against its descriptor (digest + size) when given. */
export async function readDocument(tree: FileTree, path: string, what: string, context: ReadContext, expect?: Descriptor): Promise<RawDocument> {
  const range = await tree.file(path);
  if (!range) throw new FerryError('MISSING_BLOB', `${tree.label}: ${what} ${path} is missing`);
  const bytes = await range.readAll(context.limits.maxJsonBytes);
  const digest = sha256Of(bytes);
  if (expect) {
    if (bytes.length !== expect.size) throw new SizeMismatchError(`${tree.label}: ${what} ${expect.digest}`, expect.size, bytes.length);
    if (splitDigest(expect.digest)[0] === 'sha256' && digest !== expect.digest) throw new DigestMismatchError(`${tree.label}: ${what} ${path}`, expect.digest, digest);
  }
  return {bytes, digest: expect?.digest ?? digest, mediaType: expect?.mediaType ?? '', parsed: parseJson(bytes, `${tree.label}: ${what} ${path}`)};
}

/** Names an index.json descriptor carries: containerd's full name wins, then the OCI ref name. */
export function namesFromAnnotations(d: Descriptor): string[] {
  const a = d.annotations ?? {};
  const names: string[] = [];
  const full = a[ANNOTATION_CONTAINERD_NAME];
  const ref = a[ANNOTATION_REF_NAME];
  if (full) names.push(full);
  else if (ref) names.push(ref);
  return names;
}

interface LayoutContext extends ReadContext {
  tree: FileTree;
  warnings: string[];
  /** Parsed nodes by digest, so an image listed under several names is read once. */
  cache: Map<string, Node>;
}

/**
 * Reads an OCI image layout (directory or tar) into archive entries: one per distinct index.json
 * descriptor (Docker 25 writes one per tag for the same manifest: merged, names united).
 */
export async function readLayout(tree: FileTree, context: ReadContext): Promise<ReadResult> {
  const problems: string[] = [];
  const layoutDoc = await readDocument(tree, 'oci-layout', 'layout marker', context);
  if (!isRecord(layoutDoc.parsed) || typeof layoutDoc.parsed.imageLayoutVersion !== 'string') {
    throw new FerryError('BAD_JSON', `${tree.label}: oci-layout has no imageLayoutVersion`);
  }
  const indexDoc = await readDocument(tree, 'index.json', 'index', context);
  const descriptors = indexDescriptors(indexDoc.parsed, `${tree.label}: index.json`);
  if (isRecord(indexDoc.parsed) && indexDoc.parsed.manifests === null) {
    problems.push(`${tree.label}: index.json: "manifests" is null, so OCI readers (containerd, ctr import) see no image (Docker 25 \`save image@digest\`, moby/moby#47210)`);
  }
  const result = await readLayoutEntries(tree, descriptors, context, `${tree.label}: index.json`);
  return {...result, problems: [...problems, ...result.problems]};
}

/**
 * The entries an index's descriptors name, read from a tree of blobs (`blobs/<alg>/<hex>`): what
 * readLayout does after index.json, and what a bundle (many trees seen as one, its own list of
 * images) does with bundle.json's.
 */
export async function readLayoutEntries(tree: FileTree, descriptors: readonly Descriptor[], context: ReadContext, label: string): Promise<ReadResult> {
  const warnings: string[] = [];
  const ctx: LayoutContext = {...context, tree, warnings, cache: new Map()};
  const byDigest = new Map<string, ArchiveEntry>();
  const entries: ArchiveEntry[] = [];
  for (const [i, d] of descriptors.entries()) {
    const where = `${label} manifests[${i}]`;
    if (!isIndexMediaType(d.mediaType) && !isManifestMediaType(d.mediaType)) {
      warnings.push(`${where}: skipped descriptor of unknown media type ${d.mediaType}`);
      continue;
    }
    const names = namesFromAnnotations(d);
    const refName = d.annotations?.[ANNOTATION_REF_NAME];
    const existing = byDigest.get(d.digest);
    if (existing) {
      for (const n of names) if (!existing.names.includes(n)) existing.names.push(n);
      if (refName !== undefined && !existing.refNames!.includes(refName)) existing.refNames!.push(refName);
      continue;
    }
    const root = await readNode(ctx, d, where, 0);
    if (!root) throw new FerryError('MISSING_BLOB', `${where}: ${describeKind(d)} ${d.digest} is not in the archive`);
    const entry: ArchiveEntry = {names, root, descriptor: d, refNames: refName === undefined ? [] : [refName]};
    byDigest.set(d.digest, entry);
    entries.push(entry);
  }
  return {entries, warnings, problems: []};
}

function describeKind(d: Descriptor): string {
  return isIndexMediaType(d.mediaType) ? 'index' : 'manifest';
}

export function indexDescriptors(parsed: unknown, where: string): Descriptor[] {
  if (!isRecord(parsed)) throw new FerryError('BAD_JSON', `${where}: not a JSON object`);
  if (parsed.schemaVersion !== 2) throw new FerryError('BAD_JSON', `${where}: schemaVersion ${JSON.stringify(parsed.schemaVersion)} is not 2`);
  // Docker 25 `save img@digest` could write "manifests": null (moby#47210): no images, not a crash.
  if (parsed.manifests === null) return [];
  if (!Array.isArray(parsed.manifests)) throw new FerryError('BAD_JSON', `${where}: manifests is not an array`);
  return parsed.manifests.map((m, i) => parseDescriptor(m, `${where} manifests[${i}]`));
}

async function readNode(ctx: LayoutContext, d: Descriptor, where: string, depth: number): Promise<Node | null> {
  const cached = ctx.cache.get(d.digest);
  if (cached) return cached;
  if (depth > MAX_INDEX_DEPTH) throw new FerryError('BAD_ARCHIVE', `${where}: indexes nested deeper than ${MAX_INDEX_DEPTH}`);
  const path = blobPath(d.digest);
  if (!(await ctx.tree.file(path))) return null;
  const doc = await readDocument(ctx.tree, path, describeKind(d), ctx, d);
  let node: Node;
  if (isIndexMediaType(d.mediaType)) {
    const children: IndexChild[] = [];
    for (const [i, child] of indexDescriptors(doc.parsed, `${where} (index ${d.digest})`).entries()) {
      const childWhere = `${where} → manifests[${i}]`;
      if (!isIndexMediaType(child.mediaType) && !isManifestMediaType(child.mediaType)) {
        ctx.warnings.push(`${childWhere}: skipped descriptor of unknown media type ${child.mediaType}`);
        continue;
      }
      const target = await readNode(ctx, child, childWhere, depth + 1);
      const entry: IndexChild = {descriptor: child, target};
      if (!target) {
        entry.absent = `${describeKind(child)} ${child.digest} is not in the archive`;
        ctx.warnings.push(`${childWhere}: ${child.platform ? `platform ${formatPlatform(child.platform)}: ` : ''}${entry.absent}`);
      }
      children.push(entry);
    }
    node = {document: doc, children};
  } else {
    node = await readManifest(ctx.tree, doc, d, where, ctx);
  }
  ctx.cache.set(d.digest, node);
  return node;
}

/** Config media types of runnable images; any other config makes a manifest an artifact (image-spec manifest.md). */
const IMAGE_CONFIGS = new Set<string>([MediaType.ociConfig, MediaType.dockerConfig]);

/** Layer media types that are layer tars (OCI and Docker vocabularies, foreign/non-distributable included). */
function isLayerTar(mediaType: string): boolean {
  return mediaType.startsWith('application/vnd.oci.image.layer.') || mediaType.startsWith('application/vnd.docker.image.rootfs.');
}

/**
 * Why a manifest is not a runnable image, or undefined when it is one: an attestation (buildx and
 * Docker 25+ mark them with vnd.docker.reference.type), an artifact (a config that is no image
 * config, or an OCI 1.1 artifactType), or a signature/statement whose layers are no layer tars
 * (cosign's simplesigning JSON, in-toto statements). docs/formats.md §3.
 */
export function artifactKind(d: Descriptor, parsed: unknown): ArtifactKind | undefined {
  if (d.annotations?.[ANNOTATION_REFERENCE_TYPE] === 'attestation-manifest') return 'attestation';
  if (!isRecord(parsed)) return undefined; // readImage says what is wrong with it
  if (isRecord(parsed.config) && typeof parsed.config.mediaType === 'string' && !IMAGE_CONFIGS.has(parsed.config.mediaType)) return 'artifact';
  if (typeof parsed.artifactType === 'string') return 'artifact';
  const layerTypes = Array.isArray(parsed.layers) ? parsed.layers.map((l) => (isRecord(l) && typeof l.mediaType === 'string' ? l.mediaType : '')) : [];
  const foreign = layerTypes.find((t) => t !== '' && !isLayerTar(t));
  if (foreign === undefined) return undefined;
  if (foreign === MediaType.inToto) return 'attestation';
  return foreign.startsWith('application/vnd.dev.cosign.') ? 'signature' : 'artifact';
}

/** Where a blob lives in the tree: `blobs/<alg>/<hex>` in a layout (skopeo's dir: layout names them by hex alone). */
export type BlobLocator = (digest: Digest) => string;

/**
 * A manifest read as a runnable image or, when it is not one, an artifact; its blobs are found by
 * `locate` (default: the OCI layout's blobs/ directory).
 */
export async function readManifest(tree: FileTree, doc: RawDocument, d: Descriptor, where: string, context: ReadContext, locate: BlobLocator = blobPath): Promise<Image | Artifact> {
  const kind = artifactKind(d, doc.parsed);
  return kind ? readArtifact(tree, doc, d, where, kind, locate) : readImage(tree, doc, d, where, context, locate);
}

/** A manifest kept as content: its blobs are listed (present or not), never parsed. */
async function readArtifact(tree: FileTree, doc: RawDocument, d: Descriptor, where: string, kind: ArtifactKind, locate: BlobLocator): Promise<Artifact> {
  const m = doc.parsed;
  if (!isRecord(m)) throw new FerryError('BAD_JSON', `${where}: manifest ${d.digest} is not a JSON object`);
  const config = parseDescriptor(m.config, `${where}: manifest ${d.digest} config`);
  const layers = Array.isArray(m.layers) ? m.layers.map((l, i) => parseDescriptor(l, `${where}: manifest ${d.digest} layers[${i}]`)) : [];
  const blobs: Blob[] = [];
  for (const [i, bd] of [config, ...layers].entries()) {
    const range = await tree.file(locate(bd.digest));
    const label = `${tree.label}: ${kind} ${d.digest.slice(0, 19)} ${i === 0 ? 'config' : `layer[${i - 1}]`} ${bd.digest}`;
    blobs.push(range ? new RangeBlob(bd, range.sub(0, range.size, label)) : new MissingBlob(bd, label));
  }
  const artifact: Artifact = {kind, manifest: {...doc, mediaType: typeof m.mediaType === 'string' ? m.mediaType : d.mediaType}, blobs, artifactType: typeof m.artifactType === 'string' ? m.artifactType : config.mediaType};
  const referenced = d.annotations?.[ANNOTATION_REFERENCE_DIGEST];
  if (isRecord(m.subject)) artifact.subject = parseDescriptor(m.subject, `${where}: manifest ${d.digest} subject`);
  else if (referenced !== undefined && isDigest(referenced)) artifact.subject = {digest: referenced};
  return artifact;
}

async function readImage(tree: FileTree, doc: RawDocument, d: Descriptor, where: string, context: ReadContext, locate: BlobLocator): Promise<Image> {
  const m = doc.parsed;
  if (!isRecord(m)) throw new FerryError('BAD_JSON', `${where}: manifest ${d.digest} is not a JSON object`);
  if (m.schemaVersion !== 2) throw new FerryError('BAD_JSON', `${where}: manifest ${d.digest} schemaVersion is not 2`);
  const configDesc = parseDescriptor(m.config, `${where}: manifest ${d.digest} config`);
  if (!Array.isArray(m.layers)) throw new FerryError('BAD_JSON', `${where}: manifest ${d.digest} has no layers array`);
  const layerDescs = m.layers.map((l, i) => parseDescriptor(l, `${where}: manifest ${d.digest} layers[${i}]`));
  const configDoc = await readDocument(tree, locate(configDesc.digest), 'config', context, configDesc);
  const config = parseConfig(configDoc.bytes, configDesc.mediaType, `${tree.label}: config ${configDesc.digest}`);
  const diffIds = config.parsed.rootfs.diff_ids;
  if (diffIds.length !== layerDescs.length) {
    // Docker 25.0 pre-releases wrote manifests with no layers at all (moby/moby#47065).
    const known = layerDescs.length === 0 ? ' (the Docker 25.0 pre-release save bug, moby/moby#47065)' : '';
    throw new FerryError('BAD_ARCHIVE', `${where}: manifest ${d.digest} lists ${layerDescs.length} layers but its config has ${diffIds.length} diff_ids${known}`);
  }
  const layers: Layer[] = [];
  for (const [i, ld] of layerDescs.entries()) {
    const range = await tree.file(locate(ld.digest));
    const label = `${tree.label}: layer[${i}] ${ld.digest}`;
    layers.push(range ? new RangeLayer(ld, diffIds[i]!, range.sub(0, range.size, label), context.limits) : new MissingLayer(ld, diffIds[i]!, label));
  }
  const platform = d.platform ?? configPlatform(config.parsed);
  return {manifest: {...doc, mediaType: typeof m.mediaType === 'string' ? m.mediaType : d.mediaType || MediaType.ociManifest}, config, layers, platform};
}
