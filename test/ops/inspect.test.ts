import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {Readable} from 'node:stream';
import {fileURLToPath} from 'node:url';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {inspectArchive} from '../../src/ops/inspect.js';
import {openArchive} from '../../src/transports/table.js';
import {FIXTURES} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';
import {pythonMembers} from '../tar/oracle.js';

/**
 * `ferry inspect --json` against skopeo's live view of the same archives (`skopeo inspect --raw` and
 * `--config --raw`), jq over manifest.json / index.json, and tar listings. Quirks (docs/peers.md,
 * fixtures/README.md): for docker-archive skopeo reports config and layers as stored but labels
 * uncompressed layers `…tar.gzip` and invents a manifest; it reads a symlinked layer.tar as size 0.
 */

const TARMAKE = fileURLToPath(new URL('../helpers/tarmake.py', import.meta.url));
const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface JsonLayer {
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
}
interface JsonImage {
  names: string[];
  configDigest: string;
  manifestDigest: string | null;
  platform: {os: string; architecture: string; variant?: string};
  layers: JsonLayer[];
  config: {rootfs: {diff_ids: string[]}; os?: string; architecture?: string; variant?: string};
}
interface JsonResult {
  format: string;
  images: JsonImage[];
}

interface SkopeoManifest {
  config: {digest: string; size: number; mediaType: string};
  layers: Array<{digest: string; size: number; mediaType: string}>;
}

/** What `ferry inspect --json` prints, computed in-process (the CLI prints this object as is). */
async function inspectJson(source: string, input?: Buffer): Promise<JsonResult> {
  const archive = await openArchive(source, input ? {stdin: Readable.from([input])} : {});
  try {
    return JSON.parse(JSON.stringify(await inspectArchive(archive))) as JsonResult;
  } finally {
    await archive.close();
  }
}

function skopeo(args: string[]): Buffer {
  return execFileSync('skopeo', ['inspect', ...args], {maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'pipe']});
}

function memberOf(archive: string, name: string): Buffer {
  return execFileSync('tar', ['-xOf', archive, name], {maxBuffer: 1 << 28});
}

function jq<T>(filter: string, input: Buffer): T {
  return JSON.parse(execFileSync('jq', ['-c', filter], {input, encoding: 'utf8'})) as T;
}

/** Member sizes of a tar, symlinks followed inside it (how docker save shares a layer). */
function tarSizes(archive: string): (name: string) => number {
  const members = new Map(pythonMembers(archive).members.map((m) => [m.name, m]));
  return (name) => {
    let m = members.get(name);
    for (let hops = 0; m && m.type === '2' && hops < 10; hops++) m = members.get(path.posix.normalize(path.posix.join(path.posix.dirname(m.name), m.linkname)));
    if (!m) throw new Error(`${name} not in ${archive}`);
    return m.size;
  };
}

/** Checks one image of ferry's JSON against skopeo's view of `ref`. */
function expectAgreesWithSkopeo(image: JsonImage, ref: string, opts: {storedManifest: boolean}): void {
  const raw = skopeo(['--raw', ref]);
  const manifest = JSON.parse(raw.toString()) as SkopeoManifest;
  const configBytes = skopeo(['--config', '--raw', ref]);
  const config = JSON.parse(configBytes.toString()) as {rootfs: {diff_ids: string[]}; os: string; architecture: string; variant?: string};
  expect(image.configDigest).toBe(sha256(configBytes));
  expect(image.configDigest).toBe(manifest.config.digest);
  expect(image.config).toEqual(config);
  expect(image.layers.map((l) => l.digest)).toEqual(manifest.layers.map((l) => l.digest));
  expect(image.layers.map((l) => l.diffId)).toEqual(config.rootfs.diff_ids);
  const platform: Record<string, string> = {os: config.os, architecture: config.architecture};
  if (config.variant) platform.variant = config.variant;
  expect(image.platform).toEqual(platform);
  if (opts.storedManifest) {
    // OCI forms: skopeo prints the manifest as stored, so its digest, sizes and types are the truth.
    expect(image.manifestDigest).toBe(sha256(raw));
    expect(image.layers.map((l) => [l.size, l.mediaType])).toEqual(manifest.layers.map((l) => [l.size, l.mediaType]));
  } else {
    // legacy docker-archive: no manifest in the archive; skopeo synthesises one
    expect(image.manifestDigest).toBeNull();
    for (const [i, l] of manifest.layers.entries()) if (l.size !== 0) expect(image.layers[i]!.size).toBe(l.size);
  }
}

/** The --json contract of issue 2: these keys, these types (more keys may be added). */
function expectJsonShape(result: JsonResult): void {
  expect(['docker-archive', 'oci-archive', 'oci', 'rootfs']).toContain(result.format);
  expect(Array.isArray(result.images)).toBe(true);
  for (const image of result.images) {
    expect(Array.isArray(image.names) && image.names.every((n) => typeof n === 'string')).toBe(true);
    expect(image.configDigest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(image.manifestDigest === null || /^sha256:[a-f0-9]{64}$/.test(image.manifestDigest)).toBe(true);
    expect(Object.keys(image.platform).sort()).toEqual(image.platform.variant === undefined ? ['architecture', 'os'] : ['architecture', 'os', 'variant']);
    expect(typeof image.platform.os).toBe('string');
    expect(typeof image.platform.architecture).toBe('string');
    for (const l of image.layers) {
      expect(l.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
      expect(l.diffId).toMatch(/^sha256:[a-f0-9]{64}$/);
      expect(Number.isSafeInteger(l.size) && l.size >= 0).toBe(true);
      expect(typeof l.mediaType).toBe('string');
    }
    expect(typeof image.config).toBe('object');
    expect(image.config.rootfs.diff_ids).toEqual(image.layers.map((l) => l.diffId));
  }
}

function layerHead(archive: string, member: string): Buffer {
  return memberOf(archive, member).subarray(0, 4);
}

const GZIP = Buffer.from([0x1f, 0x8b]);
const ZSTD = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

describe.skipIf(peerMissing('skopeo', 'jq', 'tar', 'python3'))('inspect agrees with skopeo', () => {
  it.each([
    ['edge.docker-save.tar', ['ferry-fixture/edge:1']],
    ['edge.skopeo.docker-archive.tar', ['docker.io/ferry-fixture/edge:1']],
  ])('docker-archive %s', async (name, expectedNames) => {
    const file = path.join(FIXTURES, name);
    const result = await inspectJson(file);
    expectJsonShape(result);
    expect(result.format).toBe('docker-archive');
    const manifestJson = memberOf(file, 'manifest.json');
    const items = jq<Array<{Config: string; RepoTags: string[]; Layers: string[]}>>('.', manifestJson);
    expect(result.images).toHaveLength(1);
    const image = result.images[0]!;
    expect(image.names).toEqual(items[0]!.RepoTags);
    expect(image.names).toEqual(expectedNames);
    expectAgreesWithSkopeo(image, `docker-archive:${file}`, {storedManifest: false});
    const size = tarSizes(file);
    expect(image.layers.map((l) => l.size)).toEqual(items[0]!.Layers.map(size));
    expect(image.configDigest).toBe(sha256(memberOf(file, items[0]!.Config)));
    for (const [i, l] of image.layers.entries()) {
      // skopeo calls these tar.gzip; the bytes say otherwise
      const head = layerHead(file, items[0]!.Layers[i]!);
      expect(head.subarray(0, 2).equals(GZIP) || head.equals(ZSTD)).toBe(false);
      expect(l.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar');
      expect(l.digest).toBe(l.diffId);
    }
  });

  it('docker-archive with several images, two tags on one, a shared layer stored once behind a symlink', async () => {
    const file = path.join(FIXTURES, 'edge-multi.docker-save.tar');
    const result = await inspectJson(file);
    expectJsonShape(result);
    expect(result.format).toBe('docker-archive');
    const items = jq<Array<{Config: string; RepoTags: string[]; Layers: string[]}>>('.', memberOf(file, 'manifest.json'));
    expect(result.images.map((i) => i.names)).toEqual(items.map((i) => i.RepoTags));
    expect(result.images.map((i) => i.names).flat()).toEqual(['ferry-fixture/edge:1', 'ferry-fixture/edge:latest', 'ferry-fixture/edge-child:1']);
    const size = tarSizes(file);
    for (const [i, item] of items.entries()) {
      const image = result.images[i]!;
      for (const tag of item.RepoTags) expectAgreesWithSkopeo(image, `docker-archive:${file}:${tag}`, {storedManifest: false});
      // skopeo reports 0 for the symlinked layer.tar; the tar, symlink followed, has the size
      expect(image.layers.map((l) => l.size)).toEqual(item.Layers.map(size));
      expect(image.layers.every((l) => l.size > 0)).toBe(true);
      expect(image.configDigest).toBe(sha256(memberOf(file, item.Config)));
    }
  });

  it('oci-archive edge.skopeo.oci-archive.tar', async () => {
    const file = path.join(FIXTURES, 'edge.skopeo.oci-archive.tar');
    const result = await inspectJson(file);
    expectJsonShape(result);
    expect(result.format).toBe('oci-archive');
    expect(result.images).toHaveLength(1);
    const names = jq<string[]>('[.manifests[].annotations["org.opencontainers.image.ref.name"]]', memberOf(file, 'index.json'));
    expect(result.images[0]!.names).toEqual(names);
    expect(names).toEqual(['ferry-fixture/edge:1']);
    expectAgreesWithSkopeo(result.images[0]!, `oci-archive:${file}`, {storedManifest: true});
    expect(result.images[0]!.manifestDigest).toBe(jq<string>('.manifests[0].digest', memberOf(file, 'index.json')));
  });

  it('oci layout directory edge.podman.oci', async () => {
    const dir = path.join(FIXTURES, 'edge.podman.oci');
    const result = await inspectJson(dir);
    expectJsonShape(result);
    expect(result.format).toBe('oci');
    const index = fs.readFileSync(path.join(dir, 'index.json'));
    expect(result.images[0]!.names).toEqual(jq<string[]>('[.manifests[].annotations["org.opencontainers.image.ref.name"]]', index));
    expect(result.images[0]!.names).toEqual(['localhost/ferry-fixture/edge:1']);
    expectAgreesWithSkopeo(result.images[0]!, `oci:${dir}`, {storedManifest: true});
    expect(await inspectJson(`oci:${dir}`)).toEqual(result);
  });

  it('the OCI forms and the docker-save share diffIDs (skopeo rewrote only the config)', async () => {
    const docker = (await inspectJson(path.join(FIXTURES, 'edge.docker-save.tar'))).images[0]!;
    const oci = (await inspectJson(path.join(FIXTURES, 'edge.podman.oci'))).images[0]!;
    expect(oci.layers.map((l) => l.diffId)).toEqual(docker.layers.map((l) => l.diffId));
    expect(oci.configDigest).not.toBe(docker.configDigest);
  });

  it('transport prefixes give the same answer as detection', async () => {
    const file = path.join(FIXTURES, 'edge.docker-save.tar');
    expect(await inspectJson(`docker-archive:${file}`)).toEqual(await inspectJson(file));
    const oci = path.join(FIXTURES, 'edge.skopeo.oci-archive.tar');
    expect(await inspectJson(`oci-archive:${oci}`)).toEqual(await inspectJson(oci));
  });
});

describe.skipIf(peerMissing('tar', 'sha256sum'))('rootfs', () => {
  it('docker export output is a one-layer image whose layer is the tar itself', async () => {
    const file = path.join(FIXTURES, 'edge.docker-export.tar');
    const result = await inspectJson(file);
    expectJsonShape(result);
    expect(result.format).toBe('rootfs');
    const digest = `sha256:${execFileSync('sha256sum', [file], {encoding: 'utf8'}).split(' ')[0]}`;
    expect(result.images).toHaveLength(1);
    expect(result.images[0]!.names).toEqual([]);
    expect(result.images[0]!.manifestDigest).toBeNull();
    expect(result.images[0]!.layers).toEqual([{digest, diffId: digest, size: fs.statSync(file).size, mediaType: 'application/vnd.oci.image.layer.v1.tar', createdBy: expect.any(String)}]);
    expect(await inspectJson(`rootfs:${file}`)).toEqual(result);
  });
});

describe.skipIf(peerMissing('gzip', 'zstd'))('compressed input and stdin', () => {
  let plain: JsonResult;
  beforeAll(async () => {
    plain = await inspectJson(path.join(FIXTURES, 'edge.docker-save.tar'));
  });

  it('.tar.gz and .tar.zst (checked to be what they claim) answer as the plain tar', async () => {
    expect(fs.readFileSync(path.join(FIXTURES, 'edge.docker-save.tar.gz')).subarray(0, 2)).toEqual(GZIP);
    expect(fs.readFileSync(path.join(FIXTURES, 'edge.docker-save.tar.zst')).subarray(0, 4)).toEqual(ZSTD);
    expect(execFileSync('zstd', ['-dc', path.join(FIXTURES, 'edge.docker-save.tar.zst')])).toEqual(fs.readFileSync(path.join(FIXTURES, 'edge.docker-save.tar')));
    expect(await inspectJson(path.join(FIXTURES, 'edge.docker-save.tar.gz'))).toEqual(plain);
    expect(await inspectJson(path.join(FIXTURES, 'edge.docker-save.tar.zst'))).toEqual(plain);
  });

  it('the extension is not trusted: a gzip file named .tar', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-inspect-'));
    try {
      const misnamed = path.join(tmp, 'really-gzip.tar');
      fs.copyFileSync(path.join(FIXTURES, 'edge.docker-save.tar.gz'), misnamed);
      expect(await inspectJson(misnamed)).toEqual(plain);
    } finally {
      fs.rmSync(tmp, {recursive: true, force: true});
    }
  });

  it('stdin (-), plain and compressed', async () => {
    for (const name of ['edge.docker-save.tar', 'edge.docker-save.tar.gz', 'edge.docker-save.tar.zst']) {
      expect(await inspectJson('-', fs.readFileSync(path.join(FIXTURES, name))), name).toEqual(plain);
    }
    const oci = path.join(FIXTURES, 'edge.skopeo.oci-archive.tar');
    expect(await inspectJson('-', fs.readFileSync(oci))).toEqual(await inspectJson(oci));
  });

});

describe.skipIf(peerMissing('python3'))('member names', () => {
  it('names that merely start with ".." (kubernetes ..data style) are ordinary names', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-dotdot-'));
    try {
      const file = path.join(tmp, 'dotdot.tar');
      const script = `
import hashlib, io, json, sys, tarfile
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w") as t:
    i = tarfile.TarInfo("..data"); i.size = 2; t.addfile(i, io.BytesIO(b"hi"))
layer = layer.getvalue()
diff = "sha256:" + hashlib.sha256(layer).hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
manifest = json.dumps([{"Config": "..config.json", "RepoTags": ["dotdot:1"], "Layers": ["..layer/layer.tar"]}]).encode()
with tarfile.open(sys.argv[1], "w") as t:
    for name, data in (("..layer/layer.tar", layer), ("..config.json", config), ("manifest.json", manifest)):
        i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
print(json.dumps({"diffId": diff, "configDigest": "sha256:" + hashlib.sha256(config).hexdigest()}))
`;
      const facts = JSON.parse(execFileSync('python3', ['-c', script, file], {encoding: 'utf8'})) as {diffId: string; configDigest: string};
      const result = await inspectJson(file);
      expect(result.images.map((i) => [i.names, i.configDigest, i.layers.map((l) => l.diffId)])).toEqual([[['dotdot:1'], facts.configDigest, [facts.diffId]]]);
    } finally {
      fs.rmSync(tmp, {recursive: true, force: true});
    }
  });
});

describe.skipIf(peerMissing('python3'))('inspect reads no layer bytes', () => {
  let tmp: string;
  let archive: string;
  let facts: {layerSize: number; diffId: string; configDigest: string};
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-huge-'));
    archive = path.join(tmp, 'huge.docker-archive.tar');
    facts = JSON.parse(execFileSync('python3', [TARMAKE, 'docker-huge', archive], {encoding: 'utf8'})) as typeof facts;
  });
  afterAll(() => {
    fs.rmSync(tmp, {recursive: true, force: true});
  });

  function rchar(): number {
    const m = /^rchar: (\d+)$/m.exec(fs.readFileSync('/proc/self/io', 'utf8'));
    if (!m) throw new Error('no rchar in /proc/self/io');
    return Number(m[1]);
  }

  it('a ~2 GiB layer: openArchive + inspectArchive read a few KiB (counted by /proc/self/io)', async () => {
    expect(facts.layerSize).toBeGreaterThan(2 ** 31);
    expect(fs.statSync(archive).blocks * 512).toBeLessThan(1 << 20); // sparse: the test costs no disk
    // warm up: module loading and the first open must not be counted
    const warm = await openArchive(path.join(FIXTURES, 'edge.docker-save.tar'));
    await inspectArchive(warm);
    await warm.close();
    // rchar counts every read(2) of this process (vitest runs each test file in its own forked
    // worker), including the small read of /proc/self/io itself.
    const before = rchar();
    const archiveRead = await openArchive(archive);
    const result = await inspectArchive(archiveRead);
    await archiveRead.close();
    const read = rchar() - before;
    expect(result.images[0]!.layers).toEqual([{digest: facts.diffId, diffId: facts.diffId, size: facts.layerSize, mediaType: 'application/vnd.docker.image.rootfs.diff.tar', createdBy: 'huge layer'}]);
    expect(result.images[0]!.configDigest).toBe(facts.configDigest);
    expect(read).toBeGreaterThan(0);
    expect(read).toBeLessThan(256 * 1024);
    expect(read).toBeLessThan(facts.layerSize / 1000);
  });

});
