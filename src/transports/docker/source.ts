import {Readable} from 'node:stream';
import pLimit from 'p-limit';
import {DigestMismatchError, FerryError, printable, SizeMismatchError} from '../../errors.js';
import {ANNOTATION_REF_NAME, artifactKind} from '../../formats/layout/read.js';
import {openChecked} from '../../io/blobs/checked-read.js';
import {sniffCompression, SNIFF_BYTES} from '../../io/compress/sniff.js';
import {configPlatform, parseConfig, parseJson} from '../../model/config.js';
import {isRecord, parseDescriptor, type Descriptor} from '../../model/descriptor.js';
import {isDigest, sha256Of, type Digest} from '../../model/digest.js';
import type {Artifact, ArchiveEntry, Blob, Image, ImageIndex, IndexChild, Layer, Node, OpenOptions, RawDocument, ReadResult} from '../../model/image.js';
import {compressionOfMediaType, isIndexMediaType, isManifestMediaType, MediaType, type Compression} from '../../model/media-types.js';
import {MAX_INDEX_DEPTH, type Limits} from '../../settings.js';
import type {RegistryClient} from './client.js';
import {MAX_MANIFEST_BYTES} from './options.js';
import {formatRegistryRef, manifestReference, type RegistryRef} from './reference.js';

/** Every manifest type a registry may answer with (the Accept header of a manifest GET). */
export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest].join(', ');

/** Content types that name no document type: a server that does not know better (no header, plain JSON, bytes). */
const GENERIC_CONTENT_TYPES = new Set(['', 'application/json', 'application/octet-stream', 'binary/octet-stream', 'text/plain']);

export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

/** A manifest or index by tag or digest, its bytes checked: size cap, digest, and the registry's own digest header. */
export async function fetchManifest(client: RegistryClient, repository: string, reference: string, what: string, expect?: Descriptor): Promise<RawDocument> {
  const doc = await fetchManifestIfAny(client, repository, reference, what, expect, false);
  if (!doc) throw new FerryError('NOT_FOUND', `${what}: not found`);
  return doc;
}

/** fetchManifest, or undefined when the registry has no such manifest (404) and `optional`. */
export async function fetchManifestIfAny(client: RegistryClient, repository: string, reference: string, what: string, expect?: Descriptor, optional = true): Promise<RawDocument | undefined> {
  const res = await client.requestWhole(
    {method: 'GET', target: `/v2/${repository}/manifests/${reference}`, headers: {Accept: MANIFEST_ACCEPT}, scopes: [pullScope(repository)], ok: optional ? [200, 404] : [200], what, followRedirects: true},
    MAX_MANIFEST_BYTES,
    (size) => new FerryError('LIMIT_EXCEEDED', size === undefined ? `${what}: the manifest is over the ${MAX_MANIFEST_BYTES}-byte limit registries keep to` : `${what}: the manifest is ${size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit registries keep to`),
  );
  if (res.status === 404) return undefined;
  const bytes = res.body;
  const digest = sha256Of(bytes);
  if (isDigest(reference) && reference.startsWith('sha256:') && digest !== reference) throw new DigestMismatchError(`${what}: manifest`, reference, digest);
  const claimed = res.headers['docker-content-digest'];
  if (typeof claimed === 'string' && claimed.startsWith('sha256:') && claimed !== digest) throw new DigestMismatchError(`${what}: manifest (the registry's Docker-Content-Digest)`, claimed, digest);
  if (expect && expect.size !== bytes.length) throw new SizeMismatchError(`${what}: manifest ${expect.digest}`, expect.size, bytes.length);
  const parsed = parseJson(bytes, `${what}: manifest`);
  const contentType = String(res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const mediaType = isRecord(parsed) && typeof parsed.mediaType === 'string' ? parsed.mediaType : contentType || expect?.mediaType || '';
  // The registry's Content-Type says what the document is: one that contradicts the bytes (an HTML page,
  // another manifest type) is refused, as containers/image would fail on it. Generic types pass.
  if (!GENERIC_CONTENT_TYPES.has(contentType) && contentType !== mediaType.toLowerCase()) {
    throw new FerryError('REGISTRY', `${what}: the registry served the manifest as "${printable(contentType)}", but its bytes are ${mediaType ? `a "${printable(mediaType)}"` : 'no manifest type'}`);
  }
  if (!isManifestMediaType(mediaType) && !isIndexMediaType(mediaType) && !(expect && artifactKind(expect, parsed))) {
    throw new FerryError('REGISTRY', `${what}: the registry answered a document of media type "${mediaType || contentType}", not a manifest or index`);
  }
  return {bytes, digest, mediaType, parsed};
}

/** A blob the registry holds: read as a stream that resumes with Range when the connection drops (within the run). */
export class RemoteBlob implements Blob {
  constructor(
    readonly descriptor: Descriptor,
    readonly label: string,
    protected readonly client: RegistryClient,
    protected readonly repository: string,
  ) {}

  get origin(): {registry: string; repository: string} {
    return {registry: this.client.registry, repository: this.repository};
  }

  /** Raw bytes from `options.start`, resuming after a broken body; checked by the reader (checked-read.ts). */
  openCompressed(options: OpenOptions = {}): Readable {
    const start = options.start ?? 0;
    const {client, repository, descriptor, label} = this;
    const retries = client.retries;
    async function* bytes(): AsyncGenerator<Buffer> {
      let got = start;
      for (let attempt = 0; ; attempt++) {
        const res = await client.request({
          method: 'GET',
          target: `/v2/${repository}/blobs/${descriptor.digest}`,
          headers: got > 0 ? {Range: `bytes=${got}-`} : {},
          scopes: [pullScope(repository)],
          ok: [200, 206],
          what: label,
          followRedirects: true,
        });
        // A server that ignores Range starts again from 0: skip what we have.
        let skip = got > 0 && res.status === 200 ? got : 0;
        try {
          for await (const chunk of res.body) {
            let piece = chunk as Buffer;
            if (skip > 0) {
              const drop = Math.min(skip, piece.length);
              piece = piece.subarray(drop);
              skip -= drop;
            }
            if (piece.length === 0) continue;
            got += piece.length;
            options.onBytes?.(piece.length);
            yield piece;
          }
          if (res.body.readableAborted || (res.body as {aborted?: boolean}).aborted || res.body.complete === false) throw Object.assign(new Error('connection closed early'), {code: 'ECONNRESET'});
          return;
        } catch (e) {
          if (attempt >= retries || got >= descriptor.size) throw e;
          // The body broke: ask for the rest (containers/image's body_reader does the same).
        }
      }
    }
    return Readable.from(bytes(), {objectMode: false, highWaterMark: 1 << 20});
  }
}

/** A layer the registry holds; its compression comes from its media type, else from its first bytes. */
export class RemoteLayer extends RemoteBlob implements Layer {
  #compression: Compression | undefined;
  constructor(
    descriptor: Descriptor,
    readonly diffId: Digest,
    label: string,
    client: RegistryClient,
    repository: string,
    private readonly limits: Limits,
  ) {
    super(descriptor, label, client, repository);
  }

  get foreign(): boolean {
    return this.descriptor.mediaType.includes('nondistributable') || this.descriptor.mediaType.includes('foreign');
  }

  async compression(): Promise<Compression> {
    if (this.#compression) return this.#compression;
    const declared = compressionOfMediaType(this.descriptor.mediaType);
    if (declared !== undefined) return (this.#compression = declared);
    const head: Buffer[] = [];
    let size = 0;
    for await (const chunk of this.openCompressed()) {
      head.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= SNIFF_BYTES) break;
    }
    return (this.#compression = sniffCompression(Buffer.concat(head)));
  }

  openUncompressed(options: OpenOptions = {}): Readable {
    return openChecked(this, {...options, limits: this.limits});
  }
}

interface Context {
  client: RegistryClient;
  repository: string;
  limits: Limits;
  label: string;
  warnings: string[];
  /** Nodes by digest: a manifest listed twice is fetched once. */
  cache: Map<string, Promise<Node>>;
  limit: ReturnType<typeof pLimit>;
  /** The run's `HOST@DIGEST` → repository map: a push to another repository of this registry mounts these blobs. */
  known?: Map<string, string>;
}

/** Blobs seen in the source repository, so a push to the same registry mounts them rather than uploading them again. */
function remember(ctx: Context, descriptors: readonly Descriptor[]): void {
  for (const d of descriptors) if (!ctx.known?.has(`${ctx.client.host}@${d.digest}`)) ctx.known?.set(`${ctx.client.host}@${d.digest}`, ctx.repository);
}

async function fetchBlobBytes(ctx: Context, d: Descriptor, what: string): Promise<Buffer> {
  const res = await ctx.client.requestWhole({method: 'GET', target: `/v2/${ctx.repository}/blobs/${d.digest}`, scopes: [pullScope(ctx.repository)], ok: [200], what, followRedirects: true}, Math.min(Math.max(d.size, 0), MAX_MANIFEST_BYTES * 4), (size) => new SizeMismatchError(what, d.size, size ?? d.size + 1));
  const bytes = res.body;
  if (bytes.length !== d.size) throw new SizeMismatchError(what, d.size, bytes.length);
  const digest = sha256Of(bytes);
  if (d.digest.startsWith('sha256:') && digest !== d.digest) throw new DigestMismatchError(what, d.digest, digest);
  return bytes;
}

async function readImage(ctx: Context, doc: RawDocument, d: Descriptor, where: string): Promise<Image> {
  const m = doc.parsed;
  if (!isRecord(m) || m.schemaVersion !== 2) throw new FerryError('BAD_JSON', `${where}: not a schema 2 manifest`);
  const configDesc = parseDescriptor(m.config, `${where} config`);
  if (!Array.isArray(m.layers)) throw new FerryError('BAD_JSON', `${where}: the manifest has no layers array`);
  const layerDescs = m.layers.map((l, i) => parseDescriptor(l, `${where} layers[${i}]`));
  const configBytes = await ctx.limit(() => fetchBlobBytes(ctx, configDesc, `${where}: config ${configDesc.digest}`));
  const config = parseConfig(configBytes, configDesc.mediaType, `${where}: config ${configDesc.digest}`);
  const diffIds = config.parsed.rootfs.diff_ids;
  if (diffIds.length !== layerDescs.length) throw new FerryError('BAD_ARCHIVE', `${where}: the manifest lists ${layerDescs.length} layers but its config has ${diffIds.length} diff_ids`);
  remember(ctx, [configDesc, ...layerDescs]);
  const layers: Layer[] = layerDescs.map((ld, i) => new RemoteLayer(ld, diffIds[i]!, `${where}: layer[${i}] ${ld.digest}`, ctx.client, ctx.repository, ctx.limits));
  return {manifest: doc, config, layers, platform: d.platform ?? configPlatform(config.parsed)};
}

function readArtifact(ctx: Context, doc: RawDocument, d: Descriptor, where: string, kind: Artifact['kind']): Artifact {
  const m = doc.parsed as Record<string, unknown>;
  const config = parseDescriptor(m.config, `${where} config`);
  const layers = Array.isArray(m.layers) ? m.layers.map((l, i) => parseDescriptor(l, `${where} layers[${i}]`)) : [];
  remember(ctx, [config, ...layers]);
  const blobs = [config, ...layers].map((bd, i) => new RemoteBlob(bd, `${where}: ${i === 0 ? 'config' : `layer[${i - 1}]`} ${bd.digest}`, ctx.client, ctx.repository));
  const artifact: Artifact = {kind, manifest: doc, blobs, artifactType: typeof m.artifactType === 'string' ? m.artifactType : config.mediaType};
  const referenced = d.annotations?.['vnd.docker.reference.digest'];
  if (isRecord(m.subject)) artifact.subject = parseDescriptor(m.subject, `${where} subject`);
  else if (referenced !== undefined && isDigest(referenced)) artifact.subject = {digest: referenced};
  return artifact;
}

async function readNode(ctx: Context, doc: RawDocument, d: Descriptor, where: string, depth: number): Promise<Node> {
  if (isIndexMediaType(doc.mediaType)) {
    if (depth > MAX_INDEX_DEPTH) throw new FerryError('BAD_ARCHIVE', `${where}: indexes nested deeper than ${MAX_INDEX_DEPTH}`);
    const parsed = doc.parsed;
    if (!isRecord(parsed) || !Array.isArray(parsed.manifests)) throw new FerryError('BAD_JSON', `${where}: the index has no manifests array`);
    const descriptors = parsed.manifests.map((c, i) => parseDescriptor(c, `${where} manifests[${i}]`));
    const children: IndexChild[] = await Promise.all(
      descriptors.map(async (child) => {
        const childWhere = `${ctx.label}@${child.digest}`;
        let target = ctx.cache.get(child.digest);
        if (!target) {
          target = ctx.limit(() => fetchManifest(ctx.client, ctx.repository, child.digest, childWhere, child)).then((childDoc) => readNode(ctx, childDoc, child, childWhere, depth + 1));
          ctx.cache.set(child.digest, target);
        }
        return {descriptor: child, target: await target};
      }),
    );
    return {document: doc, children} satisfies ImageIndex;
  }
  const kind = artifactKind(d, doc.parsed);
  return kind ? readArtifact(ctx, doc, d, where, kind) : readImage(ctx, doc, d, where);
}

/** Manifest digests of a node: the index, its children, the images (what referrers may point at). */
function manifestDigests(node: Node): Digest[] {
  if ('children' in node) return [node.document.digest, ...node.children.flatMap((c) => (c.target ? manifestDigests(c.target) : []))];
  return node.manifest ? [node.manifest.digest] : [];
}

/** cosign's tag-based fallback: `sha256-HEX.sig`, `.att`, `.sbom` beside the image they sign. */
const COSIGN_SUFFIXES = ['sig', 'att', 'sbom'];

/**
 * What refers to `digest`: the OCI 1.1 referrers API (`/v2/NAME/referrers/DIGEST`), else the
 * referrers tag schema (an index tagged `sha256-HEX`), plus cosign's `sha256-HEX.sig|att|sbom` tags
 * (registry 2.8 has no referrers API: only the tags work there). Each becomes an artifact entry;
 * cosign's keep their tag as their name, so a push puts them back under it.
 */
async function referrersOf(ctx: Context, ref: RegistryRef, digest: Digest): Promise<ArchiveEntry[]> {
  const [algorithm, hex] = digest.split(':') as [string, string];
  const found: Descriptor[] = [];
  const what = `${ctx.label}: referrers of ${digest}`;
  const api = await ctx.client.request({method: 'GET', target: `/v2/${ctx.repository}/referrers/${digest}`, headers: {Accept: MediaType.ociIndex}, scopes: [pullScope(ctx.repository)], ok: [200, 400, 404, 405], what, followRedirects: true});
  let listed: unknown;
  if (api.status === 200 && String(api.headers['content-type'] ?? '').startsWith(MediaType.ociIndex)) {
    const chunks: Buffer[] = [];
    for await (const chunk of api.body) chunks.push(chunk as Buffer);
    listed = parseJson(Buffer.concat(chunks), what);
  } else {
    api.body.resume();
    listed = (await fetchManifestIfAny(ctx.client, ctx.repository, `${algorithm}-${hex}`, `${what} (tag ${algorithm}-${hex})`))?.parsed;
  }
  if (isRecord(listed) && Array.isArray(listed.manifests)) listed.manifests.forEach((m, i) => found.push(parseDescriptor(m, `${what} manifests[${i}]`)));
  const entries: ArchiveEntry[] = [];
  for (const d of found) {
    const where = `${ctx.label}@${d.digest}`;
    const doc = await fetchManifest(ctx.client, ctx.repository, d.digest, where, d);
    const node = await readNode(ctx, doc, d, where, 1);
    entries.push({names: [], root: node, descriptor: {mediaType: doc.mediaType, digest: doc.digest, size: doc.bytes.length}});
  }
  for (const suffix of COSIGN_SUFFIXES) {
    const tag = `${algorithm}-${hex}.${suffix}`;
    const doc = await fetchManifestIfAny(ctx.client, ctx.repository, tag, `${ctx.label}: ${tag}`);
    if (!doc || entries.some((e) => e.descriptor?.digest === doc.digest)) continue;
    // The tag rides on the descriptor as its ref.name: archives write an artifact's descriptor as it
    // came, so the name survives pull → archive → push (which tags it again) and marks its subject.
    const descriptor: Descriptor = {mediaType: doc.mediaType, digest: doc.digest, size: doc.bytes.length, annotations: {[ANNOTATION_REF_NAME]: tag}};
    const kind = artifactKind(descriptor, doc.parsed) ?? 'signature';
    const artifact = readArtifact(ctx, doc, descriptor, `${ctx.label}: ${tag}`, kind);
    artifact.subject ??= {digest};
    // The tag goes in ref.name as well: an archive keeps an artifact's descriptor as it came, and a
    // push of that archive finds the tag there (without it the signature would land untagged).
    entries.push({names: [`${ref.registry}/${ref.repository}:${tag}`], root: artifact, descriptor: {...descriptor, annotations: {[ANNOTATION_REF_NAME]: tag}}});
  }
  return entries;
}

/**
 * Reads an image (or index) from a registry: every manifest and config now (small, checked against
 * their digests), layers as remote blobs read on demand. The entry is named by the reference when it
 * has a tag. With `referrers`, signatures, SBOMs and attestations that refer to any of its manifests
 * come along as artifact entries.
 */
export async function readRegistry(ref: RegistryRef, client: RegistryClient, options: {limits: Limits; jobs: number; referrers?: boolean; knownBlobs?: Map<string, string>}): Promise<ReadResult> {
  const label = formatRegistryRef(ref);
  const doc = await fetchManifest(client, ref.repository, manifestReference(ref), label);
  const ctx: Context = {client, repository: ref.repository, limits: options.limits, label, warnings: [], cache: new Map(), limit: pLimit(Math.max(1, options.jobs)), ...(options.knownBlobs ? {known: options.knownBlobs} : {})};
  const descriptor: Descriptor = {mediaType: doc.mediaType, digest: doc.digest, size: doc.bytes.length};
  const root = await readNode(ctx, doc, descriptor, label, 0);
  // A pinned reference (name:tag@digest) keeps its tag as the image's name.
  const names = ref.tag !== undefined ? [`${ref.registry}/${ref.repository}:${ref.tag}`] : [];
  const entries: ArchiveEntry[] = [{names, root, descriptor}];
  if (options.referrers) {
    for (const digest of new Set(manifestDigests(root))) {
      for (const found of await referrersOf(ctx, ref, digest)) if (!entries.some((e) => e.descriptor?.digest === found.descriptor?.digest)) entries.push(found);
    }
  }
  return {entries, warnings: ctx.warnings, problems: []};
}
