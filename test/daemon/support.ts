import {execFileSync, spawn} from 'node:child_process';
import {createHash} from 'node:crypto';
import {readFileSync, writeFileSync} from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import {expect} from 'vitest';
import {decompress as zstdDecompress} from 'zstd-napi';
import {requireBuiltCli, ROOT, type CliResult} from '../helpers/cli.js';
import {readTar} from '../helpers/real-world.js';
import {busyboxLayer, craftDockerArchive, type CraftLayer} from '../helpers/tree-model.js';

/**
 * What the daemon tests share: runnable busybox images crafted with Python (not ferry), an
 * archive reader of their own (manifest.json, config bytes, layer bytes: the facts docker save
 * and skopeo write), a tiny fake Engine API server for the answers no real daemon gives on demand,
 * and the one-line error check.
 */

export const sha256 = (b: Uint8Array | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The applets every crafted image links to busybox (RUN steps in the squash Dockerfile need the file tools). */
export const APPLETS = ['sh', 'cat', 'ls', 'find', 'stat', 'sha256sum', 'readlink', 'mkdir', 'rm', 'chmod', 'chown', 'ln', 'echo', 'touch', 'mv', 'test'];

export interface Crafted {
  file: string;
  tag: string;
  /** sha256 of the crafted config bytes: the image ID docker must report. */
  id: string;
  diffIds: string[];
}

/** A runnable image: busybox in the first layer, then `/etc/hello.txt` holding `hello`, then `more` layers. */
export function craftBusybox(file: string, tag: string, hello: string, more: CraftLayer[] = []): Crafted {
  const layers: CraftLayer[] = [busyboxLayer(APPLETS), [{path: 'etc/'}, {path: 'etc/hello.txt', content: hello}], ...more];
  const r = craftDockerArchive(file, tag, layers, {config: {Env: ['PATH=/bin'], Cmd: ['/bin/sh']}});
  return {file, tag, id: `sha256:${r.config}`, diffIds: r.diffIds};
}

const MERGE = String.raw`
import io, json, sys, tarfile
out_path, inputs = sys.argv[1], sys.argv[2:]
manifest = []
with tarfile.open(out_path, 'w', format=tarfile.PAX_FORMAT) as out:
    for n, path in enumerate(inputs):
        with tarfile.open(path) as tf:
            for m in tf.getmembers():
                data = tf.extractfile(m).read() if m.isfile() else None
                if m.name == 'manifest.json':
                    for item in json.loads(data):
                        item['Layers'] = ['i%d-%s' % (n, l) for l in item['Layers']]
                        manifest.append(item)
                    continue
                if m.name.startswith('layer'):
                    m.name = 'i%d-%s' % (n, m.name)
                out.addfile(m, io.BytesIO(data) if data is not None else None)
    data = json.dumps(manifest).encode()
    ti = tarfile.TarInfo('manifest.json'); ti.size = len(data)
    out.addfile(ti, io.BytesIO(data))
`;

/** One legacy docker-archive holding the images of several crafted ones, in that order (docker loads them in manifest.json order). */
export function mergeDockerArchives(out: string, inputs: readonly string[]): string {
  execFileSync('python3', ['-c', MERGE, out, ...inputs]);
  return out;
}

export interface ArchiveImage {
  repoTags: string[];
  configDigest: string;
  /** sha256 of each layer as uncompressed tar (what rootfs.diff_ids and docker's RootFS.Layers say). */
  diffIds: string[];
  /** How each layer is stored: none, gzip or zstd (by magic bytes). */
  compressions: string[];
}

function uncompressed(b: Buffer): {bytes: Buffer; compression: string} {
  if (b[0] === 0x1f && b[1] === 0x8b) return {bytes: zlib.gunzipSync(b), compression: 'gzip'};
  if (b.readUInt32LE(0) === 0xfd2fb528) return {bytes: Buffer.from(zstdDecompress(b)), compression: 'zstd'};
  return {bytes: b, compression: 'none'};
}

/** Every image of a docker-archive (legacy or Docker 25+ layout) through its manifest.json, read with a tar reader of the tests' own. */
export function dockerArchiveFacts(file: string): ArchiveImage[] {
  const members = new Map(readTar(readFileSync(file)).map((m) => [m.name.replace(/\/$/, ''), m]));
  const body = (name: string, depth = 0): Buffer => {
    const m = members.get(name);
    if (!m) throw new Error(`${file}: no member ${name}`);
    if (m.type === '2' && depth < 8) return body(path.posix.normalize(path.posix.join(path.posix.dirname(name), m.linkname)), depth + 1);
    return m.data;
  };
  const manifest = JSON.parse(body('manifest.json').toString('utf8')) as Array<{Config: string; RepoTags: string[] | null; Layers: string[]}>;
  return manifest.map((item) => {
    const layers = item.Layers.map((l) => uncompressed(body(l)));
    return {repoTags: item.RepoTags ?? [], configDigest: sha256(body(item.Config)), diffIds: layers.map((l) => sha256(l.bytes)), compressions: layers.map((l) => l.compression)};
  });
}

/** What docker (or the podman service's CLI) says about an image. */
export interface Inspected {
  Id: string;
  RepoTags: string[];
  RootFS: {Layers: string[]};
}

export function inspectWith(run: (args: string[]) => string, name: string): Inspected {
  const [img] = JSON.parse(run(['image', 'inspect', name])) as Inspected[];
  if (!img) throw new Error(`no image ${name}`);
  return {Id: img.Id.startsWith('sha256:') ? img.Id : `sha256:${img.Id}`, RepoTags: img.RepoTags ?? [], RootFS: {Layers: img.RootFS.Layers}};
}

/** A failure as ferry must report it: exit 1 and exactly one line on stderr, `ferry: …`, containing each part. */
export function expectOneLineError(r: CliResult, ...parts: string[]): string {
  expect(r.status, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(1);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  const line = lines[0]!;
  expect(line.startsWith('ferry: '), line).toBe(true);
  for (const part of parts) expect(line).toContain(part);
  return line;
}

/**
 * The built CLI, without blocking this process (a fake daemon served from this process must answer
 * it): `env` is added to this process's environment, or, with `exactEnv`, is all of it (plus PATH);
 * `uid`/`gid` run it as another user.
 */
export function ferryAsync(args: string[], options: {env?: NodeJS.ProcessEnv; exactEnv?: boolean; uid?: number; gid?: number; timeoutMs?: number} = {}): Promise<CliResult> {
  const env = options.exactEnv ? {PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env} : {...process.env, FERRY_DEBUG: '', ...options.env};
  const child = spawn(process.execPath, [requireBuiltCli(), ...args], {env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...(options.uid !== undefined ? {uid: options.uid, gid: options.gid ?? options.uid} : {})});
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out);
      resolve({status, stdout: stdout.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes: stdout});
    });
  });
}

/** An environment with no daemon selection of the caller's leaking in (DOCKER_*, CONTAINER_HOST, XDG_RUNTIME_DIR). */
export function cleanEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(DOCKER_|CONTAINER_HOST|XDG_RUNTIME_DIR|FERRY_)/.test(k)) env[k] = v;
  return {...env, HOME: home, DOCKER_CONFIG: path.join(home, '.docker'), ...extra};
}

// ---- A fake Docker Engine API on a unix socket ----

export interface FakeRequest {
  method: string;
  url: string;
}

export interface FakeDaemonOptions {
  /** What /_ping's API-Version header and /version say. */
  apiVersion?: string;
  /**
   * The JSON message stream /images/load answers (after reading the whole body). A message with
   * `tag: [name, id]` also sets that name in the fake's image table, as a real load would.
   */
  loadMessages?: Array<{stream?: string; error?: string; errorDetail?: {message: string}; tag?: [string, string]}>;
  /** Images present from the start: name → ID. */
  images?: Record<string, string>;
  /** Keep the bytes of each /images/load upload here (the last one wins). */
  uploadTo?: string;
}

export interface FakeDaemon {
  /** The socket path, or 127.0.0.1:PORT. */
  sock: string;
  requests: FakeRequest[];
  /** name → image ID, as the fake's API answers it. */
  images: Map<string, string>;
  close(): Promise<void>;
}

/** Enough of the Engine API to reach ferry's error and rollback paths (_ping, version, images/{name}/json, load, tag, delete), on a unix socket or a loopback port. */
export async function startFakeDaemon(sock: string | {port: number}, options: FakeDaemonOptions = {}): Promise<FakeDaemon> {
  const apiVersion = options.apiVersion ?? '1.41';
  const requests: FakeRequest[] = [];
  // Names as docker keeps them: docker.io/library/ and docker.io/ left out, whatever the client sent.
  const familiar = (name: string): string => name.replace(/^docker\.io\/(library\/(?=[^/]+$))?/, '');
  const images = new Map(Object.entries(options.images ?? {}).map(([k, v]) => [familiar(k), v]));
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({method: req.method ?? '', url: req.url ?? ''});
      const url = new URL(req.url ?? '/', 'http://fake');
      const route = url.pathname.replace(/^\/v\d+\.\d+/, '');
      const json = (status: number, body: unknown): void => {
        res.writeHead(status, {'Content-Type': 'application/json', 'API-Version': apiVersion});
        res.end(JSON.stringify(body));
      };
      if (route === '/_ping') {
        res.writeHead(200, {'API-Version': apiVersion, 'Content-Type': 'text/plain'});
        res.end('OK');
        return;
      }
      if (route === '/version') return json(200, {Version: 'fake-1.0', ApiVersion: apiVersion, Components: [{Name: 'Engine'}]});
      if (req.method === 'POST' && route === '/images/load') {
        if (options.uploadTo) writeFileSync(options.uploadTo, Buffer.concat(chunks));
        res.writeHead(200, {'Content-Type': 'application/json'});
        for (const m of options.loadMessages ?? []) {
          if (m.tag) images.set(m.tag[0], m.tag[1]);
          const {tag: _tag, ...message} = m;
          res.write(`${JSON.stringify(message)}\n`);
        }
        res.end();
        return;
      }
      const named = /^\/images\/(.+?)(\/json|\/tag)?$/.exec(route);
      if (named) {
        const name = familiar(decodeURIComponent(named[1]!));
        if (req.method === 'GET' && named[2] === '/json') {
          const id = images.get(name);
          return id ? json(200, {Id: id, RepoTags: [...images].filter(([, v]) => v === id).map(([k]) => k)}) : json(404, {message: `No such image: ${name}`});
        }
        if (req.method === 'POST' && named[2] === '/tag') {
          images.set(familiar(`${url.searchParams.get('repo')}:${url.searchParams.get('tag')}`), name);
          return json(201, {});
        }
        if (req.method === 'DELETE' && named[2] === undefined) {
          if (!images.delete(name)) return json(404, {message: `No such image: ${name}`});
          return json(200, [{Untagged: name}]);
        }
      }
      json(404, {message: `fake daemon: no route ${req.method} ${url.pathname}`});
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (typeof sock === 'string') server.listen(sock, () => resolve());
    else server.listen(sock.port, '127.0.0.1', () => resolve());
  });
  return {
    sock: typeof sock === 'string' ? sock : `127.0.0.1:${sock.port}`,
    requests,
    images,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
