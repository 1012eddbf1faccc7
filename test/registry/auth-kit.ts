/**
 * Shared pieces of the registry auth, TLS, credentials and referrers tests (test/registry/{auth,tls,
 * credentials,referrers}.test.ts): a sandbox per run (HOME, DOCKER_CONFIG and every XDG directory in
 * a temp dir, so nothing of the real home is read or written), ferry and peers run with an async
 * spawn (the token server and the fake registry live in this process), small images built here with
 * digests computed here, a raw distribution-API pusher that is neither ferry nor skopeo, and the
 * check that no secret reaches stdout, stderr, --json or --report.
 */
import {execAsync, type ExecOptions, type ExecResult} from '../helpers/exec.js';
import {createHash, randomBytes} from 'node:crypto';
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import {gzipSync} from 'node:zlib';
import {expect} from 'vitest';
import {requireBuiltCli} from '../helpers/cli.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const COSIGN_SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const MANIFEST_ACCEPT = [OCI_MANIFEST, OCI_INDEX, 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json'].join(', ');

export const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;
export const b64 = (text: string): string => Buffer.from(text).toString('base64');

// ---------------------------------------------------------------------------------------------
// Sandboxes and processes
// ---------------------------------------------------------------------------------------------

export interface Sandbox {
  root: string;
  home: string;
  /** $DOCKER_CONFIG: config.json lives here. */
  dockerConfig: string;
  configFile: string;
  /** The environment every process of this sandbox runs with. */
  env: NodeJS.ProcessEnv;
  /** A fresh path inside the sandbox (not created). */
  file(name: string): string;
  cleanup(): void;
}

/** Variables of the parent that would point a child at real credentials, state or certificates. */
const SCRUBBED = /^(DOCKER_|REGISTRY_AUTH_FILE$|XDG_|CONTAINERS_|FERRY_|HTTPS?_PROXY$|https?_proxy$|NO_PROXY$|no_proxy$|ALL_PROXY$|all_proxy$)/;

export function makeSandbox(prefix = 'freg-auth-'): Sandbox {
  const root = mkdtempSync(path.join(os.tmpdir(), prefix));
  const dir = (name: string): string => {
    const d = path.join(root, name);
    mkdirSync(d, {recursive: true, mode: 0o700});
    return d;
  };
  const home = dir('home');
  const dockerConfig = dir('docker');
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!SCRUBBED.test(k)) env[k] = v;
  Object.assign(env, {
    HOME: home,
    DOCKER_CONFIG: dockerConfig,
    XDG_RUNTIME_DIR: dir('xdg-run'),
    XDG_CONFIG_HOME: dir('xdg-config'),
    XDG_DATA_HOME: dir('xdg-data'),
    XDG_STATE_HOME: dir('xdg-state'),
    XDG_CACHE_HOME: dir('xdg-cache'),
    FERRY_STATE_DIR: dir('ferry-state'),
    TMPDIR: dir('tmp'),
    FERRY_DEBUG: '',
  });
  let n = 0;
  return {
    root,
    home,
    dockerConfig,
    configFile: path.join(dockerConfig, 'config.json'),
    env,
    file: (name) => path.join(root, `${n++}-${name}`),
    cleanup: () => rmSync(root, {recursive: true, force: true}),
  };
}

export type {ExecResult};

/** A child run without blocking the event loop (token server, fake registry and proxies live here). */
export async function exec(cmd: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
  return await execAsync(cmd, args, {timeoutMs: 90_000, ...options});
}

export async function execOk(cmd: string, args: string[], options: {env?: NodeJS.ProcessEnv; input?: string | Buffer} = {}): Promise<string> {
  const r = await exec(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** The built CLI, run as a user would, in a sandbox's environment. */
export async function ferry(sandbox: Sandbox, args: string[], options: {input?: string; env?: NodeJS.ProcessEnv} = {}): Promise<ExecResult> {
  return await exec(process.execPath, [requireBuiltCli(), ...args], {env: {...sandbox.env, ...options.env}, ...(options.input !== undefined ? {input: options.input} : {})});
}

/** A failed run: exit 1 and exactly one line on stderr, `ferry: …`. Returns that line. */
export function oneErrorLine(r: ExecResult): string {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^ferry: /);
  return lines[0]!;
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/** Every form a secret could leak in: itself, base64 of user:secret (Basic, config.json's auth), base64 of itself. */
export function secretForms(secret: string, username?: string): string[] {
  const forms = [secret, b64(secret), Buffer.from(secret).toString('base64url')];
  if (username !== undefined) forms.push(b64(`${username}:${secret}`), Buffer.from(`${username}:${secret}`).toString('base64url'));
  // A JWT is long: its signature part alone is as secret as the whole.
  if (/^[\w-]+\.[\w-]+\.[\w-]+$/.test(secret)) forms.push(secret.split('.')[2]!);
  return [...new Set(forms.filter((f) => f.length >= 8))];
}

/** None of `secrets` (in any form secretForms lists) appears in any of the texts. */
export function expectNoSecrets(texts: Record<string, string>, secrets: readonly string[]): void {
  for (const [where, text] of Object.entries(texts)) {
    for (const secret of secrets) {
      if (text.includes(secret)) throw new Error(`a secret (${secret.length} characters) leaked into ${where}`);
    }
  }
}

/** stdout and stderr of runs, named for the leak check. */
export function outputsOf(runs: Record<string, ExecResult>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, r] of Object.entries(runs)) {
    out[`${name} stdout`] = r.stdout;
    out[`${name} stderr`] = r.stderr;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Images built here, digests computed here
// ---------------------------------------------------------------------------------------------

/** One regular file in a ustar archive, then the two zero blocks. */
export function tarOf(files: Record<string, string>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const data = Buffer.from(content);
    const header = Buffer.alloc(512);
    header.write(name, 0, 100, 'utf8');
    header.write('0000644\0', 100, 'ascii');
    header.write('0000000\0', 108, 'ascii');
    header.write('0000000\0', 116, 'ascii');
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
    header.write(`${(1_700_000_000).toString(8).padStart(11, '0')}\0`, 136, 'ascii');
    header.write('        ', 148, 'ascii');
    header.write('0', 156, 'ascii');
    header.write('ustar\0', 257, 'ascii');
    header.write('00', 263, 'ascii');
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  data?: string;
}

export const descriptorOf = (mediaType: string, bytes: Buffer, extra: Partial<Descriptor> = {}): Descriptor => ({mediaType, digest: sha256(bytes), size: bytes.length, ...extra});

export interface BuiltManifest {
  /** Every blob the manifest names (config first). */
  blobs: Buffer[];
  manifest: Buffer;
  mediaType: string;
  digest: string;
  descriptor: Descriptor;
}

/**
 * A linux/amd64 image of `layers` gzip layers (default 1), each holding one file that says `text`, and
 * `shared` layers first whose content depends only on `shared`'s text (so two images can share them).
 */
export function buildImage(text: string, options: {layers?: number; shared?: string} = {}): BuiltManifest & {config: Buffer; layers: Buffer[]} {
  const tars: Buffer[] = [];
  if (options.shared !== undefined) tars.push(tarOf({'base.txt': `${options.shared}\n`}));
  for (let i = 0; i < (options.layers ?? 1); i++) tars.push(tarOf({[`hello-${i}.txt`]: `${text} ${i}\n`}));
  const layers = tars.map((t) => gzipSync(t, {level: 6}));
  const config = Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', config: {Cmd: ['/hello-0.txt']}, rootfs: {type: 'layers', diff_ids: tars.map((t) => sha256(t))}, history: tars.map(() => ({created_by: `ferry test: ${text}`}))}));
  const manifest = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptorOf(OCI_CONFIG, config), layers: layers.map((l) => descriptorOf(OCI_LAYER_GZIP, l))}));
  return {blobs: [config, ...layers], config, layers, manifest, mediaType: OCI_MANIFEST, digest: sha256(manifest), descriptor: descriptorOf(OCI_MANIFEST, manifest)};
}

/** A cosign-style signature of `subject`: simplesigning payload layer with its signature annotation, image-config-typed config. */
export function buildCosignSignature(subject: {digest: string}, repository: string): BuiltManifest & {tag: string} {
  const payload = Buffer.from(JSON.stringify({critical: {identity: {'docker-reference': repository}, image: {'docker-manifest-digest': subject.digest}, type: 'cosign container image signature'}, optional: null}));
  const config = Buffer.from(JSON.stringify({architecture: '', created: '0001-01-01T00:00:00Z', history: [{created: '0001-01-01T00:00:00Z'}], os: '', rootfs: {type: 'layers', diff_ids: [sha256(payload)]}, config: {}}));
  const signature = randomBytes(64).toString('base64');
  const manifest = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptorOf(OCI_CONFIG, config), layers: [descriptorOf(COSIGN_SIMPLESIGNING, payload, {annotations: {'dev.cosignproject.cosign/signature': signature}})]}));
  return {blobs: [config, payload], manifest, mediaType: OCI_MANIFEST, digest: sha256(manifest), descriptor: descriptorOf(OCI_MANIFEST, manifest), tag: `${subject.digest.replace(':', '-')}.sig`};
}

export const EMPTY_JSON = Buffer.from('{}');

/** An OCI 1.1 artifact about `subject`: empty config, one layer of `artifactType`, `subject` and `artifactType` set. */
export function buildReferrer(subject: Descriptor, artifactType: string, content: string): BuiltManifest & {artifactType: string; annotations: Record<string, string>} {
  const layer = Buffer.from(content);
  const annotations = {'org.opencontainers.image.created': '2024-01-02T03:04:05Z'};
  const manifest = Buffer.from(
    JSON.stringify({schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType, config: descriptorOf(OCI_EMPTY, EMPTY_JSON, {data: EMPTY_JSON.toString('base64')}), layers: [descriptorOf(artifactType, layer)], subject: {mediaType: subject.mediaType, digest: subject.digest, size: subject.size}, annotations}),
  );
  return {blobs: [EMPTY_JSON, layer], manifest, mediaType: OCI_MANIFEST, digest: sha256(manifest), descriptor: descriptorOf(OCI_MANIFEST, manifest), artifactType, annotations};
}

/** An OCI layout holding each manifest under its ref name (a tag, or a full name such as example.com/app:1). */
export function writeLayout(dir: string, entries: Array<{built: BuiltManifest; name: string}>): string {
  mkdirSync(path.join(dir, 'blobs', 'sha256'), {recursive: true});
  for (const {built} of entries) for (const blob of [...built.blobs, built.manifest]) writeFileSync(path.join(dir, 'blobs', 'sha256', sha256(blob).slice(7)), blob);
  writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}));
  writeFileSync(path.join(dir, 'index.json'), JSON.stringify({schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries.map(({built, name}) => ({...built.descriptor, annotations: {'org.opencontainers.image.ref.name': name}}))}));
  return dir;
}

/** The manifest digests an OCI layout's index.json lists (what a pull into oci:DIR wrote). */
export function layoutDigests(dir: string): string[] {
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as {manifests: Descriptor[]};
  return index.manifests.map((m) => m.digest);
}

// ---------------------------------------------------------------------------------------------
// A raw distribution-API client (neither ferry nor skopeo)
// ---------------------------------------------------------------------------------------------

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export async function request(url: string, opts: {method?: string; headers?: Record<string, string>; body?: Buffer; ca?: Buffer} = {}): Promise<RawResponse> {
  return await new Promise<RawResponse>((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = {...opts.headers};
    if (opts.body !== undefined) headers['Content-Length'] = String(opts.body.length);
    const req = lib.request(u, {method: opts.method ?? 'GET', headers, agent: false, ...(opts.ca ? {ca: opts.ca} : {})}, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts)}));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface RawTarget {
  /** http(s)://127.0.0.1:PORT */
  url: string;
  /** Authorization header value for every call (Basic, or a Bearer token fetched beforehand). */
  authorization?: string;
  ca?: Buffer;
}

/** Uploads blobs (POST, then PUT ?digest= with the body: what distribution 2.8 honours) and the manifest under `reference`. */
export async function rawPush(target: RawTarget, repository: string, reference: string, built: Pick<BuiltManifest, 'blobs' | 'manifest' | 'mediaType'>): Promise<void> {
  const headers = target.authorization ? {Authorization: target.authorization} : {};
  const opts = target.ca ? {ca: target.ca} : {};
  for (const blob of built.blobs) {
    const start = await request(`${target.url}/v2/${repository}/blobs/uploads/`, {method: 'POST', headers, body: Buffer.alloc(0), ...opts});
    if (start.status !== 202) throw new Error(`POST upload for ${repository}: ${start.status} ${start.body.toString()}`);
    const location = new URL(String(start.headers.location), target.url);
    location.searchParams.set('digest', sha256(blob));
    const put = await request(location.toString(), {method: 'PUT', headers: {...headers, 'Content-Type': 'application/octet-stream'}, body: blob, ...opts});
    if (put.status !== 201) throw new Error(`PUT blob for ${repository}: ${put.status} ${put.body.toString()}`);
  }
  const res = await request(`${target.url}/v2/${repository}/manifests/${reference}`, {method: 'PUT', headers: {...headers, 'Content-Type': built.mediaType}, body: built.manifest, ...opts});
  if (res.status !== 201) throw new Error(`PUT manifest ${repository}:${reference}: ${res.status} ${res.body.toString()}`);
}

/** A manifest as the registry serves it (GET with every manifest type accepted); undefined on 404. */
export async function rawManifest(target: RawTarget, repository: string, reference: string): Promise<{bytes: Buffer; mediaType: string; digest: string} | undefined> {
  const res = await request(`${target.url}/v2/${repository}/manifests/${reference}`, {headers: {Accept: MANIFEST_ACCEPT, ...(target.authorization ? {Authorization: target.authorization} : {})}, ...(target.ca ? {ca: target.ca} : {})});
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`GET manifest ${repository}:${reference}: ${res.status} ${res.body.toString()}`);
  return {bytes: res.body, mediaType: String(res.headers['content-type']), digest: String(res.headers['docker-content-digest'])};
}

/** A bearer token straight from a Docker token server (GET, Basic credentials). */
export async function fetchToken(realm: string, service: string, scope: string, credentials?: {username: string; password: string}): Promise<string> {
  const url = new URL(realm);
  url.searchParams.set('service', service);
  url.searchParams.set('scope', scope);
  const res = await request(url.toString(), credentials ? {headers: {Authorization: `Basic ${b64(`${credentials.username}:${credentials.password}`)}`}} : {});
  if (res.status !== 200) throw new Error(`token: ${res.status} ${res.body.toString()}`);
  return (JSON.parse(res.body.toString()) as {token: string}).token;
}

export const basic = (c: {username: string; password: string}): string => `Basic ${b64(`${c.username}:${c.password}`)}`;

/** docker config.json with `auths` for one host. */
export function writeDockerConfig(sandbox: Sandbox, config: Record<string, unknown>): void {
  writeFileSync(sandbox.configFile, JSON.stringify(config, null, 2), {mode: 0o600});
}

export function readDockerConfig(sandbox: Sandbox): Record<string, unknown> {
  return JSON.parse(readFileSync(sandbox.configFile, 'utf8')) as Record<string, unknown>;
}
