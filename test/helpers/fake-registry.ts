import {createHash, randomBytes, randomUUID, timingSafeEqual, type Hash} from 'node:crypto';
import {createReadStream, mkdtempSync, readFileSync, rmSync} from 'node:fs';
import {mkdir, open, rename, truncate, unlink, writeFile} from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type {AddressInfo} from 'node:net';
import path from 'node:path';
import {makeTestCertificates} from './tls-certs.js';

/**
 * A fault-injecting fake of the OCI distribution API, in process, on 127.0.0.1. It implements what a
 * client needs (ping, manifests, blobs with Range, chunked/streamed/monolithic uploads, mounts, tags
 * and catalog with pagination, referrers) and a set of bounded switches that make it misbehave on
 * purpose. Blobs and uploads live in temp files: a test may push hundreds of MB. It never connects
 * anywhere; every loop it drives is bounded by a count.
 */

export const MANIFEST_MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

/** 4 MiB: what distribution (and the OCI spec's "at least") accept for one manifest. */
export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Matches a request: all given fields must match. `path` is tested against pathname + query. */
export interface RequestMatch {
  path?: RegExp;
  method?: string;
}

export interface StatusBurst extends RequestMatch {
  /** How many matching requests get the status; counts down, the switch clears itself at 0. */
  count: number;
  /** Retry-After value: seconds (capped at 60) or a string sent verbatim (an HTTP-date). */
  retryAfter?: number | string;
}

export interface ByteCut {
  /** Cut after this many body bytes (the bytes before the cut are delivered or committed). */
  afterBytes: number;
  /** How many requests to cut (default 1); the switch clears itself at 0. */
  count?: number;
  /** Which requests (default: all blob bodies; for downloads also manifests). */
  path?: RegExp;
}

export type ManifestFaultKind = 'oversize' | 'wrong-content-type' | 'garbage-json';

export interface ManifestFault {
  kind: ManifestFaultKind;
  /** Only references (tag or digest) matching this; default all. */
  reference?: RegExp;
  /** How many responses (default unlimited until cleared). */
  count?: number;
}

export interface RedirectLoop extends RequestMatch {
  /** Redirects to issue in total before the switch clears itself (default 50, at most 1000). */
  count?: number;
}

/** Every switch, all settable at creation (`switches`) and at run time (`set()`). */
export interface FakeSwitches {
  /** 429 Too Many Requests with Retry-After. */
  tooManyRequests?: StatusBurst | undefined;
  /** 503 Service Unavailable (optionally with Retry-After). */
  unavailable?: StatusBurst | undefined;
  /** Download side: send headers with the full Content-Length, then only `afterBytes` of the body, then close the socket. */
  dropDownload?: ByteCut | undefined;
  /** Upload side: read `afterBytes` of a request body, commit them, then destroy the socket without answering. */
  dropUpload?: ByteCut | undefined;
  /** 413 for any request body larger than this (checked on Content-Length first, then while streaming). */
  maxRequestBodyBytes?: number | undefined;
  /** Advertise `OCI-Chunk-Min-Length` on upload responses (POST, PATCH, GET status). Not enforced. */
  chunkMinLength?: number | undefined;
  /** Serve these blob digests with one byte flipped (the middle one); HEAD and Content-Length stay right. */
  corruptBlobs?: string[] | undefined;
  /** Upload `Location`s point at another path on this host, or at a second listener on another port. */
  redirectUploads?: 'same-host' | 'other-host' | undefined;
  /** Misbehaving manifest GET/HEAD responses. */
  manifestFault?: ManifestFault | undefined;
  /** 307s that cycle between two URLs (A → B → A …). */
  redirectLoop?: RedirectLoop | undefined;
  /** 401 with a fresh challenge for every /v2 request, whatever credentials or token come with it. */
  authLoop?: boolean | undefined;
  /** The referrers API (default on); off: 404 like distribution 2.8.2. */
  referrers?: boolean | undefined;
  /** Cross-repo mount (`POST ?mount=&from=`) answers 201 when `from` has the blob (default on); off: always 202. */
  crossRepoMount?: boolean | undefined;
  /** Like distribution 2.8.2: 404 MANIFEST_UNKNOWN when Accept does not list the stored media type. */
  requireAccept?: boolean | undefined;
}

export type FakeAuth =
  | {type: 'basic'; username: string; password: string}
  | {
      type: 'bearer';
      /** username → password for the token endpoint; default {ferry: 'secret'}. */
      users?: Record<string, string>;
      /** Tokens stop working this many ms after issue (default 60 000). */
      tokenLifetimeMs?: number;
      /** What anonymous token requests get (default nothing). */
      anonymous?: 'none' | 'pull';
    };

export interface FakeRegistryOptions {
  /** HTTPS with a fresh test CA (true), or given PEM files. */
  tls?: boolean | {certFile: string; keyFile: string; caFile?: string};
  auth?: FakeAuth;
  switches?: FakeSwitches;
  /** Upload/blob/manifest `Location`s as absolute URLs (distribution's style) instead of paths. */
  absoluteLocations?: boolean;
  /** Refuse manifests whose config/layers/children are not in the repository (default true, like distribution). */
  verifyManifestReferences?: boolean;
  maxManifestBytes?: number;
}

export interface RequestRecord {
  seq: number;
  /** 'main', or 'other' for the second listener that hostile upload redirects point at. */
  server: 'main' | 'other';
  method: string;
  /** Pathname and query as sent. */
  path: string;
  /** Response status; 0 when the connection was dropped before a status line. */
  status: number;
  /** Request body bytes received (committed or discarded). */
  requestBytes: number;
  /** Response body bytes written. */
  responseBytes: number;
  /** Request `Range` header (resumed downloads). */
  range?: string;
  /** Request `Content-Range` header (chunked uploads). */
  contentRange?: string;
  /** Response `Range` header (upload progress). */
  uploadRange?: string;
  /** The scheme of the request's Authorization header, if any. */
  authorization?: 'basic' | 'bearer' | 'other';
  /** Which switch acted on this request. */
  fault?: string;
  /** The response did not complete (cut by a switch or by the client). */
  incomplete?: boolean;
}

export interface StoredManifest {
  digest: string;
  mediaType: string;
  body: Buffer;
}

export interface FakeRegistry {
  /** 'http://127.0.0.1:PORT' or https. */
  url: string;
  host: string;
  port: number;
  /** Origin of the second listener that `redirectUploads: 'other-host'` sends clients to. */
  otherOrigin: string;
  caFile?: string;
  /** `<certsDir>/<host>/ca.crt`, for skopeo `--dest-cert-dir <certsDir>/<host>` (tls only). */
  certsDir?: string;
  /** The live switches (counters count down in place). */
  readonly switches: FakeSwitches;
  /** Merges switches; a key set to undefined turns that switch off. */
  set(patch: FakeSwitches): void;
  /** Turns every fault off (referrers and crossRepoMount back to on). */
  reset(): void;
  setAuth(auth: FakeAuth | undefined): void;
  /** Every request in arrival order (the token endpoint included). */
  readonly log: RequestRecord[];
  clearLog(): void;
  /** Requests in the log matching method and path. */
  requests(match?: RequestMatch): RequestRecord[];
  /** Tokens issued by the bearer endpoint, per requested scope string. */
  tokenCount(scope?: string): number;
  putBlob(repo: string, data: Buffer | string): Promise<string>;
  putManifest(repo: string, reference: string, body: Buffer | string, mediaType: string): string;
  getManifest(repo: string, reference: string): StoredManifest | undefined;
  hasBlob(repo: string, digest: string): boolean;
  /** The file holding a blob (any repository). */
  blobPath(digest: string): string;
  tags(repo: string): string[];
  stop(): Promise<void>;
}

interface Repo {
  blobs: Set<string>;
  manifests: Map<string, StoredManifest>;
  tags: Map<string, string>;
}

interface UploadSession {
  uuid: string;
  repo: string;
  file: string;
  offset: number;
  hash: Hash;
  /** Where its Location points: the v2 path, a path elsewhere on this host, or the other listener. */
  style: 'v2' | 'same-host' | 'other-host';
}

interface Ctx {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  url: URL;
  record: RequestRecord;
  server: 'main' | 'other';
}

type BodyOutcome = 'complete' | 'too-large' | 'dropped' | 'aborted';

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const NAME_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

function errorBody(code: string, message: string, detail?: unknown): string {
  return JSON.stringify({errors: [{code, message, ...(detail === undefined ? {} : {detail})}]});
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function matches(m: RequestMatch, method: string, pathAndQuery: string): boolean {
  return (m.method === undefined || m.method.toUpperCase() === method) && (m.path === undefined || m.path.test(pathAndQuery));
}

/** Waits for 'drain' or the end of the response, leaving no listener behind. */
async function drainOrClose(res: http.ServerResponse): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      res.off('error', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
    res.on('error', done);
  });
}

/** Parses `bytes=a-b`, `bytes=a-`, `bytes=-n`; undefined when unsatisfiable or malformed. */
function parseRange(header: string, size: number): {start: number; end: number} | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return undefined;
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || end < start) return undefined;
  return {start, end};
}

export async function startFakeRegistry(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const root = mkdtempSync('/tmp/ffake-');
  const blobDir = path.join(root, 'blobs');
  const uploadDir = path.join(root, 'uploads');
  await Promise.all([mkdir(blobDir), mkdir(uploadDir)]);

  const switches: FakeSwitches = {};
  let auth = options.auth;
  const maxManifestBytes = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
  const verifyRefs = options.verifyManifestReferences ?? true;
  const repos = new Map<string, Repo>();
  const blobSizes = new Map<string, number>();
  const uploads = new Map<string, UploadSession>();
  const tokens = new Map<string, {scopes: Set<string>; expiresAt: number}>();
  const tokenIssued: string[][] = [];
  const log: RequestRecord[] = [];
  let seq = 0;

  let tlsFiles: {certFile: string; keyFile: string; caFile?: string} | undefined;
  if (options.tls === true) tlsFiles = makeTestCertificates(path.join(root, 'tls'));
  else if (options.tls) tlsFiles = options.tls;
  const scheme = tlsFiles ? 'https' : 'http';
  let origin = '';
  let otherOrigin = '';

  const repoOf = (name: string, create: boolean): Repo | undefined => {
    let r = repos.get(name);
    if (!r && create) {
      r = {blobs: new Set(), manifests: new Map(), tags: new Map()};
      repos.set(name, r);
    }
    return r;
  };
  const blobFile = (digest: string): string => path.join(blobDir, digest.slice('sha256:'.length));
  const loc = (p: string): string => (options.absoluteLocations ? `${origin}${p}` : p);

  // --- switch bookkeeping -------------------------------------------------------------------
  type Counted = 'tooManyRequests' | 'unavailable' | 'dropDownload' | 'dropUpload';
  /** The switch if it is on and matches this request; it is not used up until consume(). */
  function peek<K extends Counted>(key: K, method: string, p: string, defaultPath?: RegExp): NonNullable<FakeSwitches[K]> | undefined {
    const sw = switches[key];
    if (!sw) return undefined;
    const pathRe = sw.path ?? defaultPath;
    const swMethod = 'method' in sw ? sw.method : undefined;
    if (!matches({...(pathRe ? {path: pathRe} : {}), ...(swMethod !== undefined ? {method: swMethod} : {})}, method, p)) return undefined;
    return sw as NonNullable<FakeSwitches[K]>;
  }
  /** Uses one unit of a counted switch; clears it when used up. */
  function consume(key: Counted): void {
    const sw = switches[key];
    if (!sw) return;
    const left = (sw.count ?? 1) - 1;
    if (left <= 0) delete switches[key];
    else sw.count = left;
  }

  // --- responses ----------------------------------------------------------------------------
  /** Every status line goes through here, so the log has the status as soon as the client can see it. */
  function head(ctx: Ctx, status: number, headers: Record<string, string | number>): void {
    ctx.record.status = status;
    ctx.res.writeHead(status, {'Docker-Distribution-API-Version': 'registry/2.0', ...headers});
  }

  function send(ctx: Ctx, status: number, headers: Record<string, string | number>, body?: Buffer | string): void {
    const buf = body === undefined ? undefined : Buffer.from(body);
    const h: Record<string, string | number> = {...headers};
    if (h['Content-Length'] === undefined) h['Content-Length'] = buf?.length ?? 0;
    head(ctx, status, h);
    if (buf !== undefined && ctx.req.method !== 'HEAD') {
      ctx.record.responseBytes += buf.length;
      ctx.res.end(buf);
    } else ctx.res.end();
  }
  const sendError = (ctx: Ctx, status: number, code: string, message: string, extra: Record<string, string | number> = {}, detail?: unknown): void =>
    send(ctx, status, {'Content-Type': 'application/json; charset=utf-8', ...extra}, errorBody(code, message, detail));

  /** Discards (and counts) whatever is left of a request body so keep-alive goes on. */
  function discardBody(ctx: Ctx): void {
    if (ctx.req.readableEnded || ctx.req.destroyed) return;
    ctx.req.removeAllListeners('data');
    ctx.req.on('data', (c: Buffer) => {
      ctx.record.requestBytes += c.length;
    });
    ctx.req.resume();
  }

  /**
   * Streams a request body into `write`, honouring the 413 cap and the upload-side cut. Returns how it
   * ended; on 'too-large' the rest of the body is being discarded, on 'dropped' the socket is gone.
   */
  async function receiveBody(ctx: Ctx, write: (chunk: Buffer) => Promise<void>): Promise<{bytes: number; outcome: BodyOutcome}> {
    const {req} = ctx;
    const cap = switches.maxRequestBodyBytes;
    const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    if (cap !== undefined && declared !== undefined && declared > cap) {
      ctx.record.fault = 'maxRequestBodyBytes';
      discardBody(ctx);
      return {bytes: 0, outcome: 'too-large'};
    }
    // Only a request that has a body can be cut.
    const cut = declared === 0 ? undefined : peek('dropUpload', req.method ?? '', ctx.url.pathname + ctx.url.search, /\/blobs\/|\/upload/);
    let bytes = 0;
    return await new Promise((resolve) => {
      let settled = false;
      // The write of the chunk in hand; end/close must wait for it so the caller sees final offsets.
      let pending: Promise<void> = Promise.resolve();
      // Decided synchronously when a chunk trips a limit: 'end' may still fire while that chunk is being handled.
      let decided: BodyOutcome | undefined;
      const finish = (outcome: BodyOutcome): void => {
        if (settled) return;
        settled = true;
        req.removeListener('end', onEnd);
        req.removeListener('close', onClose);
        void pending.catch(() => undefined).then(() => resolve({bytes, outcome}));
      };
      const onEnd = (): void => finish(decided ?? 'complete');
      const onClose = (): void => finish('aborted');
      req.on('end', onEnd);
      req.on('close', onClose);
      req.on('data', (chunk: Buffer) => {
        if (settled) return;
        req.pause();
        let outcome: BodyOutcome | undefined;
        let part = chunk;
        if (cut && bytes + part.length > cut.afterBytes) {
          part = part.subarray(0, cut.afterBytes - bytes);
          outcome = 'dropped';
        } else if (cap !== undefined && bytes + part.length > cap) {
          part = Buffer.alloc(0);
          outcome = 'too-large';
        }
        decided = outcome;
        pending = (async () => {
          if (part.length > 0) {
            await write(part);
            bytes += part.length;
            ctx.record.requestBytes += part.length;
          }
        })();
        pending.then(
          () => {
            if (outcome === 'dropped') {
              consume('dropUpload');
              ctx.record.fault = 'dropUpload';
              finish('dropped');
              req.socket.destroy();
            } else if (outcome === 'too-large') {
              ctx.record.fault = 'maxRequestBodyBytes';
              finish('too-large');
              discardBody(ctx);
            } else if (!settled) req.resume();
          },
          () => {
            pending = Promise.resolve();
            finish('aborted');
            req.socket.destroy();
          },
        );
      });
    });
  }

  /** Reads a small body (manifests, token forms) into memory with a hard cap. */
  async function readSmallBody(ctx: Ctx, limit: number): Promise<{body: Buffer; outcome: BodyOutcome | 'over-limit'}> {
    const parts: Buffer[] = [];
    let size = 0;
    let over = false;
    const r = await receiveBody(ctx, async (chunk) => {
      size += chunk.length;
      if (size > limit) over = true;
      else parts.push(chunk);
    });
    return {body: Buffer.concat(parts), outcome: over ? 'over-limit' : r.outcome};
  }

  /** Streams part of a file as a response body, applying the download cut and byte corruption. */
  async function sendFileBody(ctx: Ctx, file: string, start: number, end: number, corruptAt: number | undefined): Promise<void> {
    const {res} = ctx;
    const cut = peek('dropDownload', ctx.req.method ?? '', ctx.url.pathname + ctx.url.search, /\/blobs\//);
    let sent = 0;
    const stream = createReadStream(file, {start, end, highWaterMark: 256 * 1024});
    try {
      for await (const raw of stream as AsyncIterable<Buffer>) {
        if (res.destroyed) return;
        let chunk = raw;
        if (corruptAt !== undefined && corruptAt >= start + sent && corruptAt < start + sent + chunk.length) {
          chunk = Buffer.from(chunk);
          const i = corruptAt - start - sent;
          chunk[i] = (chunk[i] ?? 0) ^ 0xff;
        }
        if (cut && sent + chunk.length > cut.afterBytes) {
          consume('dropDownload');
          ctx.record.fault = 'dropDownload';
          const last = chunk.subarray(0, cut.afterBytes - sent);
          ctx.record.responseBytes += last.length;
          // Let the kept bytes reach the kernel, then close: the client sees a short body.
          await new Promise<void>((resolve) => res.write(last, () => resolve()));
          res.socket?.destroy();
          return;
        }
        sent += chunk.length;
        ctx.record.responseBytes += chunk.length;
        if (!res.write(chunk)) await drainOrClose(res);
      }
      res.end();
    } finally {
      stream.destroy();
    }
  }

  function sendBufferBody(ctx: Ctx, body: Buffer): void {
    const cut = peek('dropDownload', ctx.req.method ?? '', ctx.url.pathname + ctx.url.search, /\/(blobs|manifests)\//);
    if (cut && cut.afterBytes < body.length) {
      consume('dropDownload');
      ctx.record.fault = 'dropDownload';
      const part = body.subarray(0, cut.afterBytes);
      ctx.record.responseBytes += part.length;
      ctx.res.write(part, () => ctx.res.socket?.destroy());
      return;
    }
    ctx.record.responseBytes += body.length;
    ctx.res.end(body);
  }

  // --- auth ---------------------------------------------------------------------------------
  function requiredScope(ctx: Ctx, name: string | undefined): string | undefined {
    if (ctx.url.pathname === '/v2/_catalog') return 'registry:catalog:*';
    if (name === undefined) return undefined;
    const m = ctx.req.method ?? 'GET';
    const action = m === 'GET' || m === 'HEAD' ? 'pull' : m === 'DELETE' ? 'delete' : 'pull,push';
    return `repository:${name}:${action}`;
  }

  function challenge(ctx: Ctx, scheme: 'basic' | 'bearer', scope: string | undefined, error?: string): void {
    const header = scheme === 'basic' ? 'Basic realm="fake-registry"' : `Bearer realm="${origin}/token",service="fake-registry"${scope ? `,scope="${scope}"` : ''}${error ? `,error="${error}"` : ''}`;
    discardBody(ctx);
    sendError(ctx, 401, 'UNAUTHORIZED', 'authentication required', {'WWW-Authenticate': header});
  }

  /** true when the request may go on; otherwise a 401 was sent. */
  function authorize(ctx: Ctx, name: string | undefined): boolean {
    const scope = requiredScope(ctx, name);
    if (switches.authLoop) {
      // Whatever comes in, ask again: a client must give up after a bounded number of rounds.
      ctx.record.fault = 'authLoop';
      if (auth?.type === 'basic') challenge(ctx, 'basic', scope);
      else challenge(ctx, 'bearer', scope, ctx.req.headers.authorization ? 'invalid_token' : undefined);
      return false;
    }
    if (!auth) return true;
    const header = ctx.req.headers.authorization ?? '';
    if (auth.type === 'basic') {
      if (/^basic /i.test(header)) {
        const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
        if (safeEqual(decoded, `${auth.username}:${auth.password}`)) return true;
      }
      challenge(ctx, 'basic', scope);
      return false;
    }
    if (!/^bearer /i.test(header)) {
      challenge(ctx, 'bearer', scope);
      return false;
    }
    const token = tokens.get(header.slice(7).trim());
    if (!token || Date.now() >= token.expiresAt) {
      challenge(ctx, 'bearer', scope, 'invalid_token');
      return false;
    }
    if (scope !== undefined) {
      const [type, rest] = [scope.slice(0, scope.indexOf(':')), scope.slice(scope.indexOf(':') + 1)];
      const nameAndActions = rest.slice(0, rest.lastIndexOf(':'));
      const actions = rest.slice(rest.lastIndexOf(':') + 1).split(',');
      if (!actions.every((a) => token.scopes.has(`${type}:${nameAndActions}:${a}`) || token.scopes.has(`${type}:${nameAndActions}:*`))) {
        challenge(ctx, 'bearer', scope, 'insufficient_scope');
        return false;
      }
    }
    return true;
  }

  async function handleToken(ctx: Ctx): Promise<void> {
    if (!auth || auth.type !== 'bearer') return sendError(ctx, 404, 'NOT_FOUND', 'no token endpoint');
    const users = auth.users ?? {ferry: 'secret'};
    let params: URLSearchParams;
    let user: string | undefined;
    if (ctx.req.method === 'POST') {
      const {body} = await readSmallBody(ctx, 64 * 1024);
      params = new URLSearchParams(body.toString('utf8'));
      const grant = params.get('grant_type');
      if (grant === 'password') {
        const u = params.get('username') ?? '';
        const expected = users[u];
        if (expected === undefined || !safeEqual(expected, params.get('password') ?? '')) return send(ctx, 400, {'Content-Type': 'application/json'}, JSON.stringify({error: 'invalid_grant'}));
        user = u;
      } else if (grant === 'refresh_token') {
        const rt = params.get('refresh_token') ?? '';
        const owner = rt.startsWith('refresh-') ? rt.slice('refresh-'.length).split('.')[0] : undefined;
        if (owner === undefined || users[owner] === undefined) return send(ctx, 400, {'Content-Type': 'application/json'}, JSON.stringify({error: 'invalid_grant'}));
        user = owner;
      } else return send(ctx, 400, {'Content-Type': 'application/json'}, JSON.stringify({error: 'unsupported_grant_type'}));
    } else {
      params = ctx.url.searchParams;
      const header = ctx.req.headers.authorization ?? '';
      if (/^basic /i.test(header)) {
        const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
        const i = decoded.indexOf(':');
        const u = decoded.slice(0, i);
        const expected = users[u];
        if (i < 0 || expected === undefined || !safeEqual(expected, decoded.slice(i + 1))) return sendError(ctx, 401, 'UNAUTHORIZED', 'invalid username or password');
        user = u;
      }
    }
    const requested = params.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const granted = new Set<string>();
    for (const s of requested) {
      const first = s.indexOf(':');
      const last = s.lastIndexOf(':');
      if (first <= 0 || last === first) continue;
      for (const action of s.slice(last + 1).split(',')) {
        if (user !== undefined || (auth.anonymous === 'pull' && action === 'pull')) granted.add(`${s.slice(0, last)}:${action}`);
      }
    }
    const lifetime = Math.max(1, auth.tokenLifetimeMs ?? 60_000);
    const token = `fake-${randomBytes(16).toString('hex')}`;
    tokens.set(token, {scopes: granted, expiresAt: Date.now() + lifetime});
    tokenIssued.push(requested);
    const body: Record<string, unknown> = {token, access_token: token, expires_in: Math.max(1, Math.ceil(lifetime / 1000)), issued_at: new Date().toISOString()};
    if (user !== undefined && (params.get('access_type') === 'offline' || params.get('offline_token') === 'true')) body.refresh_token = `refresh-${user}.${randomBytes(8).toString('hex')}`;
    send(ctx, 200, {'Content-Type': 'application/json'}, JSON.stringify(body));
  }

  // --- uploads ------------------------------------------------------------------------------
  function uploadLocation(s: UploadSession): string {
    if (s.style === 'other-host') return `${otherOrigin}/upload/${s.uuid}`;
    if (s.style === 'same-host') return loc(`/upload-elsewhere/${s.uuid}`);
    return loc(`/v2/${s.repo}/blobs/uploads/${s.uuid}`);
  }

  function uploadHeaders(s: UploadSession): Record<string, string | number> {
    // distribution reports `0-0` for an empty upload too (blobupload.go); clients must live with that.
    const h: Record<string, string | number> = {Location: uploadLocation(s), Range: `0-${Math.max(0, s.offset - 1)}`, 'Docker-Upload-UUID': s.uuid};
    if (switches.chunkMinLength !== undefined) h['OCI-Chunk-Min-Length'] = switches.chunkMinLength;
    return h;
  }

  function sendUploadStatus(ctx: Ctx, status: number, s: UploadSession): void {
    const h = uploadHeaders(s);
    ctx.record.uploadRange = String(h.Range);
    send(ctx, status, h);
  }

  async function newSession(repo: string): Promise<UploadSession> {
    const uuid = randomUUID();
    const file = path.join(uploadDir, uuid);
    await writeFile(file, '');
    const style = switches.redirectUploads ?? 'v2';
    const s: UploadSession = {uuid, repo, file, offset: 0, hash: createHash('sha256'), style};
    uploads.set(uuid, s);
    return s;
  }

  /** Appends a request body to a session; rolls back to the previous offset on 413 or a bad length. */
  async function appendBody(ctx: Ctx, s: UploadSession, expectLength?: number): Promise<BodyOutcome | 'length-mismatch'> {
    const checkpoint = {offset: s.offset, hash: s.hash.copy()};
    const fh = await open(s.file, 'r+');
    let outcome: BodyOutcome;
    let bytes: number;
    try {
      let pos = s.offset;
      ({bytes, outcome} = await receiveBody(ctx, async (chunk) => {
        await fh.write(chunk, 0, chunk.length, pos);
        pos += chunk.length;
        s.hash.update(chunk);
        s.offset += chunk.length;
      }));
    } finally {
      await fh.close();
    }
    const rollback = async (): Promise<void> => {
      s.offset = checkpoint.offset;
      s.hash = checkpoint.hash;
      await truncate(s.file, s.offset);
    };
    if (outcome === 'too-large') {
      await rollback();
      return outcome;
    }
    if (outcome === 'complete' && expectLength !== undefined && bytes !== expectLength) {
      await rollback();
      return 'length-mismatch';
    }
    // 'dropped' and 'aborted' keep what arrived, as a registry that wrote it to storage would.
    return outcome;
  }

  async function commitBlob(repo: string, file: string, digest: string, size: number): Promise<void> {
    const target = blobFile(digest);
    if (blobSizes.has(digest)) await unlink(file);
    else await rename(file, target);
    blobSizes.set(digest, size);
    repoOf(repo, true)!.blobs.add(digest);
  }

  async function handleUploadStart(ctx: Ctx, repo: string): Promise<void> {
    const mount = ctx.url.searchParams.get('mount');
    const from = ctx.url.searchParams.get('from');
    const digest = ctx.url.searchParams.get('digest');
    if (mount !== null && from !== null && switches.crossRepoMount !== false && DIGEST_RE.test(mount) && repos.get(from)?.blobs.has(mount)) {
      discardBody(ctx);
      repoOf(repo, true)!.blobs.add(mount);
      return send(ctx, 201, {Location: loc(`/v2/${repo}/blobs/${mount}`), 'Docker-Content-Digest': mount});
    }
    const s = await newSession(repo);
    if (digest !== null) {
      // Monolithic upload: the POST body is the whole blob.
      if (!DIGEST_RE.test(digest)) {
        discardBody(ctx);
        return sendError(ctx, 400, 'DIGEST_INVALID', 'unsupported or malformed digest');
      }
      const outcome = await appendBody(ctx, s);
      if (outcome === 'too-large') return sendError(ctx, 413, 'SIZE_INVALID', 'request body too large');
      if (outcome !== 'complete') return;
      return finishUpload(ctx, s, digest);
    }
    discardBody(ctx);
    sendUploadStatus(ctx, 202, s);
  }

  async function finishUpload(ctx: Ctx, s: UploadSession, digest: string): Promise<void> {
    const actual = `sha256:${s.hash.copy().digest('hex')}`;
    if (actual !== digest) return sendError(ctx, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content', {}, {expected: digest, actual});
    uploads.delete(s.uuid);
    await commitBlob(s.repo, s.file, digest, s.offset);
    send(ctx, 201, {Location: loc(`/v2/${s.repo}/blobs/${digest}`), 'Docker-Content-Digest': digest});
  }

  async function handleUploadSession(ctx: Ctx, s: UploadSession): Promise<void> {
    const method = ctx.req.method;
    if (method === 'GET' || method === 'HEAD') {
      discardBody(ctx);
      return sendUploadStatus(ctx, 204, s);
    }
    if (method === 'DELETE') {
      discardBody(ctx);
      uploads.delete(s.uuid);
      await unlink(s.file).catch(() => undefined);
      return send(ctx, 204, {});
    }
    if (method === 'PATCH' || method === 'PUT') {
      const cr = ctx.req.headers['content-range'];
      let expectLength: number | undefined;
      if (method === 'PATCH' && cr !== undefined) {
        const m = /^(?:bytes )?(\d+)-(\d+)$/.exec(cr.trim());
        const declared = ctx.req.headers['content-length'];
        if (!m || Number(m[1]) !== s.offset || Number(m[2]) < Number(m[1]) || (declared !== undefined && Number(declared) !== Number(m[2]) - Number(m[1]) + 1)) {
          // OCI distribution spec: an out-of-order chunk is 416 with the current progress.
          discardBody(ctx);
          ctx.record.uploadRange = `0-${Math.max(0, s.offset - 1)}`;
          return send(ctx, 416, {...uploadHeaders(s), 'Content-Type': 'application/json; charset=utf-8'}, errorBody('BLOB_UPLOAD_INVALID', `chunk must start at ${s.offset}`));
        }
        expectLength = Number(m[2]) - Number(m[1]) + 1;
      }
      const outcome = await appendBody(ctx, s, expectLength);
      if (outcome === 'too-large') return sendError(ctx, 413, 'SIZE_INVALID', 'request body too large');
      if (outcome === 'length-mismatch') return sendError(ctx, 400, 'BLOB_UPLOAD_INVALID', 'body length does not match Content-Range');
      if (outcome !== 'complete') return;
      if (method === 'PATCH') return sendUploadStatus(ctx, 202, s);
      const digest = ctx.url.searchParams.get('digest');
      if (digest === null || !DIGEST_RE.test(digest)) return sendError(ctx, 400, 'DIGEST_INVALID', 'digest missing or malformed');
      return finishUpload(ctx, s, digest);
    }
    discardBody(ctx);
    sendError(ctx, 405, 'UNSUPPORTED', 'method not allowed');
  }

  // --- blobs --------------------------------------------------------------------------------
  async function handleBlob(ctx: Ctx, repo: string, digest: string): Promise<void> {
    discardBody(ctx);
    const r = repos.get(repo);
    if (!DIGEST_RE.test(digest)) return sendError(ctx, 400, 'DIGEST_INVALID', 'malformed digest');
    if (ctx.req.method === 'DELETE') {
      if (!r?.blobs.delete(digest)) return sendError(ctx, 404, 'BLOB_UNKNOWN', 'blob unknown to registry', {}, digest);
      return send(ctx, 202, {});
    }
    const size = blobSizes.get(digest);
    if (!r?.blobs.has(digest) || size === undefined) return sendError(ctx, 404, 'BLOB_UNKNOWN', 'blob unknown to registry', {}, digest);
    const corruptAt = switches.corruptBlobs?.includes(digest) && size > 0 ? Math.floor(size / 2) : undefined;
    if (corruptAt !== undefined) ctx.record.fault = 'corruptBlobs';
    const headers: Record<string, string | number> = {'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': digest, 'Accept-Ranges': 'bytes'};
    const rangeHeader = ctx.req.headers.range;
    let start = 0;
    let end = size - 1;
    let status = 200;
    if (rangeHeader !== undefined && ctx.req.method === 'GET') {
      const range = parseRange(rangeHeader, size);
      if (!range) return sendError(ctx, 416, 'RANGE_INVALID', 'range not satisfiable', {'Content-Range': `bytes */${size}`});
      ({start, end} = range);
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
    headers['Content-Length'] = size === 0 ? 0 : end - start + 1;
    head(ctx, status, headers);
    if (ctx.req.method === 'HEAD' || size === 0) {
      ctx.res.end();
      return;
    }
    await sendFileBody(ctx, blobFile(digest), start, end, corruptAt);
  }

  // --- manifests ----------------------------------------------------------------------------
  function resolveManifest(r: Repo | undefined, reference: string): StoredManifest | undefined {
    if (!r) return undefined;
    const digest = DIGEST_RE.test(reference) ? reference : r.tags.get(reference);
    return digest === undefined ? undefined : r.manifests.get(digest);
  }

  function missingReferences(r: Repo, doc: unknown): string[] {
    const missing: string[] = [];
    if (typeof doc !== 'object' || doc === null) return missing;
    const d = doc as {config?: {digest?: unknown}; layers?: {digest?: unknown}[]; manifests?: {digest?: unknown}[]};
    const blobRefs = [d.config, ...(Array.isArray(d.layers) ? d.layers : [])].filter((x): x is {digest?: unknown} => typeof x === 'object' && x !== null);
    for (const b of blobRefs) if (typeof b.digest === 'string' && !r.blobs.has(b.digest)) missing.push(b.digest);
    for (const m of Array.isArray(d.manifests) ? d.manifests : []) if (typeof m?.digest === 'string' && !r.manifests.has(m.digest)) missing.push(m.digest);
    return missing;
  }

  function oversizeManifest(): Buffer {
    const head = `{"schemaVersion":2,"mediaType":"${MANIFEST_MEDIA_TYPES.ociManifest}","annotations":{"pad":"`;
    const tail = '"}}';
    return Buffer.from(head + 'a'.repeat(DEFAULT_MAX_MANIFEST_BYTES + 1 - head.length - tail.length) + tail);
  }

  async function handleManifest(ctx: Ctx, repo: string, reference: string): Promise<void> {
    const method = ctx.req.method;
    if (method === 'PUT') return putManifestRequest(ctx, repo, reference);
    discardBody(ctx);
    const r = repos.get(repo);
    if (method === 'DELETE') {
      if (!r || !DIGEST_RE.test(reference) || !r.manifests.delete(reference)) return sendError(ctx, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
      for (const [t, d] of r.tags) if (d === reference) r.tags.delete(t);
      return send(ctx, 202, {});
    }
    if (method !== 'GET' && method !== 'HEAD') return sendError(ctx, 405, 'UNSUPPORTED', 'method not allowed');
    const fault = switches.manifestFault;
    if (fault && (fault.reference === undefined || fault.reference.test(reference))) {
      if (fault.count !== undefined) {
        fault.count -= 1;
        if (fault.count <= 0) delete switches.manifestFault;
      }
      ctx.record.fault = `manifestFault:${fault.kind}`;
      const stored = resolveManifest(r, reference);
      let body: Buffer;
      let type: string;
      if (fault.kind === 'oversize') {
        body = oversizeManifest();
        type = MANIFEST_MEDIA_TYPES.ociManifest;
      } else if (fault.kind === 'garbage-json') {
        body = Buffer.from('{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {"digest": ');
        type = stored?.mediaType ?? MANIFEST_MEDIA_TYPES.ociManifest;
      } else {
        if (!stored) return sendError(ctx, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
        body = stored.body;
        type = 'text/html; charset=utf-8';
      }
      // The digest header matches the bytes: only the size, type or syntax is wrong.
      head(ctx, 200, {'Content-Type': type, 'Content-Length': body.length, 'Docker-Content-Digest': sha256(body)});
      if (method === 'HEAD') ctx.res.end();
      else sendBufferBody(ctx, body);
      return;
    }
    const m = resolveManifest(r, reference);
    if (!m) return sendError(ctx, 404, 'MANIFEST_UNKNOWN', 'manifest unknown', {}, {Tag: reference});
    if (switches.requireAccept) {
      const accept = (ctx.req.headers.accept ?? '').split(',').map((s) => s.split(';')[0]!.trim());
      if (!accept.includes(m.mediaType)) {
        ctx.record.fault = 'requireAccept';
        return sendError(ctx, 404, 'MANIFEST_UNKNOWN', 'manifest unknown', {}, {Tag: reference});
      }
    }
    head(ctx, 200, {'Content-Type': m.mediaType, 'Content-Length': m.body.length, 'Docker-Content-Digest': m.digest});
    if (method === 'HEAD') ctx.res.end();
    else sendBufferBody(ctx, m.body);
  }

  function storeManifest(repo: string, reference: string, body: Buffer, mediaType: string): StoredManifest {
    const r = repoOf(repo, true)!;
    const digest = sha256(body);
    const m: StoredManifest = {digest, mediaType, body};
    r.manifests.set(digest, m);
    if (!DIGEST_RE.test(reference)) r.tags.set(reference, digest);
    return m;
  }

  async function putManifestRequest(ctx: Ctx, repo: string, reference: string): Promise<void> {
    const {body, outcome} = await readSmallBody(ctx, maxManifestBytes);
    if (outcome === 'too-large') return sendError(ctx, 413, 'SIZE_INVALID', 'request body too large');
    if (outcome === 'over-limit') return sendError(ctx, 413, 'MANIFEST_INVALID', `manifest larger than ${maxManifestBytes} bytes`);
    if (outcome !== 'complete') return;
    const mediaType = (ctx.req.headers['content-type'] ?? '').split(';')[0]!.trim();
    if (mediaType === '') return sendError(ctx, 400, 'MANIFEST_INVALID', 'Content-Type required');
    if (!DIGEST_RE.test(reference) && !TAG_RE.test(reference)) return sendError(ctx, 400, 'TAG_INVALID', 'invalid tag');
    let doc: unknown;
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch {
      return sendError(ctx, 400, 'MANIFEST_INVALID', 'manifest is not JSON');
    }
    const digest = sha256(body);
    if (DIGEST_RE.test(reference) && reference !== digest) return sendError(ctx, 400, 'DIGEST_INVALID', 'manifest digest does not match', {}, {expected: reference, actual: digest});
    const r = repoOf(repo, true)!;
    if (verifyRefs) {
      const missing = missingReferences(r, doc);
      if (missing.length > 0) return sendError(ctx, 400, 'MANIFEST_BLOB_UNKNOWN', 'blob unknown to registry', {}, missing[0]);
    }
    storeManifest(repo, reference, body, mediaType);
    const headers: Record<string, string> = {Location: loc(`/v2/${repo}/manifests/${digest}`), 'Docker-Content-Digest': digest};
    const subject = (doc as {subject?: {digest?: unknown}}).subject?.digest;
    if (switches.referrers !== false && typeof subject === 'string') headers['OCI-Subject'] = subject;
    send(ctx, 201, headers);
  }

  // --- listings -----------------------------------------------------------------------------
  function paginate(ctx: Ctx, all: string[], linkBase: string): {items: string[]; link?: string} {
    const sorted = [...all].sort();
    const last = ctx.url.searchParams.get('last');
    const nParam = ctx.url.searchParams.get('n');
    const after = last === null ? sorted : sorted.filter((t) => t > last);
    if (nParam === null) return {items: after};
    const n = Math.max(0, Math.min(Number(nParam) || 0, 10_000));
    const items = after.slice(0, n);
    if (after.length > n && items.length > 0) return {items, link: `<${linkBase}?n=${n}&last=${encodeURIComponent(items[items.length - 1]!)}>; rel="next"`};
    return {items};
  }

  function handleReferrers(ctx: Ctx, repo: string, digest: string): void {
    discardBody(ctx);
    if (switches.referrers === false) return send(ctx, 404, {'Content-Type': 'text/plain; charset=utf-8'}, '404 page not found\n');
    if (!DIGEST_RE.test(digest)) return sendError(ctx, 400, 'DIGEST_INVALID', 'malformed digest');
    const filter = ctx.url.searchParams.get('artifactType');
    const manifests: Record<string, unknown>[] = [];
    for (const m of repos.get(repo)?.manifests.values() ?? []) {
      let doc: {subject?: {digest?: unknown}; artifactType?: unknown; config?: {mediaType?: unknown}; annotations?: unknown};
      try {
        doc = JSON.parse(m.body.toString('utf8')) as typeof doc;
      } catch {
        continue;
      }
      if (doc.subject?.digest !== digest) continue;
      const artifactType = typeof doc.artifactType === 'string' ? doc.artifactType : typeof doc.config?.mediaType === 'string' ? doc.config.mediaType : undefined;
      if (filter !== null && artifactType !== filter) continue;
      manifests.push({mediaType: m.mediaType, digest: m.digest, size: m.body.length, ...(artifactType ? {artifactType} : {}), ...(doc.annotations ? {annotations: doc.annotations} : {})});
    }
    const headers: Record<string, string> = {'Content-Type': MANIFEST_MEDIA_TYPES.ociIndex};
    if (filter !== null) headers['OCI-Filters-Applied'] = 'artifactType';
    send(ctx, 200, headers, JSON.stringify({schemaVersion: 2, mediaType: MANIFEST_MEDIA_TYPES.ociIndex, manifests}));
  }

  // --- dispatch -----------------------------------------------------------------------------
  async function route(ctx: Ctx): Promise<void> {
    const {req, url} = ctx;
    const method = req.method ?? 'GET';
    const p = url.pathname;
    const pq = p + url.search;

    const loop = switches.redirectLoop;
    if (loop && matches(loop, method, pq)) {
      const left = Math.min(loop.count ?? 50, 1000) - 1;
      if (left <= 0) delete switches.redirectLoop;
      else loop.count = left;
      ctx.record.fault = 'redirectLoop';
      // Two URLs that point at each other: A (no marker) → B (?_loop=1) → A.
      const next = new URL(url.href);
      if (next.searchParams.has('_loop')) next.searchParams.delete('_loop');
      else next.searchParams.set('_loop', '1');
      discardBody(ctx);
      return send(ctx, 307, {Location: `${origin}${next.pathname}${next.search}`});
    }
    for (const key of ['tooManyRequests', 'unavailable'] as const) {
      const burst = peek(key, method, pq);
      if (burst) {
        consume(key);
        ctx.record.fault = key;
        const headers: Record<string, string | number> = {};
        if (burst.retryAfter !== undefined) headers['Retry-After'] = typeof burst.retryAfter === 'number' ? Math.min(60, Math.max(0, Math.round(burst.retryAfter))) : burst.retryAfter;
        discardBody(ctx);
        return key === 'tooManyRequests' ? sendError(ctx, 429, 'TOOMANYREQUESTS', 'too many requests', headers) : sendError(ctx, 503, 'UNAVAILABLE', 'service unavailable', headers);
      }
    }

    if (ctx.server === 'other') {
      // The hostile listener takes uploads for any session, without auth: whatever arrives is logged.
      const m = /^\/upload\/([0-9a-f-]+)$/.exec(p);
      const s = m ? uploads.get(m[1]!) : undefined;
      if (!s) {
        discardBody(ctx);
        return sendError(ctx, 404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown');
      }
      return handleUploadSession(ctx, s);
    }
    if (p === '/token') return handleToken(ctx);
    if (p.startsWith('/upload-elsewhere/')) {
      const s = uploads.get(p.slice('/upload-elsewhere/'.length));
      if (!s) {
        discardBody(ctx);
        return sendError(ctx, 404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown');
      }
      if (!authorize(ctx, s.repo)) return;
      return handleUploadSession(ctx, s);
    }
    if (p === '/v2' || p === '/v2/') {
      if (!authorize(ctx, undefined)) return;
      discardBody(ctx);
      return send(ctx, 200, {'Content-Type': 'application/json; charset=utf-8'}, '{}');
    }
    if (p === '/v2/_catalog') {
      if (!authorize(ctx, undefined)) return;
      discardBody(ctx);
      const names = [...repos.entries()].filter(([, r]) => r.manifests.size > 0 || r.blobs.size > 0).map(([n]) => n);
      const {items, link} = paginate(ctx, names, '/v2/_catalog');
      return send(ctx, 200, {'Content-Type': 'application/json; charset=utf-8', ...(link ? {Link: link} : {})}, JSON.stringify({repositories: items}));
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs|tags|referrers)\/(.*)$/.exec(p);
    if (!m || !NAME_RE.test(m[1]!)) {
      discardBody(ctx);
      return sendError(ctx, 404, 'NAME_INVALID', 'invalid repository name or path');
    }
    const [, name, kind, rest] = m as unknown as [string, string, string, string];
    if (!authorize(ctx, name)) return;
    if (kind === 'manifests') return handleManifest(ctx, name, decodeURIComponent(rest));
    if (kind === 'referrers') return handleReferrers(ctx, name, rest);
    if (kind === 'tags') {
      discardBody(ctx);
      if (rest !== 'list') return sendError(ctx, 404, 'NOT_FOUND', 'not found');
      const r = repos.get(name);
      if (!r) return sendError(ctx, 404, 'NAME_UNKNOWN', 'repository name not known to registry', {}, {name});
      const {items, link} = paginate(ctx, [...r.tags.keys()], `/v2/${name}/tags/list`);
      return send(ctx, 200, {'Content-Type': 'application/json; charset=utf-8', ...(link ? {Link: link} : {})}, JSON.stringify({name, tags: items}));
    }
    if (rest === 'uploads/' || rest === 'uploads') {
      if (method !== 'POST') {
        discardBody(ctx);
        return sendError(ctx, 405, 'UNSUPPORTED', 'method not allowed');
      }
      return handleUploadStart(ctx, name);
    }
    if (rest.startsWith('uploads/')) {
      const s = uploads.get(rest.slice('uploads/'.length));
      if (!s || s.repo !== name) {
        discardBody(ctx);
        return sendError(ctx, 404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry');
      }
      return handleUploadSession(ctx, s);
    }
    return handleBlob(ctx, name, rest);
  }

  const handler =
    (server: 'main' | 'other') =>
    (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const url = new URL(req.url ?? '/', origin || 'http://127.0.0.1');
      const record: RequestRecord = {seq: ++seq, server, method: req.method ?? '', path: url.pathname + url.search, status: 0, requestBytes: 0, responseBytes: 0};
      if (typeof req.headers.range === 'string') record.range = req.headers.range;
      if (typeof req.headers['content-range'] === 'string') record.contentRange = req.headers['content-range'];
      const authz = req.headers.authorization;
      if (authz) record.authorization = /^basic /i.test(authz) ? 'basic' : /^bearer /i.test(authz) ? 'bearer' : 'other';
      log.push(record);
      res.on('close', () => {
        if (!res.headersSent) record.status = 0;
        if (!res.writableFinished) record.incomplete = true;
      });
      const ctx: Ctx = {req, res, url, record, server};
      route(ctx).catch((e: unknown) => {
        if (!res.headersSent) sendError(ctx, 500, 'UNKNOWN', String(e));
        else res.destroy();
      });
    };

  const tlsOptions = tlsFiles ? {cert: readFileSync(tlsFiles.certFile), key: readFileSync(tlsFiles.keyFile)} : undefined;
  const makeServer = (which: 'main' | 'other'): http.Server => (tlsOptions ? https.createServer(tlsOptions, handler(which)) : http.createServer(handler(which)));
  const main = makeServer('main');
  const other = makeServer('other');
  const listen = async (s: http.Server): Promise<number> => {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen({host: '127.0.0.1', port: 0}, () => resolve());
    });
    return (s.address() as AddressInfo).port;
  };
  const port = await listen(main);
  const otherPort = await listen(other);
  const host = `127.0.0.1:${port}`;
  origin = `${scheme}://${host}`;
  otherOrigin = `${scheme}://127.0.0.1:${otherPort}`;

  let certsDir: string | undefined;
  if (tlsFiles?.caFile) {
    certsDir = path.join(root, 'certs.d');
    const hostDir = path.join(certsDir, host);
    await mkdir(hostDir, {recursive: true});
    await writeFile(path.join(hostDir, 'ca.crt'), readFileSync(tlsFiles.caFile));
  }

  const fake: FakeRegistry = {
    url: origin,
    host,
    port,
    otherOrigin,
    switches,
    set: (patch) => {
      for (const [k, v] of Object.entries(patch) as [keyof FakeSwitches, unknown][]) {
        if (v === undefined) delete switches[k];
        // Copy objects: counters count down in place and must not mutate the caller's literal.
        else (switches as Record<string, unknown>)[k] = typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof RegExp) ? {...v} : v;
      }
    },
    reset: () => {
      for (const k of Object.keys(switches) as (keyof FakeSwitches)[]) delete switches[k];
    },
    setAuth: (a) => {
      auth = a;
    },
    log,
    clearLog: () => {
      log.length = 0;
    },
    requests: (match = {}) => log.filter((r) => matches(match, r.method, r.path)),
    tokenCount: (scope) => (scope === undefined ? tokenIssued.length : tokenIssued.filter((s) => s.includes(scope)).length),
    putBlob: async (repo, data) => {
      const buf = Buffer.from(data);
      const digest = sha256(buf);
      if (!blobSizes.has(digest)) await writeFile(blobFile(digest), buf);
      blobSizes.set(digest, buf.length);
      repoOf(repo, true)!.blobs.add(digest);
      return digest;
    },
    putManifest: (repo, reference, body, mediaType) => storeManifest(repo, reference, Buffer.from(body), mediaType).digest,
    getManifest: (repo, reference) => resolveManifest(repos.get(repo), reference),
    hasBlob: (repo, digest) => repos.get(repo)?.blobs.has(digest) ?? false,
    blobPath: blobFile,
    tags: (repo) => [...(repos.get(repo)?.tags.keys() ?? [])].sort(),
    stop: async () => {
      for (const s of [main, other]) s.closeAllConnections();
      await Promise.all([main, other].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      rmSync(root, {recursive: true, force: true});
    },
  };
  if (options.switches) fake.set(options.switches);
  if (tlsFiles?.caFile) fake.caFile = tlsFiles.caFile;
  if (certsDir) fake.certsDir = certsDir;
  return fake;
}
