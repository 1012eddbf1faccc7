import {createHash} from 'node:crypto';
import {mkdir, readdir, readFile, rm} from 'node:fs/promises';
import path from 'node:path';
import type {Readable} from 'node:stream';
import pLimit from 'p-limit';
import {DigestMismatchError, FerryError} from '../../errors.js';
import {descriptorJson, planLayout, type FormatWriteOptions, type FormatWriteResult, type ManifestFormat, type UploadStats} from '../../formats/layout/write.js';
import {memberBytes, memberSize, type Member} from '../../io/fs/members.js';
import {isRecord, type Descriptor} from '../../model/descriptor.js';
import {sha256Of, type Digest} from '../../model/digest.js';
import {MediaType} from '../../model/media-types.js';
import {tryParseReference} from '../../model/reference.js';
import type {ArchiveEntry} from '../../model/image.js';
import {isArtifact} from '../../model/image.js';
import type {ApiResponse, RegistryClient} from './client.js';
import {DEFAULT_JOBS, type RegistryOptions} from './options.js';
import {formatRegistryRef, type RegistryRef} from './reference.js';
import {fetchManifestIfAny} from './source.js';
import {replaceSmallFile} from '../../io/fs/atomic.js';

/**
 * Pushing to a registry the way go-containerregistry's remote.Write and regclient do it, with what
 * none of them does: every blob is HEADed first (what exists is skipped), mounted from another
 * repository of the same registry when this run saw it there, else uploaded — monolithically by
 * default, in PATCH chunks with Content-Range when asked (--chunk-size), when the registry refuses a
 * body that big (413), or when the blob is big enough that a restart should not start it over: each
 * chunk's session URL is journaled (stateDir), and a rerun asks the registry for the committed offset
 * (GET on the session → Range) and sends the rest. Manifests go up children first, each by digest,
 * then the root under its tag: nothing ever names a manifest the registry lacks.
 */

/** Blobs at least this big go up in chunks by default, so a restart continues them. */
export const RESUMABLE_BLOB_BYTES = 256 << 20;
const DEFAULT_CHUNK = 64 << 20;
/** Chunks refused as too big (413) are halved down to this, and no further. */
const MIN_REFUSED_CHUNK = 1 << 20;

export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

export type PushStats = UploadStats;

interface Session {
  location: string;
  offset: number;
  /** OCI-Chunk-Min-Length, as the registry said when the session started or was asked about. */
  minChunk?: number;
}

/** OCI-Chunk-Min-Length of an upload answer, when the registry names one. */
function chunkMinimum(res: ApiResponse): {minChunk?: number} {
  const value = Number(res.headers['oci-chunk-min-length']);
  return Number.isSafeInteger(value) && value > 0 ? {minChunk: value} : {};
}

/** A journal of one blob's upload session, so a killed push continues where the registry has it. */
class Journal {
  readonly #file: string | undefined;
  constructor(stateDir: string | undefined, key: string) {
    this.#file = stateDir ? path.join(stateDir, 'push', `${createHash('sha256').update(key).digest('hex')}.json`) : undefined;
  }

  async read(): Promise<Session | undefined> {
    if (!this.#file) return undefined;
    try {
      const parsed = JSON.parse(await readFile(this.#file, 'utf8')) as Partial<Session>;
      return typeof parsed.location === 'string' && typeof parsed.offset === 'number' ? {location: parsed.location, offset: parsed.offset} : undefined;
    } catch {
      return undefined;
    }
  }

  async write(session: Session): Promise<void> {
    if (!this.#file) return;
    await mkdir(path.dirname(this.#file), {recursive: true});
    await replaceSmallFile(this.#file, JSON.stringify(session));
  }

  async clear(): Promise<void> {
    if (!this.#file) return;
    await rm(this.#file, {force: true});
    // A run killed between writing its copy (`NAME.ferry-PID.tmp`) and renaming it left that copy: gone with the session.
    const dir = path.dirname(this.#file);
    const copy = `${path.basename(this.#file)}.`;
    for (const name of await readdir(dir).catch(() => [] as string[])) if (name.startsWith(copy)) await rm(path.join(dir, name), {force: true});
  }
}

/**
 * "0-N" (distribution's inclusive committed range) → the next offset. An empty session says "0-0"
 * too (distribution, and the registries that copy it), so asking a session where it stands reads
 * "0-0" as nothing committed (`status`): a cut never stops after exactly one byte, while taking it
 * for one byte would skip the blob's first byte. After an accepted chunk it is that one byte.
 */
function committedOffset(res: ApiResponse, status = false): number | undefined {
  const range = res.headers.range;
  const m = typeof range === 'string' ? /^(?:bytes=)?0-(\d+)$/.exec(range.trim()) : null;
  if (!m) return undefined;
  return status && m[1] === '0' ? 0 : Number(m[1]) + 1;
}

export interface PushOptions extends Pick<FormatWriteOptions, 'onBytes' | 'signal' | 'omitBlobs' | 'trackBlob'> {
  registry: RegistryOptions;
  manifestFormat?: ManifestFormat;
}

export class Pusher {
  readonly stats: PushStats = {uploadedBytes: 0, skippedBytes: 0, uploaded: 0, skipped: 0, mounted: 0, retries: 0};

  constructor(
    private readonly client: RegistryClient,
    private readonly ref: RegistryRef,
    private readonly options: PushOptions,
  ) {}

  get #repo(): string {
    return this.ref.repository;
  }

  /** The registry's session URL, refused when it points at another host (hostile or misconfigured). */
  async #location(res: ApiResponse, what: string): Promise<string> {
    const location = res.headers.location;
    res.body.resume();
    if (!location) throw new FerryError('REGISTRY', `${what}: the registry gave no upload location`);
    const url = new URL(location, res.url);
    const base = await this.client.base();
    if (url.host !== base.host || url.protocol !== base.protocol) throw new FerryError('REGISTRY', `${what}: the registry sends the upload to another host (${url.protocol}//${url.host}); refused`);
    return url.toString();
  }

  async #startSession(what: string): Promise<Session> {
    const res = await this.client.request({method: 'POST', target: `/v2/${this.#repo}/blobs/uploads/`, headers: {'Content-Length': '0'}, scopes: [pushScope(this.#repo)], ok: [202], what});
    return {location: await this.#location(res, what), offset: 0, ...chunkMinimum(res)};
  }

  /** Where a journaled session stands, or undefined when the registry no longer knows it. */
  async #resumeSession(session: Session, what: string): Promise<Session | undefined> {
    try {
      const res = await this.client.request({method: 'GET', target: new URL(session.location), scopes: [pushScope(this.#repo)], ok: [204, 200], what, retry: false});
      const offset = committedOffset(res, true);
      res.body.resume();
      if (offset === undefined) return res.status === 204 && res.headers.range === undefined ? undefined : undefined;
      return {location: await this.#location(res, what).catch(() => session.location), offset, ...chunkMinimum(res)};
    } catch {
      return undefined;
    }
  }

  /** One blob: exists (HEAD), mounted, or uploaded (resumed from a journaled session when there is one). */
  async ensureBlob(digest: Digest, member: Member): Promise<void> {
    const size = memberSize(member);
    const what = `${formatRegistryRef(this.ref)}: blob ${digest}`;
    const head = await this.client.request({method: 'HEAD', target: `/v2/${this.#repo}/blobs/${digest}`, scopes: [pushScope(this.#repo)], ok: [200, 404], what, followRedirects: true});
    head.body.resume();
    if (head.status === 200) {
      this.stats.skipped++;
      this.stats.skippedBytes += size;
      this.options.onBytes?.(size);
      return;
    }
    const from = this.options.registry.knownBlobs?.get(`${this.client.host}@${digest}`);
    let session: Session | undefined;
    if (from && from !== this.#repo) {
      const res = await this.client.request({method: 'POST', target: `/v2/${this.#repo}/blobs/uploads/?mount=${digest}&from=${encodeURIComponent(from)}`, headers: {'Content-Length': '0'}, scopes: [pushScope(this.#repo), `repository:${from}:pull`], ok: [201, 202], what});
      if (res.status === 201) {
        res.body.resume();
        this.stats.mounted++;
        this.stats.skippedBytes += size;
        this.options.onBytes?.(size);
        return;
      }
      session = {location: await this.#location(res, what), offset: 0, ...chunkMinimum(res)};
    }
    const journal = new Journal(this.options.registry.stateDir, `${this.client.host}/${this.#repo}@${digest}`);
    const journaled = await journal.read();
    if (journaled) session = await this.#resumeSession(journaled, what);
    session ??= await this.#startSession(what);
    const forced = this.options.registry.chunkSize ?? 0;
    const chunked = forced > 0 || size >= RESUMABLE_BLOB_BYTES || session.offset > 0;
    let chunk = forced > 0 ? forced : DEFAULT_CHUNK;
    // The bytes as they go out: a progress line of its own for this blob.
    const line = this.options.trackBlob?.(digest.slice(0, 19), size);
    const sent = (body: Readable): Readable => (line ? body.on('data', (c: Buffer) => line.advance(c.length)) : body);
    try {
      if (!chunked) {
        const outcome = await this.#putWhole(session, digest, member, size, what, sent);
        if (outcome === 'done') {
          await journal.clear();
          return;
        }
        if (outcome === 'too-large') {
          // 413: the registry wants it in pieces smaller than the whole.
          chunk = Math.min(chunk, Math.max(MIN_REFUSED_CHUNK, Math.floor(size / 2)));
          session = await this.#startSession(what);
        } else {
          // The connection broke mid-body, and the registry may have kept what arrived: the same PUT
          // again would add the whole blob after it. Ask where the session stands and send the rest
          // in chunks, or start a new session when the registry cannot say.
          this.stats.retries++;
          this.options.registry.onRetry?.(`${what}: the upload broke off (${outcome.message}); asking the registry where it stands`);
          session = (await this.#resumeSession(session, what)) ?? (await this.#startSession(what));
        }
      }
      await this.#putChunks(session, digest, member, size, what, journal, chunk, sent);
      await journal.clear();
    } finally {
      line?.done();
    }
  }

  /** A monolithic PUT: done, refused as too big (413), or broken off mid-body (the error, to say why). */
  async #putWhole(session: Session, digest: Digest, member: Member, size: number, what: string, sent: (body: Readable) => Readable): Promise<'done' | 'too-large' | FerryError> {
    const url = new URL(session.location);
    url.searchParams.set('digest', digest);
    let res: ApiResponse;
    try {
      res = await this.client.request({
        method: 'PUT',
        target: url,
        headers: {'Content-Type': 'application/octet-stream', 'Content-Length': String(size)},
        body: () => sent(memberBytes(member, 0, size)),
        scopes: [pushScope(this.#repo)],
        ok: [201, 413],
        what,
        retry: 'status',
      });
    } catch (e) {
      if (e instanceof FerryError && e.code === 'IO') return e;
      throw e;
    }
    res.body.resume();
    if (res.status === 413) return 'too-large';
    this.#uploaded(size, res, digest, what);
    return 'done';
  }

  #uploaded(size: number, res: ApiResponse, digest: Digest, what: string): void {
    const claimed = res.headers['docker-content-digest'];
    if (typeof claimed === 'string' && claimed !== digest) throw new DigestMismatchError(`${what} (the registry's digest of what it received)`, digest, claimed);
    this.stats.uploaded++;
    this.stats.uploadedBytes += size;
    this.options.onBytes?.(size);
  }

  /**
   * PATCH chunks (Content-Range), honouring OCI-Chunk-Min-Length, journaling the session after each;
   * a chunk the registry refuses as too big (413) is halved. A connection that drops mid-chunk asks
   * the registry where the session stands and continues from there, or starts over when it cannot say.
   */
  async #putChunks(start: Session, digest: Digest, member: Member, size: number, what: string, journal: Journal, chunkSize: number, sent: (body: Readable) => Readable): Promise<void> {
    let session = start;
    // A registry's minimum comes with the session (POST) or its status (GET), before the first chunk.
    let chunk = Math.max(chunkSize, start.minChunk ?? 0);
    let failures = 0;
    const retries = this.options.registry.retries ?? 5;
    while (session.offset < size) {
      const end = Math.min(size, session.offset + chunk);
      let res: ApiResponse;
      try {
        res = await this.client.request({
          method: 'PATCH',
          target: new URL(session.location),
          headers: {'Content-Type': 'application/octet-stream', 'Content-Length': String(end - session.offset), 'Content-Range': `${session.offset}-${end - 1}`},
          body: () => sent(memberBytes(member, session.offset, end)),
          scopes: [pushScope(this.#repo)],
          ok: [202, 413, 416],
          what,
          retry: 'status',
        });
      } catch (e) {
        if (++failures > retries || (e instanceof FerryError && e.code !== 'IO' && e.code !== 'REGISTRY')) throw e;
        this.stats.retries++;
        this.options.registry.onRetry?.(`${what}: the upload broke at ${session.offset} of ${size} bytes; asking the registry where it stands`);
        session = (await this.#resumeSession(session, what)) ?? (await this.#startSession(what));
        continue;
      }
      const minimum = Number(res.headers['oci-chunk-min-length']);
      if (res.status === 413) {
        res.body.resume();
        // Half of what was refused (the last chunk of a blob may be much smaller than `chunk`).
        const refused = end - session.offset;
        if (refused <= MIN_REFUSED_CHUNK) throw new FerryError('REGISTRY', `${what}: the registry refuses even ${refused}-byte chunks (413)`);
        chunk = Math.max(MIN_REFUSED_CHUNK, Math.floor(refused / 2));
        continue;
      }
      if (res.status === 416) {
        res.body.resume();
        if (++failures > retries) throw new FerryError('REGISTRY', `${what}: the registry and ferry disagree on the upload offset`);
        session = (await this.#resumeSession(session, what)) ?? (await this.#startSession(what));
        continue;
      }
      const next = committedOffset(res) ?? end;
      this.stats.uploadedBytes += next - session.offset;
      this.options.onBytes?.(next - session.offset);
      session = {location: await this.#location(res, what), offset: next};
      if (Number.isFinite(minimum) && minimum > chunk) chunk = minimum;
      await journal.write(session);
    }
    const url = new URL(session.location);
    url.searchParams.set('digest', digest);
    const done = await this.client.request({method: 'PUT', target: url, headers: {'Content-Length': '0'}, scopes: [pushScope(this.#repo)], ok: [201], what});
    done.body.resume();
    const claimed = done.headers['docker-content-digest'];
    if (typeof claimed === 'string' && claimed !== digest) throw new DigestMismatchError(`${what} (the registry's digest of what it received)`, digest, claimed);
    this.stats.uploaded++;
  }

  /** A manifest or index by digest, or under a tag; its bytes as given. True when the registry took its subject (OCI-Subject). */
  async putManifest(reference: string, mediaType: string, bytes: Buffer, digest: Digest): Promise<boolean> {
    const what = `${this.ref.registry}/${this.#repo}:${reference}`;
    const res = await this.client.request({method: 'PUT', target: `/v2/${this.#repo}/manifests/${reference}`, headers: {'Content-Type': mediaType, 'Content-Length': String(bytes.length)}, body: bytes, scopes: [pushScope(this.#repo)], ok: [201], what});
    res.body.resume();
    const claimed = res.headers['docker-content-digest'];
    if (typeof claimed === 'string' && claimed !== digest) throw new DigestMismatchError(`${what} (the registry's digest of the manifest)`, digest, claimed);
    return res.headers['oci-subject'] !== undefined;
  }

  /**
   * A registry without the referrers API finds referrers through the tag schema: an index tagged
   * `sha256-HEX` (the subject's digest) listing them. The descriptor is added to what is there.
   */
  async addToReferrersTag(subject: Digest, referrer: Descriptor): Promise<void> {
    const tag = subject.replace(':', '-');
    const found = await fetchManifestIfAny(this.client, this.#repo, tag, `${formatRegistryRef(this.ref)}: referrers tag ${tag}`);
    const listed = found && isRecord(found.parsed) && Array.isArray(found.parsed.manifests) ? (found.parsed.manifests as Array<Record<string, unknown>>) : [];
    if (listed.some((d) => d.digest === referrer.digest)) return;
    const bytes = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [...listed, descriptorJson(referrer)]}));
    await this.putManifest(tag, MediaType.ociIndex, bytes, sha256Of(bytes));
  }
}

export interface PushResult extends FormatWriteResult {
  /** The digest the reference now names. */
  digest: Digest;
  uploads: UploadStats;
}

/** The tag an artifact entry's name gives it in the target repository (cosign's `sha256-HEX.sig`, a chart version). */
function artifactTag(name: string): string | undefined {
  const ref = tryParseReference(name);
  if (ref?.tag !== undefined) return ref.tag;
  return /^[\w][\w.-]{0,127}$/.test(name) ? name : undefined;
}

/**
 * Pushes one image or index to `ref`, with the artifacts that travel with it (signatures,
 * attestations, referrers): blobs first (HEAD, mount or upload, several at once), then every manifest
 * by digest, children first, then the tag. A named artifact gets its tag back; one with a subject is
 * listed in the referrers tag when the registry has no referrers API.
 */
export async function pushEntries(entries: readonly ArchiveEntry[], ref: RegistryRef, client: RegistryClient, options: PushOptions): Promise<PushResult> {
  const plan = await planLayout(entries, {...(options.manifestFormat ? {manifestFormat: options.manifestFormat} : {}), ...(options.omitBlobs ? {omitBlobs: options.omitBlobs} : {})});
  const images = plan.roots.filter((r) => !isArtifact(r.entry.root));
  if (images.length !== 1) throw new FerryError('UNSUPPORTED', `${ref.text}: a reference names one image or index, but ${images.length} were given`);
  const pusher = new Pusher(client, ref, options);
  const documents = new Set(plan.documents.map((d) => d.digest));
  const limit = pLimit(Math.max(1, options.registry.jobs ?? DEFAULT_JOBS));
  const known = options.registry.knownBlobs;
  await Promise.all(
    [...plan.blobs].filter(([digest]) => !documents.has(digest)).map(([digest, member]) =>
      limit(async () => {
        if (options.signal?.aborted) throw new FerryError('INTERRUPTED', `${ref.text}: push aborted`);
        await pusher.ensureBlob(digest, member);
        known?.set(`${client.host}@${digest}`, ref.repository);
      }),
    ),
  ).catch((e: unknown) => {
    limit.clearQueue();
    throw e;
  });
  const bytesOf = (digest: Digest): Buffer => {
    const member = plan.blobs.get(digest);
    if (member?.type !== 'file') throw new FerryError('IO', `${digest}: internal: a manifest without its bytes`);
    return member.bytes;
  };
  const subjects = new Map<Digest, Digest>();
  for (const {entry, descriptor} of plan.roots) {
    const root = entry.root;
    // Only a manifest that names its subject itself (OCI 1.1) is a referrer; cosign's tags are found by name.
    if (isArtifact(root) && root.subject !== undefined && isRecord(root.manifest.parsed) && isRecord(root.manifest.parsed.subject)) subjects.set(descriptor.digest, root.subject.digest);
  }
  for (const {digest, mediaType} of plan.documents) {
    const tookSubject = await pusher.putManifest(digest, mediaType, bytesOf(digest), digest);
    const subject = subjects.get(digest);
    if (subject !== undefined && !tookSubject) {
      const root = plan.roots.find((r) => r.descriptor.digest === digest)!;
      const parsed = (root.entry.root as {manifest: {parsed: Record<string, unknown>}}).manifest.parsed;
      const config = isRecord(parsed.config) ? parsed.config : {};
      const artifactType = typeof parsed.artifactType === 'string' ? parsed.artifactType : typeof config.mediaType === 'string' ? config.mediaType : undefined;
      const annotations = isRecord(parsed.annotations) ? (parsed.annotations as Record<string, string>) : undefined;
      await pusher.addToReferrersTag(subject, {mediaType, digest, size: bytesOf(digest).length, ...(artifactType ? {artifactType} : {}), ...(annotations ? {annotations} : {})});
    }
  }
  for (const {entry, descriptor} of plan.roots) {
    if (!isArtifact(entry.root)) continue;
    for (const tag of new Set(entry.names.map(artifactTag).filter((t): t is string => t !== undefined))) await pusher.putManifest(tag, descriptor.mediaType, bytesOf(descriptor.digest), descriptor.digest);
  }
  const root = images[0]!.descriptor;
  if (ref.tag !== undefined && ref.digest === undefined) {
    await pusher.putManifest(ref.tag, root.mediaType, bytesOf(root.digest), root.digest);
  } else if (ref.digest !== undefined && ref.digest !== root.digest) {
    throw new FerryError('UNSUPPORTED', `${ref.text}: the pushed manifest's digest is ${root.digest}, not the one the reference names`);
  }
  pusher.stats.retries += client.stats.retries;
  return {images: plan.images, blobs: plan.blobs.size, bytes: pusher.stats.uploadedBytes, rewritten: plan.rewritten, digest: root.digest, uploads: pusher.stats};
}
