import {spawn, spawnSync, type ChildProcess} from 'node:child_process';
import {mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync, chmodSync, symlinkSync} from 'node:fs';
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

export {runOk, runRaw};
