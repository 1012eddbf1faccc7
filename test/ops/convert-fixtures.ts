/**
 * Helpers for the convert tests: expected values read from archives with the peers (GNU tar, gzip,
 * zstd, skopeo) and plain JSON parsing — never with ferry's own readers — and hand-made
 * multi-platform layouts (what Docker 25+ `save --platform` writes, kind#3795).
 */
import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {expect} from 'vitest';
import {makePodman} from '../helpers/daemons.js';

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export function sha256(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function makeTmp(prefix = 'ferry-conv-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeTmp(dir: string): void {
  rmSync(dir, {recursive: true, force: true});
}

function exec(cmd: string, args: string[]): Buffer {
  return execFileSync(cmd, args, {maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe']});
}

/** Canonical docker name (docker.io/library/demo:1), written independently of ferry's reference code. */
export function canonicalName(name: string): string {
  let repo = name;
  let tag = 'latest';
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) {
    repo = name.slice(0, colon);
    tag = name.slice(colon + 1);
  }
  const parts = repo.split('/');
  const first = parts[0]!;
  if (parts.length === 1) repo = `docker.io/library/${repo}`;
  else if (!(first.includes('.') || first.includes(':') || first === 'localhost')) repo = `docker.io/${repo}`;
  return `${repo}:${tag}`;
}

/** Member access to an archive: a directory, or a tar (decompressed to a temp copy when needed). */
export class ArchiveView {
  readonly kind: 'dir' | 'tar';
  readonly path: string;
  #temp: string | undefined;
  constructor(location: string) {
    if (statSync(location).isDirectory()) {
      this.kind = 'dir';
      this.path = location;
      return;
    }
    this.kind = 'tar';
    const head = readFileSync(location).subarray(0, 4);
    if (head[0] === 0x1f && head[1] === 0x8b) this.path = this.#decompress(location, 'gzip');
    else if (head[0] === 0x28 && head[1] === 0xb5) this.path = this.#decompress(location, 'zstd');
    else this.path = location;
  }

  #decompress(file: string, tool: 'gzip' | 'zstd'): string {
    this.#temp = makeTmp('ferry-view-');
    const out = path.join(this.#temp, 'plain.tar');
    writeFileSync(out, exec(tool, ['-dc', file]));
    return out;
  }

  members(): string[] {
    if (this.kind === 'dir') return walk(this.path);
    return exec('tar', ['-tf', this.path]).toString('utf8').split('\n').filter(Boolean).map((n) => n.replace(/^\.\//, ''));
  }

  has(name: string): boolean {
    return this.kind === 'dir' ? existsSync(path.join(this.path, name)) : this.members().some((m) => m.replace(/\/$/, '') === name);
  }

  read(name: string): Buffer {
    if (this.kind === 'dir') return readFileSync(path.join(this.path, name));
    const members = this.members();
    const member = members.includes(name) ? name : members.includes(`./${name}`) ? `./${name}` : name;
    // GNU tar follows the archive's own symlinks with --dereference only on create; read the target.
    return exec('tar', ['-xOf', this.path, member]);
  }

  json<T = unknown>(name: string): T {
    return JSON.parse(this.read(name).toString('utf8')) as T;
  }

  close(): void {
    if (this.#temp) removeTmp(this.#temp);
  }
}

function walk(root: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(root, prefix))) {
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(path.join(root, rel)).isDirectory()) out.push(...walk(root, rel));
    else out.push(rel);
  }
  return out;
}

export interface ExpectedImage {
  configDigest: string;
  diffIds: string[];
  /** Canonical names, sorted. */
  names: string[];
  platform: string;
}

interface Desc {
  mediaType?: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: {os: string; architecture: string; variant?: string};
}

/**
 * The images an archive holds, read the way the consumers read them: manifest.json (Config,
 * RepoTags, Layers) for a docker-archive, index.json → (index →) manifest → config for an OCI
 * layout. Config digests are sha256 of the config bytes; diffIDs come from the config.
 */
export function describeArchive(location: string, form: 'docker-archive' | 'oci'): ExpectedImage[] {
  const view = new ArchiveView(location);
  try {
    const byConfig = new Map<string, ExpectedImage>();
    const add = (configBytes: Buffer, names: string[]): void => {
      const digest = sha256(configBytes);
      const config = JSON.parse(configBytes.toString('utf8')) as {rootfs: {diff_ids: string[]}; os?: string; architecture?: string; variant?: string};
      const image = byConfig.get(digest) ?? {configDigest: digest, diffIds: config.rootfs.diff_ids, names: [], platform: [config.os, config.architecture, config.variant].filter(Boolean).join('/')};
      for (const n of names) if (!image.names.includes(canonicalName(n))) image.names.push(canonicalName(n));
      image.names.sort();
      byConfig.set(digest, image);
    };
    if (form === 'docker-archive') {
      const items = view.json<Array<{Config: string; RepoTags: string[] | null}>>('manifest.json');
      for (const item of items) add(view.read(item.Config), item.RepoTags ?? []);
    } else {
      const blob = (digest: string): Buffer => view.read(`blobs/${digest.replace(':', '/')}`);
      const visit = (d: Desc, names: string[]): void => {
        if (!view.has(`blobs/${d.digest.replace(':', '/')}`)) return; // absent platform
        const doc = JSON.parse(blob(d.digest).toString('utf8')) as {mediaType?: string; manifests?: Desc[]; config?: Desc};
        if (doc.manifests) for (const child of doc.manifests) visit(child, names);
        else add(blob(doc.config!.digest), names);
      };
      for (const d of view.json<{manifests: Desc[]}>('index.json').manifests) {
        const a = d.annotations ?? {};
        const name = a['io.containerd.image.name'] ?? a['org.opencontainers.image.ref.name'];
        visit(d, name ? [name] : []);
      }
    }
    return [...byConfig.values()].sort((a, b) => (a.configDigest < b.configDigest ? -1 : 1));
  } finally {
    view.close();
  }
}

/** sha256 of the config skopeo reads for `ref` (skopeo inspect --raw --config). */
export function skopeoConfigDigest(ref: string): string {
  return sha256(exec('skopeo', ['inspect', '--raw', '--config', ref]));
}

export function skopeoManifest(ref: string): {bytes: Buffer; parsed: {mediaType?: string; config: Desc; layers: Desc[]}} {
  const bytes = exec('skopeo', ['inspect', '--raw', ref]);
  return {bytes, parsed: JSON.parse(bytes.toString('utf8'))};
}

/**
 * A multi-platform OCI layout made from a single-platform one: the original image as linux/amd64
 * plus a linux/arm64 sibling (same layers, config with architecture arm64). With `absentArm64` the
 * arm64 manifest and config blobs are left out, as Docker 25+ `save --platform` leaves them
 * (kind#3795). index.json names the index `name` (both annotations, as Docker 25 writes them).
 */
export function makeMultiPlatformLayout(from: string, dir: string, options: {absentArm64: boolean; name: string}): {indexDigest: string; amd64: string; arm64: string; arm64Config: string} {
  mkdirSync(dir, {recursive: true});
  cpSync(path.join(from, 'blobs'), path.join(dir, 'blobs'), {recursive: true});
  writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion": "1.0.0"}');
  const src = JSON.parse(readFileSync(path.join(from, 'index.json'), 'utf8')) as {manifests: Desc[]};
  const amd = src.manifests[0]!;
  /** Stores a blob; arm64's own blobs are left out when it is to be absent. */
  const put = (bytes: Buffer | string, always = false): {digest: string; size: number} => {
    const b = Buffer.from(bytes);
    const digest = sha256(b);
    if (always || !options.absentArm64) writeFileSync(path.join(dir, 'blobs', 'sha256', digest.slice(7)), b);
    return {digest, size: b.length};
  };
  const manifest = JSON.parse(readFileSync(path.join(from, 'blobs', 'sha256', amd.digest.slice(7)), 'utf8')) as {config: Desc; layers: Desc[]};
  const configText = readFileSync(path.join(from, 'blobs', 'sha256', manifest.config.digest.slice(7)), 'utf8');
  if (!configText.includes('"architecture":"amd64"')) throw new Error('source config is not amd64');
  const armConfig = put(configText.replace('"architecture":"amd64"', '"architecture":"arm64","variant":"v8"'));
  const armManifest = put(JSON.stringify({schemaVersion: 2, mediaType: OCI_MANIFEST, config: {...manifest.config, digest: armConfig.digest, size: armConfig.size}, layers: manifest.layers}));
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      {mediaType: OCI_MANIFEST, digest: amd.digest, size: amd.size, platform: {architecture: 'amd64', os: 'linux'}},
      {mediaType: OCI_MANIFEST, digest: armManifest.digest, size: armManifest.size, platform: {architecture: 'arm64', os: 'linux', variant: 'v8'}},
    ],
  });
  const indexBlob = put(index, true);
  const tag = options.name.slice(options.name.lastIndexOf(':') + 1);
  writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{mediaType: OCI_INDEX, digest: indexBlob.digest, size: indexBlob.size, annotations: {'io.containerd.image.name': options.name, 'org.opencontainers.image.ref.name': tag}}]}),
  );
  return {indexDigest: indexBlob.digest, amd64: amd.digest, arm64: armManifest.digest, arm64Config: armConfig.digest};
}

/** Tars a directory with GNU tar (sorted names), as a hand-made oci-archive. */
export function tarDirectory(dir: string, out: string): string {
  exec('tar', ['--sort=name', '-C', dir, '-cf', out, '.']);
  return out;
}

/** Member headers of a tar as Python's tarfile sees them (an independent tar reader). */
export function tarHeaders(file: string): Array<{name: string; type: string; mode: number; uid: number; gid: number; uname: string; gname: string; mtime: number; size: number; linkname: string}> {
  const script = [
    'import json, sys, tarfile',
    'out = []',
    'with tarfile.open(sys.argv[1]) as t:',
    '    for m in t.getmembers():',
    '        out.append(dict(name=m.name, type=m.type.decode(), mode=m.mode, uid=m.uid, gid=m.gid, uname=m.uname, gname=m.gname, mtime=m.mtime, size=m.size, linkname=m.linkname))',
    'print(json.dumps(out))',
  ].join('\n');
  return JSON.parse(exec('python3', ['-c', script, file]).toString('utf8'));
}

export const FIXTURES = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../fixtures');

/**
 * A legacy docker-archive of one image whose layers each hold one file of random bytes (sizes in
 * bytes), built with coreutils + GNU tar; the config's diff_ids are sha256sum of each layer tar.
 */
export function makeRandomDockerArchive(dir: string, name: string, sizes: number[]): string {
  const work = mkdtempSync(path.join(dir, 'rand-'));
  const diffIds: string[] = [];
  const layerPaths: string[] = [];
  sizes.forEach((size, i) => {
    const content = path.join(work, `content${i}`);
    mkdirSync(content);
    exec('sh', ['-c', `head -c ${size} /dev/urandom > "$1"`, 'sh', path.join(content, `random-${i}.bin`)]);
    const layerDir = `layer${i}`;
    mkdirSync(path.join(work, layerDir));
    exec('tar', ['--sort=name', '--owner=0', '--group=0', '--mtime=@0', '-C', content, '-cf', path.join(work, layerDir, 'layer.tar'), '.']);
    diffIds.push(`sha256:${exec('sha256sum', [path.join(work, layerDir, 'layer.tar')]).toString('utf8').split(' ')[0]}`);
    layerPaths.push(`${layerDir}/layer.tar`);
    rmSync(content, {recursive: true});
  });
  const config = Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', config: {Cmd: ['/bin/true']}, rootfs: {type: 'layers', diff_ids: diffIds}, history: sizes.map((_, i) => ({created: '2024-01-01T00:00:00Z', created_by: `layer ${i}`}))}));
  const configName = `${sha256(config).slice(7)}.json`;
  writeFileSync(path.join(work, configName), config);
  writeFileSync(path.join(work, 'manifest.json'), JSON.stringify([{Config: configName, RepoTags: [name], Layers: layerPaths}]));
  const out = path.join(dir, `${name.replace(/[/:]/g, '_')}.tar`);
  exec('tar', ['--sort=name', '-C', work, '-cf', out, '.']);
  rmSync(work, {recursive: true, force: true});
  return out;
}

/** `podman load` of `archive` (private root) names the image `name` and reports the expected image ID and diffIDs. */
export async function expectPodmanLoads(archive: string, name: string, expected: Pick<ExpectedImage, 'configDigest' | 'diffIds'>): Promise<void> {
  const podman = makePodman();
  try {
    expect(podman.run(['load', '-i', archive])).toContain(`Loaded image: ${canonicalName(name)}`);
    const inspected = JSON.parse(podman.run(['image', 'inspect', canonicalName(name)])) as Array<{Id: string; RootFS: {Layers: string[]}}>;
    expect(`sha256:${inspected[0]!.Id}`).toBe(expected.configDigest);
    expect(inspected[0]!.RootFS.Layers).toEqual(expected.diffIds);
  } finally {
    await podman.cleanup();
  }
}
