import http, {type IncomingMessage, type ServerResponse} from 'node:http';
import https from 'node:https';
import {readFile} from 'node:fs/promises';
import type {AddressInfo} from 'node:net';
import {pipeline} from 'node:stream/promises';
import {FerryError, ioError, UsageError} from '../errors.js';
import {memberBytes, memberSize, type Member} from '../io/fs/members.js';
import {isArtifact, type Archive, type ArchiveEntry} from '../model/image.js';
import {MediaType} from '../model/media-types.js';
import {tryParseReference, withDefaultTag} from '../model/reference.js';
import {resolveSettings, type SettingsInput} from '../settings.js';
import {openArchive, planStore} from '../transports/table.js';

/**
 * `ferry serve`: a read-only registry (the pull side of the OCI distribution API) over archives,
 * layouts and bundles. Blobs are streamed by offset straight from the files (a layer stored
 * uncompressed is served as it is; `Range` is honoured); manifests and indexes are the bytes an OCI
 * layout of the same images holds, so the digests are the archive's own (a legacy docker-archive's
 * generated manifests are deterministic: the same across restarts). Every write is refused with the
 * API's UNSUPPORTED error.
 */

export interface ServeOptions {
  /** `HOST:PORT` (default 127.0.0.1:5000; port 0 picks a free one). Binding beyond loopback is the caller's explicit choice. */
  listen?: string;
  /** PEM files: serve HTTPS. */
  tls?: {cert: string; key: string};
  settings?: SettingsInput;
  stdin?: NodeJS.ReadableStream;
  /** One line per request that failed (the CLI prints it as a note). */
  onError?: (message: string) => void;
}

export interface ServedRegistry {
  /** `http://127.0.0.1:5000` */
  url: string;
  /** Repositories and their tags. */
  repositories: Record<string, string[]>;
  close(): Promise<void>;
}

interface Store {
  blobs: Map<string, Member>;
  /** Manifests and indexes: digest → media type. */
  documents: Map<string, string>;
  /** repository → tag → manifest digest. */
  tags: Map<string, Map<string, string>>;
  /** subject digest → referrer descriptors (OCI 1.1 artifacts with a subject). */
  referrers: Map<string, Array<Record<string, unknown>>>;
}

/** `HOST:PORT`, `[::1]:PORT` or `:PORT`. */
export function parseListen(text: string): {host: string; port: number} {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new UsageError(`--listen "${text}": expected HOST:PORT, e.g. 127.0.0.1:5000`);
  return {host: m[1] ?? (m[2] || '127.0.0.1'), port};
}

/** Where an image named `name` is served: its repository path and tag (the registry part dropped). */
function servedAs(name: string): {repository: string; tag: string} | undefined {
  const ref = tryParseReference(name);
  if (!ref || ref.digest !== undefined) return undefined;
  const tagged = withDefaultTag(ref);
  return {repository: tagged.path, tag: tagged.tag!};
}

async function buildStore(entries: readonly ArchiveEntry[], store: Store, onNote: (m: string) => void): Promise<void> {
  const plan = await planStore(entries);
  for (const [digest, member] of plan.blobs) if (!store.blobs.has(digest)) store.blobs.set(digest, member);
  for (const doc of plan.documents) store.documents.set(doc.digest, doc.mediaType);
  for (const {entry, descriptor} of plan.roots) {
    if (isArtifact(entry.root)) {
      const subject = entry.root.subject?.digest;
      if (subject !== undefined) {
        const list = store.referrers.get(subject) ?? [];
        list.push({mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size, artifactType: entry.root.artifactType});
        store.referrers.set(subject, list);
      }
    }
    for (const name of entry.names) {
      const at = servedAs(name);
      if (!at) {
        if (!isArtifact(entry.root)) onNote(`"${name}" is not an image reference: served by digest only`);
        continue;
      }
      const tags = store.tags.get(at.repository) ?? new Map<string, string>();
      if (!tags.has(at.tag)) tags.set(at.tag, descriptor.digest);
      store.tags.set(at.repository, tags);
    }
  }
}

function apiError(res: ServerResponse, status: number, code: string, message: string, head: boolean): void {
  const body = Buffer.from(JSON.stringify({errors: [{code, message}]}));
  res.writeHead(status, {'Content-Type': 'application/json', 'Content-Length': body.length});
  res.end(head ? undefined : body);
}

function json(res: ServerResponse, value: unknown, head: boolean, headers: Record<string, string> = {}): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(200, {'Content-Type': 'application/json', 'Content-Length': body.length, ...headers});
  res.end(head ? undefined : body);
}

/** `bytes=A-B`, `bytes=A-`, `bytes=-N` → [start, end) within size; null when unsatisfiable; undefined when absent. */
function parseRange(header: string | undefined, size: number): [number, number] | null | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const n = Number(m[2]);
    return n === 0 ? null : [Math.max(0, size - n), size];
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1);
  return start >= size || end <= start ? null : [start, end];
}

async function handle(store: Store, req: IncomingMessage, res: ServerResponse, onError: (m: string) => void): Promise<void> {
  const method = req.method ?? 'GET';
  const head = method === 'HEAD';
  const url = new URL(req.url ?? '/', 'http://ferry');
  res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
  if (method !== 'GET' && method !== 'HEAD') return apiError(res, 405, 'UNSUPPORTED', 'ferry serve is read-only: pushes, deletes and uploads are not accepted', head);
  if (url.pathname === '/v2/' || url.pathname === '/v2') return json(res, {}, head);
  if (url.pathname === '/v2/_catalog') {
    const all = [...store.tags.keys()].sort();
    const last = url.searchParams.get('last');
    const n = Number(url.searchParams.get('n') ?? all.length) || all.length;
    const from = last ? all.findIndex((r) => r > last) : 0;
    const page = from < 0 ? [] : all.slice(from, from + n);
    const more = from >= 0 && from + n < all.length;
    return json(res, {repositories: page}, head, more ? {Link: `</v2/_catalog?n=${n}&last=${encodeURIComponent(page.at(-1)!)}>; rel="next"`} : {});
  }
  const m = /^\/v2\/(.+)\/(manifests|blobs|tags|referrers)\/(.+)$/.exec(url.pathname);
  if (!m) return apiError(res, 404, 'NOT_FOUND', `${url.pathname}: not an endpoint of the registry API`, head);
  const [, repository, kind, reference] = m as unknown as [string, string, string, string];
  const tags = store.tags.get(repository);
  if (kind === 'tags') {
    if (reference !== 'list' || !tags) return apiError(res, 404, 'NAME_UNKNOWN', `repository ${repository} is not served`, head);
    return json(res, {name: repository, tags: [...tags.keys()].sort()}, head);
  }
  if (!tags) return apiError(res, 404, 'NAME_UNKNOWN', `repository ${repository} is not served`, head);
  if (kind === 'referrers') {
    const manifests = store.referrers.get(reference) ?? [];
    return json(res, {schemaVersion: 2, mediaType: MediaType.ociIndex, manifests}, head, {'Content-Type': MediaType.ociIndex});
  }
  if (kind === 'manifests') {
    const digest = reference.includes(':') ? reference : tags.get(reference);
    const mediaType = digest === undefined ? undefined : store.documents.get(digest);
    const member = digest === undefined ? undefined : store.blobs.get(digest);
    if (!digest || !mediaType || member?.type !== 'file') return apiError(res, 404, 'MANIFEST_UNKNOWN', `manifest ${reference} is not served in ${repository}`, head);
    res.writeHead(200, {'Content-Type': mediaType, 'Content-Length': member.bytes.length, 'Docker-Content-Digest': digest});
    res.end(head ? undefined : member.bytes);
    return;
  }
  const member = store.blobs.get(reference);
  if (!member) return apiError(res, 404, 'BLOB_UNKNOWN', `blob ${reference} is not served`, head);
  const size = memberSize(member);
  const range = parseRange(req.headers.range, size);
  if (range === null) {
    res.writeHead(416, {'Content-Range': `bytes */${size}`});
    res.end();
    return;
  }
  const [start, end] = range ?? [0, size];
  res.writeHead(range ? 206 : 200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': end - start,
    'Accept-Ranges': 'bytes',
    'Docker-Content-Digest': reference,
    ...(range ? {'Content-Range': `bytes ${start}-${end - 1}/${size}`} : {}),
  });
  if (head) {
    res.end();
    return;
  }
  try {
    await pipeline(memberBytes(member, start, end), res);
  } catch (e) {
    onError(`GET ${url.pathname}: ${(e as Error).message}`);
    res.destroy();
  }
}

/**
 * Opens the sources and serves them until closed. Repositories are the images' names without their
 * registry (docker.io/library/alpine:3.20 is `library/alpine:3.20`); every manifest and blob is also
 * reachable by digest in any served repository.
 */
export async function serveArchives(sources: readonly string[], options: ServeOptions = {}): Promise<ServedRegistry> {
  if (sources.length === 0) throw new UsageError('name at least one archive, layout or bundle to serve');
  const settings = resolveSettings(options.settings);
  const {host, port} = parseListen(options.listen ?? '127.0.0.1:5000');
  const onError = options.onError ?? ((): void => {});
  const archives: Archive[] = [];
  const store: Store = {blobs: new Map(), documents: new Map(), tags: new Map(), referrers: new Map()};
  try {
    for (const source of sources) {
      const archive = await openArchive(source, {settings, ...(options.stdin ? {stdin: options.stdin} : {})});
      archives.push(archive);
      for (const w of archive.warnings) onError(`warning: ${w}`);
      await buildStore(archive.entries, store, onError);
    }
  } catch (e) {
    for (const archive of archives) await archive.close();
    throw e;
  }
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(store, req, res, onError).catch((e: unknown) => {
      onError(`${req.method} ${req.url}: ${(e as Error).message}`);
      if (!res.headersSent) apiError(res, 500, 'UNKNOWN', 'internal error', false);
      else res.destroy();
    });
  };
  let server: http.Server | https.Server;
  if (options.tls) {
    const [cert, key] = await Promise.all([readFile(options.tls.cert), readFile(options.tls.key)]).catch((e: unknown) => {
      throw ioError(e, `${options.tls!.cert}, ${options.tls!.key}`);
    });
    server = https.createServer({cert, key}, listener);
  } else server = http.createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' ? new FerryError('IO', `--listen ${host}:${port}: the address is in use`) : ioError(e, `${host}:${port}`)));
    server.listen(port, host, () => resolve());
  }).catch(async (e: unknown) => {
    for (const archive of archives) await archive.close();
    throw e;
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const repositories: Record<string, string[]> = {};
  for (const [repository, tags] of [...store.tags].sort(([a], [b]) => (a < b ? -1 : 1))) repositories[repository] = [...tags.keys()].sort();
  return {
    url: `${options.tls ? 'https' : 'http'}://${shown}:${address.port}`,
    repositories,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      for (const archive of archives) await archive.close();
    },
  };
}
