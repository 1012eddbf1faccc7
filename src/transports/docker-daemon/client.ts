import {readFileSync} from 'node:fs';
import http, {type IncomingMessage} from 'node:http';
import https from 'node:https';
import type {Readable} from 'node:stream';
import {FerryError, printable, UsageError} from '../../errors.js';
import type {DaemonOptions} from '../../settings.js';
import {compareVersions, type DaemonInfo} from './api-version.js';

export type {DaemonInfo};

/**
 * A Docker Engine API client (dockerd, or the podman service's compatible API) on a unix socket or
 * TCP. The API version is negotiated once (`/_ping`'s API-Version, `/version`), capped at the newest
 * ferry speaks; every later call is prefixed with it. Bodies are streams; errors are one line naming
 * the socket and what chose it.
 */

/** The newest API version ferry uses (Docker 25: the OCI layout in docker save/load). */
const NEWEST_API = '1.44';
/** The oldest that has everything ferry needs (images/get with names, images/load with quiet). */
const OLDEST_API = '1.24';
const IDLE_TIMEOUT_MS = 600_000;

function errorCode(error: unknown): string | undefined {
  const e = error as {code?: unknown};
  return typeof e?.code === 'string' ? e.code : undefined;
}

/** The daemon's own words for a failed call (`{"message": …}`), one line. */
async function daemonMessage(res: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of res) if (text.length < 8192) text += String(chunk);
  try {
    const parsed = JSON.parse(text) as {message?: unknown; cause?: unknown};
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON: the text itself
  }
  return text.trim().split('\n')[0]?.slice(0, 300) ?? '';
}

export class DaemonClient {
  readonly #target: {socketPath: string} | {host: string; port: number; secure: boolean};
  /** The Host header: a name for a socket (as the docker CLI sends); HOST:PORT over TCP, which TLS checks the certificate against. */
  readonly #hostHeader: string;
  readonly #agent: http.Agent;
  readonly #where: string;
  #info: Promise<DaemonInfo> | undefined;

  constructor(readonly options: DaemonOptions) {
    const host = options.host;
    const by = options.chosenBy ? ` (chosen by ${options.chosenBy})` : '';
    if (host.startsWith('unix://') || host.startsWith('/')) {
      const socketPath = host.startsWith('unix://') ? host.slice('unix://'.length) : host;
      if (socketPath === '') throw new UsageError(`daemon host "${host}"${by}: no socket path`);
      this.#target = {socketPath};
      this.#hostHeader = 'docker';
      this.#where = `${socketPath}${by}`;
      this.#agent = new http.Agent({keepAlive: true});
    } else if (host.startsWith('tcp://') || host.startsWith('http://') || host.startsWith('https://')) {
      const url = new URL(host.replace(/^tcp:/, options.tls ? 'https:' : 'http:'));
      const secure = url.protocol === 'https:';
      this.#target = {host: url.hostname, port: Number(url.port || (secure ? 2376 : 2375)), secure};
      this.#hostHeader = url.port ? url.host : `${url.host}:${this.#target.port}`;
      this.#where = `${url.host}${by}`;
      const tls = options.tls;
      this.#agent = secure
        ? new https.Agent({keepAlive: true, rejectUnauthorized: tls?.verify !== false, ...(tls?.ca ? {ca: readFileSync(tls.ca)} : {}), ...(tls?.cert ? {cert: readFileSync(tls.cert)} : {}), ...(tls?.key ? {key: readFileSync(tls.key)} : {})})
        : new http.Agent({keepAlive: true});
    } else {
      throw new UsageError(`daemon host "${host}"${by}: expected unix:///PATH or tcp://HOST:PORT (ssh:// is not supported)`);
    }
  }

  /** Where the daemon is, for messages: its socket or address and what chose it. */
  get where(): string {
    return this.#where;
  }

  close(): void {
    this.#agent.destroy();
  }

  #networkError(error: unknown, what: string): FerryError {
    if (error instanceof FerryError) return error;
    const code = errorCode(error);
    if (code === 'ENOENT') return new FerryError('DAEMON', `${what}: no daemon socket at ${this.#where}: is the daemon running? (--host, DOCKER_HOST, or --podman pick another)`);
    if (code === 'EACCES') return new FerryError('DAEMON', `${what}: permission denied on the daemon socket ${this.#where} (join the docker group, or use a rootless daemon's socket)`);
    if (code === 'ECONNREFUSED') return new FerryError('DAEMON', `${what}: the daemon at ${this.#where} refused the connection: is it running?`);
    return new FerryError('DAEMON', `${what}: ${this.#where}: ${printable(String((error as Error)?.message ?? error))}`);
  }

  #send(method: string, path: string, init: {headers?: Record<string, string>; body?: Readable} = {}): Promise<IncomingMessage> {
    return new Promise<IncomingMessage>((resolve, reject) => {
      const target = this.#target;
      const base = 'socketPath' in target ? {socketPath: target.socketPath} : {host: target.host, port: target.port};
      const module = 'secure' in target && target.secure ? https : http;
      const req = module.request({...base, method, path, agent: this.#agent, headers: {Host: this.#hostHeader, 'User-Agent': 'ferry', ...init.headers}});
      req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(Object.assign(new Error(`no answer for ${IDLE_TIMEOUT_MS / 1000} s`), {code: 'ETIMEDOUT'})));
      req.on('response', resolve);
      req.on('error', reject);
      const body = init.body;
      if (!body) {
        req.end();
        return;
      }
      body.on('error', (e) => req.destroy(e));
      body.pipe(req);
    });
  }

  /** The daemon's API version (negotiated down to what ferry speaks), its version and engine. */
  info(): Promise<DaemonInfo> {
    this.#info ??= (async () => {
      let ping: IncomingMessage;
      try {
        ping = await this.#send('GET', '/_ping');
      } catch (e) {
        throw this.#networkError(e, 'daemon');
      }
      ping.resume();
      if (ping.statusCode !== 200) throw new FerryError('DAEMON', `daemon at ${this.#where} answered /_ping with ${ping.statusCode}: not a Docker Engine API?`);
      const offered = String(ping.headers['api-version'] ?? '');
      const res = await this.#send('GET', '/version').catch((e: unknown) => {
        throw this.#networkError(e, 'daemon');
      });
      let version: {ApiVersion?: string; Version?: string; Components?: Array<{Name?: string}>} = {};
      try {
        version = JSON.parse(await daemonMessageText(res)) as typeof version;
      } catch {
        // /version is optional for what ferry needs; the ping's header decides
      }
      const theirs = offered || version.ApiVersion || OLDEST_API;
      if (compareVersions(theirs, OLDEST_API) < 0) throw new FerryError('DAEMON', `daemon at ${this.#where} speaks API ${theirs}; ferry needs ${OLDEST_API} or newer`);
      const apiVersion = compareVersions(theirs, NEWEST_API) > 0 ? NEWEST_API : theirs;
      const podman = (version.Components ?? []).some((c) => /podman/i.test(c.Name ?? ''));
      return {apiVersion, version: version.Version ?? 'unknown', engine: podman ? 'podman' : 'docker'};
    })();
    return this.#info;
  }

  /** One versioned call; a status outside `ok` becomes an error with the daemon's message. */
  async request(method: string, path: string, what: string, init: {headers?: Record<string, string>; body?: Readable; ok?: number[]} = {}): Promise<IncomingMessage> {
    const {apiVersion} = await this.info();
    let res: IncomingMessage;
    try {
      res = await this.#send(method, `/v${apiVersion}${path}`, init);
    } catch (e) {
      throw this.#networkError(e, what);
    }
    if (!(init.ok ?? [200]).includes(res.statusCode ?? 0)) {
      const message = printable(await daemonMessage(res));
      throw new FerryError(res.statusCode === 404 ? 'NOT_FOUND' : 'DAEMON', `${what}: ${message || `the daemon answered ${res.statusCode}`}`);
    }
    return res;
  }

  /** An image's ID and tags, or undefined when the daemon has no such image. */
  async inspectImage(name: string): Promise<{id: string; repoTags: string[]} | undefined> {
    const res = await this.request('GET', `/images/${encodeURIComponent(name)}/json`, `docker-daemon:${name}`, {ok: [200, 404]});
    const text = await daemonMessageText(res);
    if (res.statusCode === 404) return undefined;
    const parsed = JSON.parse(text) as {Id?: string; RepoTags?: string[] | null};
    return {id: parsed.Id ?? '', repoTags: parsed.RepoTags ?? []};
  }

  /** `docker save NAME...`: the archive as a stream. */
  async save(names: readonly string[]): Promise<IncomingMessage> {
    const query = names.map((n) => `names=${encodeURIComponent(n)}`).join('&');
    const what = names.map((n) => `docker-daemon:${n}`).join(', ');
    return this.request('GET', names.length === 1 ? `/images/${encodeURIComponent(names[0]!)}/get` : `/images/get?${query}`, what);
  }

  /**
   * `docker load`: streams the archive in and reads the daemon's JSON message stream; a message with
   * an error is the failure (the daemon's own words). Returns what it says it loaded.
   */
  async load(archive: Readable, what: string): Promise<string[]> {
    const res = await this.request('POST', '/images/load?quiet=1', what, {headers: {'Content-Type': 'application/x-tar', 'Transfer-Encoding': 'chunked'}, body: archive});
    const loaded: string[] = [];
    let failure: string | undefined;
    let buffer = '';
    const take = (line: string): void => {
      if (line.trim() === '') return;
      let message: {stream?: string; error?: string; errorDetail?: {message?: string}};
      try {
        message = JSON.parse(line) as typeof message;
      } catch {
        failure ??= printable(line.slice(0, 300));
        return;
      }
      if (message.error || message.errorDetail?.message) failure ??= printable(message.errorDetail?.message ?? message.error ?? '');
      // podman says it once for all names of an image, comma-separated.
      const m = /Loaded image(?: ID)?: (\S+)/.exec(message.stream ?? '');
      if (m) loaded.push(...m[1]!.split(',').filter((n) => n !== ''));
    };
    for await (const chunk of res) {
      buffer += String(chunk);
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        take(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf('\n');
      }
    }
    take(buffer);
    if (failure !== undefined) throw Object.assign(new FerryError('DAEMON', `${what}: the daemon refused the archive: ${failure}`), {loaded});
    return loaded;
  }

  /** Removes a name (and the image, when it was its last). */
  async removeImage(name: string): Promise<void> {
    const res = await this.request('DELETE', `/images/${encodeURIComponent(name)}`, `docker-daemon:${name}`, {ok: [200, 404, 409]});
    res.resume();
  }

  /** `docker tag ID REPO:TAG`. */
  async tagImage(id: string, repo: string, tag: string): Promise<void> {
    const res = await this.request('POST', `/images/${encodeURIComponent(id)}/tag?repo=${encodeURIComponent(repo)}&tag=${encodeURIComponent(tag)}`, `docker tag ${repo}:${tag}`, {ok: [200, 201]});
    res.resume();
  }
}

async function daemonMessageText(res: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of res) {
    text += String(chunk);
    if (text.length > 16 << 20) throw new FerryError('DAEMON', 'the daemon answered more than 16 MiB of JSON');
  }
  return text;
}
