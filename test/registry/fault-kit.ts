/**
 * Shared by test/registry/{faults,hostile,restart}.test.ts: images built at test time with digests
 * computed here (never taken from ferry), the built CLI run asynchronously (the fake registry lives in
 * this process: a spawnSync'd ferry would wait forever for it) in a sandbox of its own (HOME,
 * DOCKER_CONFIG, FERRY_STATE_DIR, FERRY_TMPDIR, TMPDIR), and what a run left behind.
 */
import {spawn, spawnSync, type ChildProcess} from 'node:child_process';
import type {Dirent} from 'node:fs';
import {createHash, randomFillSync} from 'node:crypto';
import {closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, writeFileSync, writeSync} from 'node:fs';
import http from 'node:http';
import type {AddressInfo} from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {encodeHeader, END_OF_ARCHIVE, padding} from '../../src/tar/write.js';
import {requireBuiltCli, ROOT} from '../helpers/cli.js';
import {MANIFEST_MEDIA_TYPES, type FakeRegistry, type RequestRecord} from '../helpers/fake-registry.js';
import {leaksInternals, lines} from '../hostile/run.js';

export const MiB = 1 << 20;
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
export const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

export interface BuiltBlob {
  digest: string;
  size: number;
  /** The blob's file in the image's OCI layout. */
  file: string;
}

export interface BuiltImage {
  /** An OCI image layout directory holding the image (index.json names it by `tag`). */
  layout: string;
  tag: string;
  manifest: Buffer;
  manifestDigest: string;
  mediaType: string;
  config: Buffer;
  configDigest: string;
  layers: BuiltBlob[];
}

function blobPath(layout: string, digest: string): string {
  return path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

/**
 * A layer: a tar holding one file of `size` random bytes, written to `file` in 1 MiB pieces and
 * hashed on the way (a 256 MiB layer never sits in memory). Uncompressed, so its digest is its diffID.
 */
function writeRandomLayer(file: string, name: string, size: number): {digest: string; size: number} {
  const hash = createHash('sha256');
  const fd = openSync(file, 'w');
  let written = 0;
  const put = (bytes: Buffer): void => {
    hash.update(bytes);
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    written += bytes.length;
  };
  try {
    put(encodeHeader({name, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 1_700_000_000}));
    const piece = Buffer.allocUnsafe(Math.min(size, MiB) || 1);
    for (let left = size; left > 0; ) {
      const n = Math.min(left, piece.length);
      randomFillSync(piece, 0, n);
      put(piece.subarray(0, n));
      left -= n;
    }
    put(padding(size));
    put(END_OF_ARCHIVE);
  } finally {
    closeSync(fd);
  }
  return {digest: `sha256:${hash.digest('hex')}`, size: written};
}

/**
 * An image of random layers (`layerSizes` bytes of file content each) as an OCI layout in `layout`,
 * every digest computed here. `docker` gives a Docker schema2 manifest instead of an OCI one.
 */
export function buildImage(layout: string, layerSizes: number[], options: {tag?: string; docker?: boolean; extraLayerMediaType?: string} = {}): BuiltImage {
  const tag = options.tag ?? 'v1';
  mkdirSync(path.join(layout, 'blobs', 'sha256'), {recursive: true});
  const layers: BuiltBlob[] = layerSizes.map((size, i) => {
    const temp = path.join(layout, `layer-${i}.tmp`);
    const built = writeRandomLayer(temp, `payload-${i}.bin`, size);
    const file = blobPath(layout, built.digest);
    renameSync(temp, file);
    return {...built, file};
  });
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {Cmd: ['/bin/sh']},
      rootfs: {type: 'layers', diff_ids: layers.map((l) => l.digest)},
      history: layers.map((_, i) => ({created: '2024-01-01T00:00:00Z', created_by: `layer ${i}`})),
    }),
  );
  const configDigest = sha256(config);
  writeFileSync(blobPath(layout, configDigest), config);
  const mediaType = options.docker ? MANIFEST_MEDIA_TYPES.dockerManifest : MANIFEST_MEDIA_TYPES.ociManifest;
  const layerType = options.extraLayerMediaType ?? (options.docker ? 'application/vnd.docker.image.rootfs.diff.tar' : OCI_LAYER);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: {mediaType: options.docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length},
      layers: layers.map((l) => ({mediaType: layerType, digest: l.digest, size: l.size})),
    }),
  );
  const manifestDigest = sha256(manifest);
  writeFileSync(blobPath(layout, manifestDigest), manifest);
  writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}));
  writeFileSync(path.join(layout, 'index.json'), JSON.stringify({schemaVersion: 2, mediaType: MANIFEST_MEDIA_TYPES.ociIndex, manifests: [{mediaType, digest: manifestDigest, size: manifest.length, annotations: {'org.opencontainers.image.ref.name': tag}}]}));
  return {layout, tag, manifest, manifestDigest, mediaType, config, configDigest, layers};
}

/** Puts an image's blobs and manifest into the fake registry under `repo:tag` (the fake computes digests itself). */
export async function seedFake(fake: FakeRegistry, repo: string, image: BuiltImage, tag = image.tag): Promise<void> {
  for (const l of image.layers) {
    const digest = await fake.putBlob(repo, readFileSync(l.file));
    if (digest !== l.digest) throw new Error(`fake stored ${l.digest} as ${digest}`);
  }
  if ((await fake.putBlob(repo, image.config)) !== image.configDigest) throw new Error('config digest');
  if (fake.putManifest(repo, tag, image.manifest, image.mediaType) !== image.manifestDigest) throw new Error('manifest digest');
}

/** A private world for one ferry run: HOME, docker and podman config, push journal, temp dirs; `out/` for results. */
export interface Sandbox {
  root: string;
  out: string;
  state: string;
  temp: string;
  env: NodeJS.ProcessEnv;
  /** Files under root outside out/ and state/ (the push journal, checked on its own). */
  strays(): string[];
  /** Everything under out/, relative to it. */
  outputs(): string[];
}

/** Every path under `root`, relative to `base`; a file that vanishes while listing (a rename) is skipped. */
export function listFiles(root: string, base = root): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  let entries: Dirent[];
  try {
    entries = readdirSync(root, {withFileTypes: true});
  } catch {
    return [];
  }
  for (const entry of entries) {
    const full = path.join(root, entry.name);
    out.push(path.relative(base, full));
    if (entry.isDirectory()) out.push(...listFiles(full, base));
  }
  return out.sort();
}

export function makeSandbox(parent: string, name: string): Sandbox {
  const root = mkdtempSync(path.join(parent, `${name.replace(/[^\w-]+/g, '-').slice(0, 40)}-`));
  const dirs = {out: path.join(root, 'out'), state: path.join(root, 'state'), temp: path.join(root, 'tmp'), home: path.join(root, 'home')};
  for (const d of Object.values(dirs)) mkdirSync(d);
  const env: NodeJS.ProcessEnv = {
    HOME: dirs.home,
    DOCKER_CONFIG: path.join(dirs.home, '.docker'),
    REGISTRY_AUTH_FILE: path.join(dirs.home, 'auth.json'),
    XDG_CONFIG_HOME: path.join(dirs.home, '.config'),
    XDG_STATE_HOME: path.join(dirs.home, '.local', 'state'),
    XDG_RUNTIME_DIR: path.join(dirs.home, 'run'),
    FERRY_STATE_DIR: dirs.state,
    FERRY_TMPDIR: dirs.temp,
    TMPDIR: dirs.temp,
  };
  return {
    root,
    out: dirs.out,
    state: dirs.state,
    temp: dirs.temp,
    env,
    // The journal (state/) is checked on its own; temp files, config files or anything else are strays.
    strays: () => listFiles(root).filter((f) => !(f === 'out' || f.startsWith(`out${path.sep}`) || f === 'state' || f.startsWith(`state${path.sep}`) || f === 'tmp' || f === 'home')),
    outputs: () => listFiles(dirs.out),
  };
}

export interface FerryRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunningFerry {
  child: ChildProcess;
  pid: number;
  done: Promise<FerryRun>;
}

/** Starts the built CLI without blocking the event loop; killed by its own pid after `timeoutMs`. */
export function startFerry(args: string[], options: {env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number} = {}): RunningFerry {
  const started = Date.now();
  const env: NodeJS.ProcessEnv = {...process.env, FERRY_DEBUG: '', ...options.env};
  for (const k of Object.keys(env)) if (k.startsWith('REGISTRY_') && k !== 'REGISTRY_AUTH_FILE') delete env[k];
  const child = spawn(process.execPath, [requireBuiltCli(), ...args], {cwd: options.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe']});
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => err.push(c));
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  }, options.timeoutMs ?? 90_000);
  const done = new Promise<FerryRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({status, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms: Date.now() - started});
    });
  });
  if (child.pid === undefined) throw new Error('ferry did not start');
  return {child, pid: child.pid, done};
}

export function runFerry(args: string[], options: {env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number} = {}): Promise<FerryRun> {
  return startFerry(args, options).done;
}

/** Polls `ready` every few ms until it holds (true), the process ends or the time is up (false). */
export async function waitUntil(child: ChildProcess, ready: () => boolean, timeoutMs = 60_000, everyMs = 2): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (ready()) return true;
    if (child.exitCode !== null || child.signalCode !== null) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return false;
}

/** The one line a failed run printed (`ferry: …`): exactly one line on stderr, no stack, no JavaScript error. */
export function oneErrorLine(run: FerryRun): string {
  const all = lines(run.stderr);
  if (all.length !== 1 || !all[0]!.startsWith('ferry: ') || leaksInternals(run.stderr)) throw new Error(`expected exactly one "ferry: …" line on stderr, got:\n${run.stderr}`);
  return all[0]!;
}

/** When each request reached the fake (ms since the epoch), recorded as the fake logs it. */
export function stampLog(fake: FakeRegistry): Map<RequestRecord, number> {
  const times = new Map<RequestRecord, number>();
  const log = fake.log;
  const push = log.push.bind(log);
  log.push = (...records: RequestRecord[]): number => {
    for (const r of records) times.set(r, Date.now());
    return push(...records);
  };
  return times;
}

/**
 * A hostile front for a registry: an HTTP server on 127.0.0.1 that passes every request to `target`
 * (127.0.0.1:PORT) and its answer back, except what `answer` takes over (it returns true when it
 * answered) and the headers `rewrite` changes. Loopback only; stopped by stop().
 */
export interface Front {
  host: string;
  url: string;
  /** Requests it saw, method and path. */
  seen: string[];
  stop(): Promise<void>;
}

export interface FrontHooks {
  /** Answers a request itself (true) instead of passing it on. */
  answer?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
  /** Changes the headers of an answer passed back. */
  rewrite?: (req: http.IncomingMessage, status: number, headers: http.IncomingHttpHeaders) => void;
  /** Passes on only this many bytes of the request's body, then breaks both connections (undefined: all). */
  cut?: (req: http.IncomingMessage) => number | undefined;
}

export async function startFront(targetPort: number, hooks: FrontHooks): Promise<Front> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (hooks.answer?.(req, res)) {
      req.resume();
      return;
    }
    const upstream = http.request({host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers}, (up) => {
      const headers = {...up.headers};
      hooks.rewrite?.(req, up.statusCode ?? 502, headers);
      res.writeHead(up.statusCode ?? 502, headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    const cut = hooks.cut?.(req);
    if (cut === undefined) {
      req.pipe(upstream);
      return;
    }
    let passed = 0;
    req.on('data', (chunk: Buffer) => {
      if (passed >= cut) return;
      const part = chunk.subarray(0, cut - passed);
      passed += part.length;
      if (passed < cut) {
        upstream.write(part);
        return;
      }
      // The last bytes reach the registry, then both sides see the connection break.
      upstream.write(part, () => {
        upstream.destroy();
        req.socket.destroy();
      });
    });
    req.on('end', () => upstream.end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({host: '127.0.0.1', port: 0}, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    seen,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** What a pulled docker-archive holds, read with GNU tar and hashed here. */
export interface PulledArchive {
  /** index.json's manifest digest (Docker 25+ layout). */
  manifestDigest: string;
  /** sha256 of the manifest blob in the archive. */
  manifestBytesDigest: string;
  /** sha256 of each blob named by `digests`, as stored in the archive. */
  blobDigests: string[];
}

export function readPulled(archive: string, digests: string[]): PulledArchive {
  const index = JSON.parse(tarMember(archive, 'index.json').toString('utf8')) as {manifests: Array<{digest: string}>};
  const manifestDigest = index.manifests[0]!.digest;
  const hashMember = (digest: string): string => {
    const hash = createHash('sha256');
    const r = spawnSync('tar', ['-xOf', archive, `blobs/sha256/${digest.slice('sha256:'.length)}`], {maxBuffer: 1 << 30});
    if (r.status !== 0) return `missing: ${r.stderr.toString().trim()}`;
    hash.update(r.stdout);
    return `sha256:${hash.digest('hex')}`;
  };
  return {manifestDigest, manifestBytesDigest: hashMember(manifestDigest), blobDigests: digests.map(hashMember)};
}

/** Every file left beside a pull's destination (`.DEST.ferry-pull/`) and whether its bytes are right: a complete blob hashing to its name, or a part that is a prefix of its blob. */
export function leftovers(dest: string, blobs: BuiltBlob[]): Array<{name: string; right: boolean}> {
  const dir = path.join(path.dirname(dest), `.${path.basename(dest)}.ferry-pull`);
  return listFiles(dir).map((name) => {
    const m = /^sha256-([0-9a-f]{64})(\.part)?$/.exec(name);
    const blob = m ? blobs.find((b) => b.digest === `sha256:${m[1]}`) : undefined;
    if (!m || !blob) return {name, right: false};
    const bytes = readFileSync(path.join(dir, name));
    const truth = readFileSync(blob.file);
    return {name, right: m[2] ? bytes.length <= truth.length && truth.subarray(0, bytes.length).equals(bytes) : sha256(bytes) === blob.digest};
  });
}

/** A blob's member of a docker-archive or oci-archive: `tar -xOf`. */
export function tarMember(archive: string, member: string): Buffer {
  const r = spawnSync('tar', ['-xOf', archive, member], {maxBuffer: 1 << 30});
  if (r.status !== 0) throw new Error(`tar -xOf ${archive} ${member}: ${r.stderr.toString()}`);
  return r.stdout;
}

export const TMP_PARENT = os.tmpdir();
