import {createHash} from 'node:crypto';
import {readdirSync, readFileSync} from 'node:fs';
import http, {type IncomingHttpHeaders, type IncomingMessage} from 'node:http';
import https from 'node:https';
import path from 'node:path';
import {Readable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import tls from 'node:tls';
import {FerryError, printable} from '../../errors.js';
import {findCredential, type Credential} from './credentials.js';
import {DEFAULT_RETRIES, type RegistryOptions} from './options.js';
import {apiHost, isLoopbackHost} from './reference.js';

/**
 * An HTTP client for one registry (the OCI distribution API): endpoint discovery (HTTPS, plain HTTP
 * only for loopback or when asked), TLS from the system store plus the certs.d convention, the token
 * dance (ping → 401 → token for the scope → retry, tokens cached per scope until they expire),
 * Basic auth, retries with exponential backoff and jitter that honour Retry-After, and redirects.
 * Bodies are streams: nothing here holds a blob in memory. Credentials never reach an error message.
 */

export interface ApiResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  url: URL;
}

export interface ApiRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  /** A path below the endpoint (`/v2/…`) or an absolute URL the registry handed out (an upload Location). */
  target: string | URL;
  headers?: Record<string, string>;
  /** A body: bytes, or a factory (a retry needs a fresh stream). */
  body?: Buffer | (() => Readable);
  /** Scopes the token must carry (`repository:NAME:pull`, `…:pull,push`). */
  scopes: string[];
  /** Statuses that are not failures for this call; anything else becomes an error naming `what`. */
  ok: number[];
  /** Human name for errors: "docker.io/library/alpine:3.20 manifest". */
  what: string;
  /** Follow redirects (GET/HEAD of blobs and manifests): never for uploads. */
  followRedirects?: boolean;
  /**
   * Retry on failure; false for none; 'status' for an upload whose body a broken connection may have
   * left half-stored (the caller asks the registry where it stands): only statuses that say the body
   * was refused whole (429, 5xx) are retried, honouring Retry-After.
   */
  retry?: boolean | 'status';
}

interface Challenge {
  scheme: 'bearer' | 'basic';
  params: Record<string, string>;
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const RETRY_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED', 'ECONNABORTED', 'EAI_AGAIN', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);
const MAX_REDIRECTS = 10;
const IDLE_TIMEOUT_MS = 120_000;

/** `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` (or Basic) parsed. */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(Bearer|Basic)\s*(.*)$/i.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  return {scheme: m[1]!.toLowerCase() as Challenge['scheme'], params};
}

/** Seconds or an HTTP date, as Retry-After gives it; undefined when absent or unreadable. */
export function retryAfterMs(header: string | undefined, now = Date.now()): number | undefined {
  if (header === undefined) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function errorCode(error: unknown): string | undefined {
  const e = error as {code?: unknown; cause?: {code?: unknown}};
  return typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
}

/** The registry's own words for a failed call (`{"errors":[{"code","message"}]}`), one line. */
async function registryMessage(res: ApiResponse): Promise<string> {
  let text = '';
  for await (const chunk of res.body) {
    if (text.length < 4096) text += (chunk as Buffer).toString('utf8');
  }
  try {
    const parsed = JSON.parse(text) as {errors?: Array<{code?: string; message?: string}>};
    const first = parsed.errors?.[0];
    if (first) return `${first.code ?? 'ERROR'}${first.message ? `: ${first.message}` : ''}`;
  } catch {
    // not the registry's JSON error form
  }
  return text.trim().split('\n')[0]?.slice(0, 200) ?? '';
}

/** Certificates for a registry host: the system store, certs.d's ca.crt files, a client cert/key pair. */
function tlsFor(host: string, options: RegistryOptions): {ca: string[]; cert?: Buffer; key?: Buffer} {
  const ca = [...tls.rootCertificates];
  try {
    ca.push(readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8'));
  } catch {
    // no system bundle: Node's own store stands
  }
  const dirs = options.certDir ? [options.certDir] : (options.certsDirs ?? ['/etc/docker/certs.d', '/etc/containers/certs.d']).map((d) => path.join(d, host));
  let cert: Buffer | undefined;
  let key: Buffer | undefined;
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      if (name.endsWith('.crt')) ca.push(readFileSync(path.join(dir, name), 'utf8'));
      if (name.endsWith('.cert') && !cert && names.includes(`${name.slice(0, -5)}.key`)) {
        cert = readFileSync(path.join(dir, name));
        key = readFileSync(path.join(dir, `${name.slice(0, -5)}.key`));
      }
    }
  }
  return {ca, ...(cert && key ? {cert, key} : {})};
}

const SECURE_CONTEXTS = new Map<string, tls.SecureContext>();

/**
 * One TLS context per set of certificates, for the whole process. Without it every connection parsed
 * the ~300 certificates of the system store again (about 70 ms of CPU each), and every image opened
 * from a registry paid that at least once (its client's first connection, the TLS probe on loopback).
 */
function secureContextFor(ca: readonly string[], cert: Buffer | undefined, key: Buffer | undefined): tls.SecureContext {
  const hash = createHash('sha256');
  for (const part of [...ca, cert ?? '', key ?? '']) hash.update(part).update('\0');
  const id = hash.digest('hex');
  let context = SECURE_CONTEXTS.get(id);
  if (!context) {
    context = tls.createSecureContext({ca: [...ca], ...(cert && key ? {cert, key} : {})});
    SECURE_CONTEXTS.set(id, context);
  }
  return context;
}

/** Errors of a TLS handshake with a server that speaks plain HTTP. */
function isPlainHttpAnswer(error: unknown): boolean {
  const message = String((error as Error)?.message ?? '');
  return errorCode(error) === 'EPROTO' || /wrong version number|packet length too long|http request/i.test(message);
}

export class RegistryClient {
  readonly host: string;
  readonly #options: RegistryOptions;
  #base: Promise<URL> | undefined;
  readonly #agents: {http: http.Agent; https: https.Agent};
  readonly #tokens = new Map<string, {value: string; expires: number}>();
  #closed = false;
  /** Token requests under way, per scope set. */
  readonly #pending = new Map<string, Promise<void>>();
  #credential: Promise<Credential | undefined> | undefined;
  #basic: string | undefined;
  /** Attempts after the first for a failed request or a broken body (--retry). */
  get retries(): number {
    return this.#options.retries ?? DEFAULT_RETRIES;
  }

  /** Counts of what happened, for summaries (retries). */
  readonly stats = {retries: 0, requests: 0};

  constructor(
    /** The registry as references name it (docker.io, localhost:5000). */
    readonly registry: string,
    options: RegistryOptions,
  ) {
    this.#options = options;
    this.host = apiHost(registry);
    const {ca, cert, key} = tlsFor(this.host, options);
    this.#agents = {
      http: new http.Agent({keepAlive: true, maxSockets: 16}),
      https: new https.Agent({keepAlive: true, maxSockets: 16, secureContext: secureContextFor(ca, cert, key), rejectUnauthorized: options.tlsVerify !== false}),
    };
  }

  /**
   * Releases the keep-alive sockets. Requests still under way (the other blobs of a push that just
   * failed) end there: no retry, no note after the run's error line, no traffic after the run.
   */
  close(): void {
    this.#closed = true;
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  credential(): Promise<Credential | undefined> {
    this.#credential ??= findCredential(this.registry, this.#options);
    return this.#credential;
  }

  /**
   * The API base URL: https://HOST, or http://HOST with --plain-http, or for a loopback registry that
   * answers a TLS handshake in plain HTTP. Decided once, by pinging /v2/.
   */
  base(): Promise<URL> {
    this.#base ??= (async () => {
      if (this.#options.plainHttp) return new URL(`http://${this.host}`);
      const secure = new URL(`https://${this.host}`);
      try {
        const res = await this.#send(new URL('/v2/', secure), {method: 'GET', headers: {}});
        res.body.resume();
        return secure;
      } catch (e) {
        if (isLoopbackHost(this.host) && isPlainHttpAnswer(e)) return new URL(`http://${this.host}`);
        throw this.#networkError(e, `${this.registry}`);
      }
    })();
    return this.#base;
  }

  #networkError(error: unknown, what: string): FerryError {
    if (error instanceof FerryError) return error;
    const code = errorCode(error);
    const message = printable(String((error as Error)?.message ?? error).trim());
    if (code === 'ECONNREFUSED') return new FerryError('IO', `${what}: connection refused (${this.host})`);
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new FerryError('IO', `${what}: cannot resolve ${this.host}`);
    // The server's alert "bad certificate" (42) or "certificate required" (116): it wants a client certificate ferry did not present (or refused the one it did).
    if (/ALERT_BAD_CERTIFICATE|ALERT_CERTIFICATE_REQUIRED/.test(code ?? '') || /alert (bad certificate|certificate required)/i.test(message)) {
      return new FerryError('IO', `${what}: TLS: ${this.host} refused the connection for want of an accepted client certificate (put a client.cert and client.key pair beside ca.crt in --cert-dir or certs.d/${this.host}/)`);
    }
    if (/certificate|self.signed|unable to verify/i.test(message)) return new FerryError('IO', `${what}: TLS: ${message} (trust its CA in /etc/docker/certs.d/${this.host}/ca.crt or --cert-dir, or pass --tls-verify=false)`);
    return new FerryError('IO', `${what}: ${message}`);
  }

  #send(url: URL, init: {method: string; headers: Record<string, string>; body?: Buffer | Readable}): Promise<ApiResponse> {
    return new Promise<ApiResponse>((resolve, reject) => {
      const module = url.protocol === 'https:' ? https : http;
      const agent = url.protocol === 'https:' ? this.#agents.https : this.#agents.http;
      const req = module.request(url, {method: init.method, headers: {'User-Agent': 'ferry', ...init.headers}, agent});
      req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(Object.assign(new Error(`no answer for ${IDLE_TIMEOUT_MS / 1000} s`), {code: 'ETIMEDOUT'})));
      req.on('response', (body) => resolve({status: body.statusCode ?? 0, headers: body.headers, body, url}));
      req.on('error', reject);
      const body = init.body;
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else pipeline(body, req).catch((e: unknown) => req.destroy(e as Error));
    });
  }

  async #authorization(scopes: readonly string[]): Promise<string | undefined> {
    const token = this.#tokens.get(scopes.join(' '));
    if (token && token.expires > Date.now()) return `Bearer ${token.value}`;
    return this.#basic;
  }

  /** Answers a 401: a bearer token for the scopes (with the credential, if any), or Basic. */
  async #authenticate(challenge: Challenge, scopes: readonly string[], what: string): Promise<void> {
    const credential = await this.credential();
    if (challenge.scheme === 'basic') {
      if (!credential || !('password' in credential)) throw new FerryError('AUTH', `${what}: ${this.registry} asks for a user name and password (ferry login ${this.registry}, or --creds)`);
      this.#basic = `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
      return;
    }
    const realm = challenge.params.realm;
    if (!realm) throw new FerryError('AUTH', `${what}: ${this.registry} asks for a token but names no realm`);
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw new FerryError('AUTH', `${what}: ${this.registry} names a token realm that is not a URL`);
    }
    const wanted = scopes.length > 0 ? [...scopes] : challenge.params.scope ? [challenge.params.scope] : [];
    const service = challenge.params.service;
    let res: ApiResponse;
    if (credential && 'identityToken' in credential) {
      // An identity token is an OAuth2 refresh token: POST it; registries without the endpoint get a GET.
      const form = new URLSearchParams({grant_type: 'refresh_token', refresh_token: credential.identityToken, client_id: 'ferry', ...(service ? {service} : {})});
      for (const s of wanted) form.append('scope', s);
      res = await this.#send(realmUrl, {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: Buffer.from(form.toString())});
      if (res.status === 404 || res.status === 405) {
        res.body.resume();
        res = await this.#tokenGet(realmUrl, service, wanted, credential.username ? `Basic ${Buffer.from(`${credential.username}:${credential.identityToken}`).toString('base64')}` : undefined);
      }
    } else {
      res = await this.#tokenGet(realmUrl, service, wanted, credential ? `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}` : undefined);
    }
    if (res.status === 401 || res.status === 403) {
      res.body.resume();
      throw new FerryError('AUTH', `${what}: ${this.registry} refused ${credential ? 'the credentials' : 'anonymous access'} (${res.status} from its token service)${credential ? '' : ': ferry login, or --creds'}`);
    }
    if (res.status !== 200) throw new FerryError('AUTH', `${what}: ${this.registry}'s token service answered ${res.status} ${await registryMessage(res)}`);
    let parsed: {token?: string; access_token?: string; expires_in?: number; issued_at?: string};
    const chunks: Buffer[] = [];
    for await (const chunk of res.body) {
      chunks.push(chunk as Buffer);
      if (chunks.reduce((n, c) => n + c.length, 0) > 1 << 20) throw new FerryError('AUTH', `${what}: ${this.registry}'s token answer is over 1 MiB`);
    }
    try {
      parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof parsed;
    } catch {
      throw new FerryError('AUTH', `${what}: ${this.registry}'s token service answered something that is not JSON`);
    }
    const value = parsed.token ?? parsed.access_token;
    if (!value) throw new FerryError('AUTH', `${what}: ${this.registry}'s token service gave no token`);
    const issued = parsed.issued_at ? Date.parse(parsed.issued_at) : Date.now();
    const lifetime = (typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60) * 1000;
    // A little early, so a token never expires between the check and the call.
    this.#tokens.set(scopes.join(' '), {value, expires: (Number.isNaN(issued) ? Date.now() : Math.min(issued, Date.now())) + lifetime * 0.9});
  }

  /** #authenticate, once at a time per scope set: concurrent callers share the one token request. */
  #authenticateOnce(challenge: Challenge, scopes: readonly string[], what: string): Promise<void> {
    const key = scopes.join(' ');
    let pending = this.#pending.get(key);
    if (!pending) {
      this.forget(scopes);
      pending = this.#authenticate(challenge, scopes, what).finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    return pending;
  }

  #tokenGet(realm: URL, service: string | undefined, scopes: readonly string[], authorization: string | undefined): Promise<ApiResponse> {
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    for (const s of scopes) url.searchParams.append('scope', s);
    return this.#send(url, {method: 'GET', headers: authorization ? {Authorization: authorization} : {}});
  }

  /** Forgets a scope's token (it expired early, or was revoked): the next call asks again. */
  forget(scopes: readonly string[]): void {
    this.#tokens.delete(scopes.join(' '));
  }

  async #sleep(attempt: number, res: ApiResponse | undefined, why: string, what: string): Promise<void> {
    const base = this.#options.backoffMs ?? 250;
    const backoff = base * 2 ** attempt;
    const wait = Math.min(60_000, retryAfterMs(res?.headers['retry-after'] as string | undefined) ?? backoff * (0.5 + Math.random()));
    this.stats.retries++;
    this.#options.onRetry?.(`${what}: ${why}; retrying in ${(wait / 1000).toFixed(1)} s`);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }

  /**
   * A call whose whole answer is small (a manifest, a config) and read into memory, at most `limit`
   * bytes (`tooBig` makes the error, given the size when known). A body that breaks off on the way
   * is asked for again, with the same bounded backoff as a failed call.
   */
  async requestWhole(req: ApiRequest, limit: number, tooBig: (size?: number) => FerryError): Promise<{status: number; headers: IncomingHttpHeaders; body: Buffer}> {
    const retries = req.retry === false ? 0 : (this.#options.retries ?? DEFAULT_RETRIES);
    for (let attempt = 0; ; attempt++) {
      const res = await this.request(req);
      const declared = Number(res.headers['content-length']);
      if (declared > limit) {
        res.body.destroy();
        throw tooBig(declared);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of res.body) {
          size += (chunk as Buffer).length;
          if (size > limit) {
            res.body.destroy();
            throw tooBig(size);
          }
          chunks.push(chunk as Buffer);
        }
        if (!res.body.complete) throw Object.assign(new Error('connection closed early'), {code: 'ECONNRESET'});
        return {status: res.status, headers: res.headers, body: Buffer.concat(chunks)};
      } catch (e) {
        if (e instanceof FerryError) throw e;
        const why = `the answer broke off after ${size} bytes (${errorCode(e) ?? printable(String((e as Error)?.message ?? e))})`;
        if (attempt >= retries) throw new FerryError('IO', `${req.what}: ${why}`);
        await this.#sleep(attempt, undefined, why, req.what);
      }
    }
  }

  /** One API call: authenticated, retried, redirected as asked; a status outside `ok` is an error naming `what`. */
  async request(req: ApiRequest): Promise<ApiResponse> {
    const base = await this.base();
    const retries = req.retry === false ? 0 : (this.#options.retries ?? DEFAULT_RETRIES);
    let url = typeof req.target === 'string' ? new URL(req.target, base) : req.target;
    let authTried = false;
    let redirects = 0;
    for (let attempt = 0; ; ) {
      if (this.#closed) throw new FerryError('INTERRUPTED', `${req.what}: the run ended`);
      const headers: Record<string, string> = {...req.headers};
      // Credentials go only to the registry itself, never to a host it redirects to (blob storage).
      if (url.host === base.host) {
        const authorization = await this.#authorization(req.scopes);
        if (authorization) headers.Authorization = authorization;
      }
      const sent = headers.Authorization;
      let res: ApiResponse;
      this.stats.requests++;
      try {
        res = await this.#send(url, {method: req.method, headers, ...(req.body === undefined ? {} : {body: Buffer.isBuffer(req.body) ? req.body : req.body()})});
      } catch (e) {
        const code = errorCode(e);
        if (this.#closed) throw new FerryError('INTERRUPTED', `${req.what}: the run ended`);
        if (req.retry !== 'status' && attempt < retries && code !== undefined && RETRY_ERRORS.has(code)) {
          await this.#sleep(attempt++, undefined, `connection failed (${code})`, req.what);
          continue;
        }
        throw this.#networkError(e, req.what);
      }
      if (res.status === 401 && url.host === base.host) {
        const challenge = parseChallenge(res.headers['www-authenticate'] as string | undefined);
        res.body.resume();
        if (!challenge) throw new FerryError('AUTH', `${req.what}: ${this.registry} answered 401 without saying how to authenticate`);
        if (authTried) {
          const credential = await this.credential();
          if (!credential) throw new FerryError('AUTH', `${req.what}: ${this.registry} wants credentials (ferry login ${this.registry}, or --creds USER:PASSWORD)`);
          // The token service took the credentials but granted less than the call needs.
          if (challenge.params.error === 'insufficient_scope') {
            const who = 'username' in credential && credential.username ? `user ${credential.username}` : 'these credentials';
            throw new FerryError('AUTH', `${req.what}: ${this.registry} denies ${who} the access this needs (${challenge.params.scope ?? req.scopes.join(' ')}: insufficient_scope)`);
          }
          throw new FerryError('AUTH', `${req.what}: ${this.registry} refused the credentials (401)`);
        }
        authTried = true;
        // Requests sent side by side (blobs in parallel) meet the same 401: the first asks for the
        // token, the others wait for it, and one that comes back after it was cached just uses it.
        const current = await this.#authorization(req.scopes);
        if (current !== undefined && current !== sent) continue;
        await this.#authenticateOnce(challenge, req.scopes, req.what);
        continue;
      }
      if (RETRY_STATUS.has(res.status) && attempt < retries) {
        res.body.resume();
        await this.#sleep(attempt++, res, `${res.status}`, req.what);
        continue;
      }
      if (req.followRedirects && [301, 302, 303, 307, 308].includes(res.status) && res.headers.location) {
        res.body.resume();
        if (++redirects > MAX_REDIRECTS) throw new FerryError('REGISTRY', `${req.what}: more than ${MAX_REDIRECTS} redirects (a loop?)`);
        url = new URL(res.headers.location, url);
        if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new FerryError('REGISTRY', `${req.what}: redirected to a ${url.protocol} URL`);
        continue;
      }
      if (!req.ok.includes(res.status)) {
        const message = await registryMessage(res);
        const code = res.status === 404 ? 'NOT_FOUND' : res.status === 401 || res.status === 403 ? 'AUTH' : 'REGISTRY';
        throw new FerryError(code, `${req.what}: ${this.registry} answered ${res.status}${message ? ` ${printable(message)}` : ''}`);
      }
      return res;
    }
  }
}
