import {spawn, spawnSync, type ChildProcess} from 'node:child_process';
import {mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync, chmodSync, symlinkSync, createReadStream, openSync, closeSync, readFileSync} from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

/**
 * Private instances of the real peers for interop tests: each on its own unix socket and temp root,
 * stopped by its own pid in teardown (never pkill). /usr/bin/docker is called explicitly because a
 * newer client may shadow it on PATH.
 */
export const DOCKER = '/usr/bin/docker';

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

function runRaw(cmd: string, args: string[], opts: {input?: Buffer | string; env?: NodeJS.ProcessEnv} = {}): RunResult {
  const r = spawnSync(cmd, args, {input: opts.input ?? '', env: opts.env ?? process.env, maxBuffer: 1 << 30, encoding: 'buffer'});
  return {status: r.status, stdout: r.stdout?.toString('utf8') ?? '', stderr: r.stderr?.toString('utf8') ?? (r.error ? String(r.error) : '')};
}

function runOk(cmd: string, args: string[], opts: {input?: Buffer | string; env?: NodeJS.ProcessEnv} = {}): string {
  const r = runRaw(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

async function waitFor(check: () => boolean, what: string, child: ChildProcess, logFile: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited early (${child.exitCode}); see ${logFile}`);
    if (check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not become ready in ${timeoutMs} ms; see ${logFile}`);
}

async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

function tempRoot(prefix: string): string {
  // Short paths: unix socket paths are limited to ~107 bytes.
  return mkdtempSync(path.join('/tmp', prefix));
}

export interface Dockerd {
  sock: string;
  host: string;
  /** The daemon's private temp root (data, exec root, client config). */
  root: string;
  docker(args: string[], opts?: {input?: Buffer | string}): string;
  dockerRaw(args: string[], opts?: {input?: Buffer | string}): RunResult;
  stop(): Promise<void>;
}

export interface DockerdOptions {
  /** Extra dockerd flags (e.g. `--experimental`, `--insecure-registry 127.0.0.1:5000`). */
  extraArgs?: string[];
}

export async function startDockerd(options: DockerdOptions = {}): Promise<Dockerd> {
  const root = tempRoot('fdk-');
  const sock = path.join(root, 'docker.sock');
  const host = `unix://${sock}`;
  const logFile = path.join(root, 'dockerd.log');
  const child = spawn(
    'dockerd',
    ['--storage-driver', 'vfs', '--iptables=false', '--ip6tables=false', '--bridge=none', '--ip-forward=false', '--ip-masq=false', '-H', host, '--data-root', path.join(root, 'data'), '--exec-root', path.join(root, 'exec'), '--pidfile', path.join(root, 'docker.pid'), ...(options.extraArgs ?? [])],
    {stdio: ['ignore', 'ignore', 'ignore'], detached: false},
  );
  const env = {...process.env, DOCKER_HOST: host, DOCKER_CONFIG: path.join(root, 'client')};
  const dockerRaw = (args: string[], opts: {input?: Buffer | string} = {}): RunResult => runRaw(DOCKER, args, {...opts, env});
  const docker = (args: string[], opts: {input?: Buffer | string} = {}): string => {
    const r = dockerRaw(args, opts);
    if (r.status !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
    return r.stdout;
  };
  const stop = async (): Promise<void> => {
    await stopChild(child);
    // dockerd's own containerd child exits with it; its mounts (vfs) are plain dirs.
    rmSync(root, {recursive: true, force: true});
  };
  try {
    await waitFor(() => dockerRaw(['version', '--format', '{{.Server.Version}}']).status === 0, 'dockerd', child, logFile);
  } catch (e) {
    await stop();
    throw e;
  }
  return {sock, host, root, docker, dockerRaw, stop};
}

export interface Containerd {
  address: string;
  ctr(args: string[], opts?: {input?: Buffer | string}): string;
  ctrRaw(args: string[], opts?: {input?: Buffer | string}): RunResult;
  stop(): Promise<void>;
}

export async function startContainerd(): Promise<Containerd> {
  const root = tempRoot('fcd-');
  const address = path.join(root, 'containerd.sock');
  const config = path.join(root, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = "${root}/root"`,
      `state = "${root}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${address}"`,
      '[ttrpc]',
      `  address = "${address}.ttrpc"`,
      '[debug]',
      `  address = "${root}/debug.sock"`,
      '',
    ].join('\n'),
  );
  const child = spawn('containerd', ['--config', config], {stdio: ['ignore', 'ignore', 'ignore']});
  const ctrRaw = (args: string[], opts: {input?: Buffer | string} = {}): RunResult => runRaw('ctr', ['--address', address, ...args], opts);
  const ctr = (args: string[], opts: {input?: Buffer | string} = {}): string => {
    const r = ctrRaw(args, opts);
    if (r.status !== 0) throw new Error(`ctr ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
    return r.stdout;
  };
  const stop = async (): Promise<void> => {
    await stopChild(child);
    rmSync(root, {recursive: true, force: true});
  };
  try {
    await waitFor(() => ctrRaw(['version']).status === 0, 'containerd', child, root);
  } catch (e) {
    await stop();
    throw e;
  }
  return {address, ctr, ctrRaw, stop};
}

export interface Sandbox {
  root: string;
  run(args: string[], opts?: {input?: Buffer | string}): string;
  runRaw(args: string[], opts?: {input?: Buffer | string}): RunResult;
  cleanup(): Promise<void>;
}

function sandbox(tool: 'podman' | 'buildah'): Sandbox {
  const root = tempRoot(`f${tool.slice(0, 2)}-`);
  const base = ['--root', path.join(root, 'root'), '--runroot', path.join(root, 'run'), '--storage-driver', 'vfs'];
  const env = {...process.env, TMPDIR: root, XDG_RUNTIME_DIR: path.join(root, 'xdg'), XDG_CONFIG_HOME: path.join(root, 'cfg'), XDG_DATA_HOME: path.join(root, 'data')};
  mkdirSync(env.XDG_RUNTIME_DIR, {recursive: true});
  const runRawHere = (args: string[], opts: {input?: Buffer | string} = {}): RunResult => runRaw(tool, [...base, ...args], {...opts, env});
  return {
    root,
    runRaw: runRawHere,
    run: (args, opts = {}) => {
      const r = runRawHere(args, opts);
      if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
      return r.stdout;
    },
    cleanup: async () => {
      rmSync(root, {recursive: true, force: true});
    },
  };
}

export function makePodman(): Sandbox {
  return sandbox('podman');
}

export function makeBuildah(): Sandbox {
  return sandbox('buildah');
}

export type LayerFiles = Record<string, string | {content: string; mode?: number}>;

/**
 * A small runnable image: Debian's static busybox as /bin/busybox (+ /bin/sh, /bin/cat, /bin/ls links)
 * in the first layer, then one layer per element of `layers`, committed with buildah (vfs) and written
 * as a legacy docker-archive named `name`. Built at test time: busybox is GPL and never committed.
 */
export async function buildBusyboxArchive(out: string, name: string, layers: LayerFiles[] = []): Promise<string> {
  const buildah = makeBuildah();
  const work = mkdtempSync(path.join(os.tmpdir(), 'ferry-bb-'));
  try {
    const base = path.join(work, 'base');
    mkdirSync(path.join(base, 'bin'), {recursive: true});
    copyFileSync('/bin/busybox', path.join(base, 'bin', 'busybox'));
    chmodSync(path.join(base, 'bin', 'busybox'), 0o755);
    for (const applet of ['sh', 'cat', 'ls', 'stat', 'sha256sum', 'find', 'readlink']) symlinkSync('busybox', path.join(base, 'bin', applet));
    let image = 'localhost/ferry-bb-base:0';
    let ctr = buildah.run(['from', 'scratch']).trim();
    buildah.run(['add', ctr, base, '/']);
    buildah.run(['config', '--cmd', '["/bin/sh"]', '--env', 'PATH=/bin', ctr]);
    buildah.run(['commit', '-q', ctr, image]);
    for (const [i, files] of layers.entries()) {
      const dir = path.join(work, `layer${i}`);
      mkdirSync(dir, {recursive: true});
      for (const [rel, spec] of Object.entries(files)) {
        const file = path.join(dir, rel);
        mkdirSync(path.dirname(file), {recursive: true});
        const {content, mode} = typeof spec === 'string' ? {content: spec, mode: 0o644} : {content: spec.content, mode: spec.mode ?? 0o644};
        writeFileSync(file, content);
        chmodSync(file, mode);
      }
      ctr = buildah.run(['from', image]).trim();
      buildah.run(['add', ctr, dir, '/']);
      image = `localhost/ferry-bb-base:${i + 1}`;
      buildah.run(['commit', '-q', ctr, image]);
    }
    buildah.run(['push', '-q', image, `docker-archive:${out}:${name}`]);
    return out;
  } finally {
    rmSync(work, {recursive: true, force: true});
    await buildah.cleanup();
  }
}

/** One HTTP exchange over a unix socket (the Docker Engine API and podman's compat API speak this). */
export interface SocketResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * A request to an API server on a unix socket with Node's http client: no curl, no TCP port. `body`
 * may be a file path to stream (for image archives) or bytes.
 */
export function socketRequest(sock: string, method: string, urlPath: string, opts: {body?: Buffer | string; bodyFile?: string; headers?: Record<string, string>; timeoutMs?: number} = {}): Promise<SocketResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({socketPath: sock, method, path: urlPath, headers: {Host: 'localhost', ...opts.headers}}, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks)}));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(opts.timeoutMs ?? 120_000, () => req.destroy(new Error(`${method} ${urlPath} on ${sock}: timed out`)));
    if (opts.bodyFile !== undefined) {
      const src = createReadStream(opts.bodyFile);
      src.on('error', (e) => req.destroy(e));
      src.pipe(req);
    } else req.end(opts.body);
  });
}

async function waitForAsync(check: () => Promise<boolean>, what: string, child: ChildProcess, logFile: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited early (${child.exitCode}); see ${logFile}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not become ready in ${timeoutMs} ms; see ${logFile}`);
}

export interface PodmanService {
  sock: string;
  /** unix://<sock>, for DOCKER_HOST or CONTAINER_HOST. */
  host: string;
  /** Private temp root: storage, run root, libpod tmp, XDG dirs, log. */
  root: string;
  /** The podman CLI on the service's own storage, to judge what the API did. */
  podman(args: string[], opts?: {input?: Buffer | string}): string;
  podmanRaw(args: string[], opts?: {input?: Buffer | string}): RunResult;
  stop(): Promise<void>;
}

/**
 * `podman system service` (Docker-compatible and libpod REST API) on a private unix socket, with its
 * own vfs storage, libpod tmp dir and XDG/TMPDIR, so it shares nothing with other podman runs. Ready
 * when `GET /_ping` answers 200. The CLI gets the same global flags and environment: with different
 * ones it would open another store and see nothing the service loaded.
 */
export async function startPodmanService(): Promise<PodmanService> {
  const root = tempRoot('fps-');
  const sock = path.join(root, 'podman.sock');
  const host = `unix://${sock}`;
  const logFile = path.join(root, 'podman-service.log');
  const global = ['--root', path.join(root, 'root'), '--runroot', path.join(root, 'run'), '--storage-driver', 'vfs', '--tmpdir', path.join(root, 'libpod'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
  const env = {...process.env, TMPDIR: path.join(root, 'tmp'), XDG_RUNTIME_DIR: path.join(root, 'xdg'), XDG_CONFIG_HOME: path.join(root, 'cfg'), XDG_DATA_HOME: path.join(root, 'data')};
  for (const d of [env.TMPDIR, env.XDG_RUNTIME_DIR]) mkdirSync(d, {recursive: true});
  const log = openSync(logFile, 'a');
  // --time=0: never exit for idleness; the test's teardown stops it by pid.
  const child = spawn('podman', [...global, 'system', 'service', '--time=0', host], {stdio: ['ignore', log, log], env});
  closeSync(log);
  const podmanRaw = (args: string[], opts: {input?: Buffer | string} = {}): RunResult => runRaw('podman', [...global, ...args], {...opts, env});
  const podman = (args: string[], opts: {input?: Buffer | string} = {}): string => {
    const r = podmanRaw(args, opts);
    if (r.status !== 0) throw new Error(`podman ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
    return r.stdout;
  };
  const stop = async (): Promise<void> => {
    await stopChild(child);
    rmSync(root, {recursive: true, force: true});
  };
  try {
    await waitForAsync(async () => (await socketRequest(sock, 'GET', '/_ping', {timeoutMs: 2_000})).status === 200, 'podman system service', child, logFile);
  } catch (e) {
    await stop();
    throw e;
  }
  return {sock, host, root, podman, podmanRaw, stop};
}

/**
 * `docker build` with the classic builder (DOCKER_BUILDKIT=0) against a private dockerd; `squash`
 * needs a daemon started with `--experimental`. RUN steps get no network. Returns the image ID.
 */
export function dockerBuild(dockerd: Dockerd, contextDir: string, tag: string, opts: {squash?: boolean} = {}): {id: string; output: string} {
  const iidFile = path.join(dockerd.root, `iid-${process.pid}-${Date.now()}`);
  const env = {...process.env, DOCKER_HOST: dockerd.host, DOCKER_CONFIG: path.join(dockerd.root, 'client'), DOCKER_BUILDKIT: '0'};
  const args = ['build', '--network', 'none', '--iidfile', iidFile, ...(opts.squash === true ? ['--squash'] : []), '-t', tag, contextDir];
  const output = runOk(DOCKER, args, {env});
  const id = readFileSync(iidFile, 'utf8').trim();
  rmSync(iidFile, {force: true});
  return {id, output};
}

export {runOk, runRaw};
