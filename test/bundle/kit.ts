/**
 * Shared pieces of the bundle and serve tests (test/bundle/*.test.ts): busybox images built at test
 * time with buildah and pushed with skopeo, an async runner for the CLI and the peers, and readers of
 * what the peers say (skopeo's digests, tar's member list). Expected values always come from skopeo,
 * tar, sha256sum or the bytes we built; never from ferry's own output.
 */
import {execAsync, type ExecOptions, type ExecResult} from '../helpers/exec.js';
import {createHash, randomBytes} from 'node:crypto';
import {chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {requireBuiltCli} from '../helpers/cli.js';
import {makeBuildah} from '../helpers/daemons.js';

export const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

export type Exec = ExecResult;

/** Runs a command without blocking the event loop; killed by its own pid after `timeoutMs`. */
export async function exec(cmd: string, args: string[], options: ExecOptions = {}): Promise<Exec> {
  return await execAsync(cmd, args, {timeoutMs: 150_000, ...options});
}

export async function execOk(cmd: string, args: string[], options: {env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number} = {}): Promise<string> {
  const r = await exec(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code ?? r.signal}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** The built CLI, run as a user would, asynchronously. */
export async function ferryAsync(args: string[], options: {env?: NodeJS.ProcessEnv; timeoutMs?: number} = {}): Promise<Exec> {
  return await exec(process.execPath, [requireBuiltCli(), ...args], {env: {...process.env, FERRY_DEBUG: '', ...options.env}, ...(options.timeoutMs ? {timeoutMs: options.timeoutMs} : {})});
}

export async function ferryOk(args: string[], options: {env?: NodeJS.ProcessEnv; timeoutMs?: number} = {}): Promise<Exec> {
  const r = await ferryAsync(args, options);
  if (r.code !== 0) throw new Error(`ferry ${args.join(' ')} failed (${r.code ?? r.signal}): ${r.stderr.trim()}`);
  return r;
}

/** A layer: files (text), or random bytes of a size under a path. */
export type LayerSpec = Record<string, string | {random: number}>;

/** What buildImages made: each archive, and the sha256 (hex) of every file it wrote into a layer, by path in the image. */
export interface BuiltImages {
  archives: Record<string, string>;
  files: Record<string, string>;
}

export interface ImageSpec {
  /** The name the docker-archive carries (`test/app-a:1`). */
  name: string;
  /** Layers on top of the shared busybox base. */
  layers: LayerSpec[];
}

/**
 * Builds images that share one busybox base layer (the same bytes in every image: built once),
 * each with its own layers on top, and writes each as a legacy docker-archive `<dir>/<key>.tar`.
 * Busybox is GPL: built at test time, never committed.
 */
export async function buildImages(dir: string, specs: Record<string, ImageSpec>): Promise<BuiltImages> {
  const buildah = makeBuildah();
  const work = mkdtempSync(path.join(os.tmpdir(), 'ferry-bbi-'));
  const out: BuiltImages = {archives: {}, files: {}};
  try {
    const base = path.join(work, 'base');
    mkdirSync(path.join(base, 'bin'), {recursive: true});
    copyFileSync('/bin/busybox', path.join(base, 'bin', 'busybox'));
    chmodSync(path.join(base, 'bin', 'busybox'), 0o755);
    for (const applet of ['sh', 'cat', 'ls', 'sha256sum']) symlinkSync('busybox', path.join(base, 'bin', applet));
    const baseImage = 'localhost/ferry-bundle-base:0';
    const ctr = buildah.run(['from', 'scratch']).trim();
    buildah.run(['add', ctr, base, '/']);
    buildah.run(['config', '--cmd', '["/bin/sh"]', '--env', 'PATH=/bin', ctr]);
    buildah.run(['commit', '-q', ctr, baseImage]);
    let n = 0;
    for (const [key, spec] of Object.entries(specs)) {
      let image = baseImage;
      for (const layer of spec.layers) {
        const layerDir = path.join(work, `layer${n}`);
        for (const [rel, content] of Object.entries(layer)) {
          const file = path.join(layerDir, rel);
          mkdirSync(path.dirname(file), {recursive: true});
          const bytes = typeof content === 'string' ? Buffer.from(content) : randomBytes(content.random);
          writeFileSync(file, bytes);
          out.files[`/${rel}`] = createHash('sha256').update(bytes).digest('hex');
        }
        const c = buildah.run(['from', image]).trim();
        buildah.run(['add', c, layerDir, '/']);
        image = `localhost/ferry-bundle-img:${n++}`;
        buildah.run(['commit', '-q', c, image]);
      }
      const file = path.join(dir, `${key}.tar`);
      buildah.run(['push', '-q', image, `docker-archive:${file}:${spec.name}`]);
      out.archives[key] = file;
    }
    return out;
  } finally {
    rmSync(work, {recursive: true, force: true});
    await buildah.cleanup();
  }
}

/**
 * A two-platform image (linux/amd64 runs busybox and prints /etc/arch.txt; linux/arm64 only carries
 * its files) as an OCI index, written by buildah into an OCI layout and copied with `skopeo copy
 * --all` to `ref` (a plain-HTTP registry).
 */
export async function pushMultiArch(ref: string): Promise<void> {
  const buildah = makeBuildah();
  const work = mkdtempSync(path.join(os.tmpdir(), 'ferry-bbm-'));
  try {
    const images: string[] = [];
    for (const arch of ['amd64', 'arm64']) {
      const root = path.join(work, arch);
      mkdirSync(path.join(root, 'bin'), {recursive: true});
      mkdirSync(path.join(root, 'etc'));
      copyFileSync('/bin/busybox', path.join(root, 'bin', 'busybox'));
      chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
      for (const applet of ['sh', 'cat']) symlinkSync('busybox', path.join(root, 'bin', applet));
      writeFileSync(path.join(root, 'etc', 'arch.txt'), `${arch}\n`);
      const ctr = buildah.run(['from', 'scratch']).trim();
      buildah.run(['add', ctr, root, '/']);
      buildah.run(['config', '--os', 'linux', '--arch', arch, '--cmd', '["/bin/sh"]', '--env', 'PATH=/bin', ctr]);
      buildah.run(['commit', '-q', ctr, `localhost/ferry-multi-${arch}:1`]);
      images.push(`localhost/ferry-multi-${arch}:1`);
    }
    buildah.run(['manifest', 'create', 'localhost/ferry-multi:1']);
    for (const [i, image] of images.entries()) buildah.run(['manifest', 'add', ...(i === 1 ? ['--arch', 'arm64'] : []), 'localhost/ferry-multi:1', `containers-storage:${image}`]);
    const layout = path.join(work, 'layout');
    buildah.run(['manifest', 'push', '-q', '--all', 'localhost/ferry-multi:1', `oci:${layout}:multi`]);
    await execOk('skopeo', ['copy', '-q', '--all', '--dest-tls-verify=false', `oci:${layout}:multi`, `docker://${ref}`]);
  } finally {
    rmSync(work, {recursive: true, force: true});
    await buildah.cleanup();
  }
}

/** skopeo copy of a docker-archive into a plain-HTTP registry (`--format oci` for an OCI manifest). */
export async function pushWithSkopeo(archive: string, ref: string, format?: 'oci' | 'v2s2'): Promise<void> {
  await execOk('skopeo', ['copy', '-q', '--dest-tls-verify=false', ...(format ? ['--format', format] : []), `docker-archive:${archive}`, `docker://${ref}`]);
}

export interface RawManifest {
  mediaType?: string;
  config: {digest: string; size: number};
  layers: Array<{digest: string; size: number; mediaType: string}>;
}

/** What skopeo says an image in a plain-HTTP registry (or any skopeo reference) is: its digest and raw manifest. */
export interface SkopeoImage {
  digest: string;
  raw: Buffer;
  manifest: RawManifest;
  /** `os/arch` from the config. */
  platform: string;
}

export async function skopeoImage(ref: string, flags: string[] = ref.startsWith('docker://') ? ['--tls-verify=false'] : []): Promise<SkopeoImage> {
  const raw = Buffer.from(await execOk('skopeo', ['inspect', '--raw', ...flags, ref]));
  const inspect = JSON.parse(await execOk('skopeo', ['inspect', ...flags, ref])) as {Digest: string; Os: string; Architecture: string};
  return {digest: inspect.Digest, raw, manifest: JSON.parse(raw.toString('utf8')) as RawManifest, platform: `${inspect.Os}/${inspect.Architecture}`};
}

/** Every blob an image consists of, as skopeo's raw manifest names it: manifest, config, layers. */
export function blobsOfImage(image: {digest: string; manifest: RawManifest}): Map<string, number> {
  const blobs = new Map<string, number>();
  blobs.set(image.manifest.config.digest, image.manifest.config.size);
  for (const l of image.manifest.layers) blobs.set(l.digest, l.size);
  return blobs;
}

/** A tar's members as GNU tar lists them (`tar -tvf`): name → size. */
export async function tarMembers(file: string): Promise<Map<string, number>> {
  const text = await execOk('tar', ['--numeric-owner', '-tvf', file]);
  const members = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(.+)$/.exec(line);
    // Links list as `NAME -> TARGET` (symbolic) or `NAME link to TARGET` (hard): the member is NAME.
    if (m) members.set(line.startsWith('l') || line.startsWith('h') ? m[2]!.replace(/ (?:->|link to) .*$/, '') : m[2]!, Number(m[1]));
  }
  return members;
}

/** The blobs a part (or any OCI layout tar) stores: digest → size, from tar's listing. */
export async function blobMembers(file: string): Promise<Map<string, number>> {
  const blobs = new Map<string, number>();
  for (const [name, size] of await tarMembers(file)) {
    const m = /^blobs\/(sha256)\/([a-f0-9]{64})$/.exec(name);
    if (m) blobs.set(`${m[1]}:${m[2]}`, size);
  }
  return blobs;
}

/** One member's bytes, extracted by GNU tar. */
export async function tarExtract(file: string, member: string): Promise<Buffer> {
  const r = await exec('tar', ['-xOf', file, member]);
  if (r.code !== 0) throw new Error(`tar -xOf ${file} ${member}: ${r.stderr}`);
  return r.stdoutBytes;
}

/** The repositories and blobs a registry's filesystem storage holds (what was really pushed). */
export function registryContents(storageRoot: string): {repositories: string[]; blobs: string[]} {
  const v2 = path.join(storageRoot, 'docker/registry/v2');
  const list = (dir: string): string[] => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  const blobs: string[] = [];
  for (const prefix of list(path.join(v2, 'blobs/sha256'))) for (const hex of list(path.join(v2, 'blobs/sha256', prefix))) blobs.push(`sha256:${hex}`);
  const repositories: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const name of list(dir)) {
      const full = path.join(dir, name);
      if (!statSync(full).isDirectory()) continue;
      if (name === '_manifests') repositories.push(rel);
      else if (!name.startsWith('_')) walk(full, rel ? `${rel}/${name}` : name);
    }
  };
  walk(path.join(v2, 'repositories'), '');
  return {repositories: repositories.sort(), blobs: blobs.sort()};
}

/** The bundle.json fields the tests read (the file is judged against the peers, not trusted). */
export interface BundleJson {
  schemaVersion: number;
  mediaType: string;
  maxPartSize: number | null;
  images: Array<{ref: string; name: string | null; sourceDigest: string; digest: string; mediaType: string; size: number; platforms: string[]; parts: string[]; blobs: string[]}>;
  parts: Array<{file: string; size: number; sha256: string; images: string[]; blobs: string[]}>;
  blobs: Record<string, number>;
  omitted: Record<string, string[]>;
  repeated: {blobs: number; bytes: number};
}
