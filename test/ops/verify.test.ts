import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {execFileSync} from 'node:child_process';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {describeError, FerryError} from '../../src/errors.js';
import {verifyArchive} from '../../src/ops/verify.js';
import {openArchive} from '../../src/transports/table.js';
import {FIXTURES} from '../helpers/cli.js';
import {
  blobFile,
  copyFixture,
  craftLayer,
  deleteMember,
  editIndex,
  editManifest,
  firstManifest,
  flipByte,
  flipByteInMember,
  makeOciLayout,
  member,
  members,
  readJson,
  repack,
  sha256,
  truncateFile,
} from '../helpers/corrupt.js';
import {peerMissing} from '../helpers/peers.js';

/**
 * verify passes on every fixture and names each corruption precisely: the damage is made at test time
 * from the fixtures (test/helpers/corrupt.ts), the expected names and digests come from the damaged
 * files themselves (Python's tarfile offsets, sha256 of what is on disk), never from ferry.
 */

interface Outcome {
  ok: boolean;
  /** verify's problems, or the one error that stopped reading the archive. */
  problems: string[];
  stopped: FerryError | undefined;
}

async function verify(source: string): Promise<Outcome> {
  let archive;
  try {
    archive = await openArchive(source);
  } catch (e) {
    expect(e).toBeInstanceOf(FerryError);
    return {ok: false, problems: [describeError(e)], stopped: e as FerryError};
  }
  try {
    const result = await verifyArchive(archive);
    expect(result.ok).toBe(result.problems.length === 0);
    return {ok: result.ok, problems: result.problems, stopped: undefined};
  } finally {
    await archive.close();
  }
}

/** Exactly one problem, on one line, containing every given fragment. */
function expectOneProblem(outcome: Outcome, ...fragments: string[]): string {
  expect(outcome.ok).toBe(false);
  expect(outcome.problems).toHaveLength(1);
  const line = outcome.problems[0]!;
  expect(line).not.toContain('\n');
  for (const f of fragments) expect(line).toContain(f);
  return line;
}

const FIXTURE_NAMES = [
  'edge.docker-save.tar',
  'edge.docker-save.tar.gz',
  'edge.docker-save.tar.zst',
  'edge.skopeo.docker-archive.tar',
  'edge.skopeo.oci-archive.tar',
  'edge.podman.oci',
  'edge.docker-export.tar',
  'edge-multi.docker-save.tar',
];

let tmp: string;
let n = 0;
/** A fresh working directory per case. */
function work(): string {
  const dir = path.join(tmp, String(n++));
  fs.mkdirSync(dir);
  return dir;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-verify-'));
});

afterAll(() => {
  fs.rmSync(tmp, {recursive: true, force: true});
});

describe('every fixture verifies', () => {
  it.each(FIXTURE_NAMES)('%s', async (name) => {
    const outcome = await verify(path.join(FIXTURES, name));
    expect(outcome.problems).toEqual([]);
    expect(outcome.ok).toBe(true);
  });

  it('counts images and distinct layers (a shared layer is read once)', async () => {
    const archive = await openArchive(path.join(FIXTURES, 'edge-multi.docker-save.tar'));
    try {
      const result = await verifyArchive(archive, {concurrency: 2});
      const manifest = JSON.parse(execFileSync('tar', ['-xOf', path.join(FIXTURES, 'edge-multi.docker-save.tar'), 'manifest.json'], {encoding: 'utf8'})) as Array<{Config: string}>;
      const diffIds = new Set<string>();
      for (const item of manifest) {
        const config = JSON.parse(execFileSync('tar', ['-xOf', path.join(FIXTURES, 'edge-multi.docker-save.tar'), item.Config], {encoding: 'utf8'})) as {rootfs: {diff_ids: string[]}};
        for (const d of config.rootfs.diff_ids) diffIds.add(d);
      }
      expect(result).toMatchObject({ok: true, images: manifest.length, layers: diffIds.size});
    } finally {
      await archive.close();
    }
  });
});

const DOCKER_SAVE = 'edge.docker-save.tar';

describe.skipIf(peerMissing('tar', 'python3'))('docker-archive corruption', () => {
  let layers: string[];
  let config: string;
  let diffIds: string[];
  beforeAll(() => {
    const file = path.join(FIXTURES, DOCKER_SAVE);
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], {encoding: 'utf8'})) as Array<{Config: string; Layers: string[]}>;
    layers = manifest[0]!.Layers;
    config = manifest[0]!.Config;
    diffIds = (JSON.parse(execFileSync('tar', ['-xOf', file, config], {encoding: 'utf8'})) as {rootfs: {diff_ids: string[]}}).rootfs.diff_ids;
  });

  it('a flipped byte in a layer: the layer member and both digests are named', async () => {
    const file = copyFixture(DOCKER_SAVE, work());
    flipByteInMember(file, layers[1]!, 512 + 2); // inside the layer tar's second header block
    const damaged = execFileSync('tar', ['-xOf', file, layers[1]!]);
    expectOneProblem(await verify(file), layers[1]!, diffIds[1]!, sha256(damaged), 'digest mismatch');
  });

  it('a flipped byte in a layer file body (tar still well formed)', async () => {
    const file = copyFixture(DOCKER_SAVE, work());
    // the largest file of layer 0 is srv/zeros.bin; flip a byte in the middle of the layer
    const size = member(file, layers[0]!).size;
    flipByteInMember(file, layers[0]!, Math.floor(size / 2));
    expectOneProblem(await verify(file), layers[0]!, diffIds[0]!, 'digest mismatch');
  });

  it('a flipped byte in the config: its name claims another digest', async () => {
    const file = copyFixture(DOCKER_SAVE, work());
    flipByteInMember(file, config, 40);
    const damaged = execFileSync('tar', ['-xOf', file, config]);
    const line = expectOneProblem(await verify(file), config, sha256(damaged), `sha256:${config.replace(/\.json$/, '')}`, 'digest mismatch');
    expect(line).toMatch(/config/);
  });

  it('a truncated archive (cut inside a layer)', async () => {
    const file = copyFixture(DOCKER_SAVE, work());
    const m = member(file, layers[0]!);
    truncateFile(file, m.offset_data + 1000);
    const outcome = await verify(file);
    expectOneProblem(outcome, layers[0]!, 'truncated');
    expect(outcome.stopped?.code).toBe('BAD_TAR');
  });

  it('a truncated archive (cut at a member boundary: the end-of-archive marker is gone)', async () => {
    const file = copyFixture(DOCKER_SAVE, work());
    const last = members(file).at(-1)!;
    truncateFile(file, last.offset_data + Math.ceil(last.size / 512) * 512);
    expectOneProblem(await verify(file), 'end-of-archive', path.basename(file));
  });

  it('a missing layer blob (member deleted)', async () => {
    const file = copyFixture(DOCKER_SAVE, work());
    deleteMember(file, layers[2]!);
    expectOneProblem(await verify(file), layers[2]!, diffIds[2]!, 'missing');
  });

  it('a missing config', async () => {
    const file = copyFixture(DOCKER_SAVE, work());
    deleteMember(file, config);
    const outcome = await verify(file);
    expectOneProblem(outcome, config, 'not in the archive');
    expect(outcome.stopped?.code).toBe('MISSING_BLOB');
  });

  it('a crafted layer with a ../ entry, repacked into the archive', async () => {
    const file = copyFixture(DOCKER_SAVE, work());
    const evil = craftLayer([{name: 'ok.txt', data: 'ok'}, {name: '../evil.txt', data: 'x'}]);
    repack(file, path.dirname(file), (root) => {
      fs.writeFileSync(path.join(root, layers[3]!), evil);
      // the config must name the new layer's diffID, and its file name its own new digest
      const cfg = readJson<{rootfs: {diff_ids: string[]}}>(path.join(root, config));
      cfg.rootfs.diff_ids[3] = sha256(evil);
      const bytes = Buffer.from(JSON.stringify(cfg));
      const newConfig = `${sha256(bytes).slice(7)}.json`;
      fs.rmSync(path.join(root, config));
      fs.writeFileSync(path.join(root, newConfig), bytes);
      const manifest = readJson<Array<{Config: string}>>(path.join(root, 'manifest.json'));
      manifest[0]!.Config = newConfig;
      fs.writeFileSync(path.join(root, 'manifest.json'), JSON.stringify(manifest));
      return [newConfig];
    });
    expectOneProblem(await verify(file), layers[3]!, '"../evil.txt"', 'escapes the image root');
  });
});

describe.skipIf(peerMissing('python3'))('crafted layers: paths that escape the image root', () => {
  async function verifyLayers(...layerTars: Buffer[]): Promise<Outcome> {
    const dir = path.join(work(), 'layout');
    makeOciLayout(dir, layerTars);
    return verify(`oci:${dir}`);
  }

  it('a ../ entry', async () => {
    const layer = craftLayer([{name: 'etc/', type: 'dir'}, {name: '../../escape.txt', data: 'x'}]);
    expectOneProblem(await verifyLayers(layer), '"../../escape.txt"', 'escapes the image root', sha256(layer));
  });

  it('a ../ hidden inside a path', async () => {
    const layer = craftLayer([{name: 'a/b/../../../up.txt', data: 'x'}]);
    expectOneProblem(await verifyLayers(layer), '"a/b/../../../up.txt"', 'escapes the image root');
  });

  it('an absolute path', async () => {
    const layer = craftLayer([{name: '/etc/passwd', data: 'root::0:0::/:/bin/sh\n'}]);
    expectOneProblem(await verifyLayers(layer), '"/etc/passwd"', 'absolute', sha256(layer));
  });

  it('a hardlink whose target escapes the root', async () => {
    const layer = craftLayer([{name: 'innocent', type: 'hardlink', linkname: '../../../etc/shadow'}]);
    expectOneProblem(await verifyLayers(layer), '"innocent"', '"../../../etc/shadow"', 'outside the image root', sha256(layer));
  });

  it('a hardlink to a file of a lower layer is fine; one to nothing is named', async () => {
    const lower = craftLayer([{name: 'srv/', type: 'dir'}, {name: 'srv/base.txt', data: 'base'}]);
    const upper = craftLayer([{name: 'srv/xlink', type: 'hardlink', linkname: 'srv/base.txt'}]);
    expect((await verifyLayers(lower, upper)).problems).toEqual([]);
    const dangling = craftLayer([{name: 'srv/xlink', type: 'hardlink', linkname: 'srv/nothing.txt'}]);
    expectOneProblem(await verifyLayers(lower, dangling), '"srv/xlink"', '"srv/nothing.txt"');
  });

  it('symlinks may point anywhere (they are never followed while applying)', async () => {
    const layer = craftLayer([{name: 'abs', type: 'symlink', linkname: '/etc/passwd'}, {name: 'up', type: 'symlink', linkname: '../../..'}]);
    expect((await verifyLayers(layer)).problems).toEqual([]);
  });

  it('a descriptor size smaller than a multi-MiB blob: the true size is named', async () => {
    const layer = craftLayer([{name: 'big.bin', data: 'x'.repeat(3 << 20)}]);
    const dir = path.join(work(), 'layout');
    makeOciLayout(dir, [layer]);
    editManifest(dir, (m) => {
      m.layers[0]!.size = 1000;
    });
    expectOneProblem(await verify(`oci:${dir}`), sha256(layer), 'size mismatch', 'expected 1000 bytes', `got ${layer.length}`);
  });

  it('every problem of a layer is reported, each on its own line', async () => {
    const layer = craftLayer([{name: '../a', data: 'a'}, {name: '/b', data: 'b'}, {name: 'c', type: 'hardlink', linkname: '../c'}]);
    const outcome = await verifyLayers(layer);
    expect(outcome.problems).toHaveLength(3);
    expect(outcome.problems.find((p) => p.includes('"../a"'))).toContain('escapes the image root');
    expect(outcome.problems.find((p) => p.includes('"/b"'))).toContain('absolute path');
    expect(outcome.problems.find((p) => p.includes('hardlink "c"'))).toContain('"../c"');
    for (const p of outcome.problems) expect(p).toContain(sha256(layer));
  });
});

describe.skipIf(peerMissing('python3', 'gzip'))('OCI layout directory corruption', () => {
  const PODMAN = 'edge.podman.oci';

  it('a flipped byte in a gzip layer blob', async () => {
    const dir = copyFixture(PODMAN, work());
    const layer = firstManifest(dir).manifest.layers[0]!;
    flipByte(blobFile(dir, layer.digest), Math.floor(layer.size / 2));
    expectOneProblem(await verify(dir), layer.digest);
  });

  it('a flipped byte in the config blob', async () => {
    const dir = copyFixture(PODMAN, work());
    const cfg = firstManifest(dir).manifest.config;
    flipByte(blobFile(dir, cfg.digest), 30);
    const outcome = await verify(dir);
    expectOneProblem(outcome, cfg.digest, sha256(fs.readFileSync(blobFile(dir, cfg.digest))), 'config', 'digest mismatch');
  });

  it('a flipped byte in the manifest blob', async () => {
    const dir = copyFixture(PODMAN, work());
    const {digest} = firstManifest(dir);
    flipByte(blobFile(dir, digest), 20);
    expectOneProblem(await verify(dir), digest, 'manifest', 'digest mismatch');
  });

  it('a missing layer blob', async () => {
    const dir = copyFixture(PODMAN, work());
    const layer = firstManifest(dir).manifest.layers[2]!;
    fs.rmSync(blobFile(dir, layer.digest));
    expectOneProblem(await verify(dir), layer.digest, 'missing');
  });

  it('a missing config blob', async () => {
    const dir = copyFixture(PODMAN, work());
    const cfg = firstManifest(dir).manifest.config;
    fs.rmSync(blobFile(dir, cfg.digest));
    expectOneProblem(await verify(dir), cfg.digest.slice(7), 'config', 'missing');
  });

  it('a missing manifest blob', async () => {
    const dir = copyFixture(PODMAN, work());
    const {digest} = firstManifest(dir);
    fs.rmSync(blobFile(dir, digest));
    expectOneProblem(await verify(dir), digest, 'not in the archive');
  });

  it('a wrong size in a layer descriptor (too small and too large)', async () => {
    for (const delta of [-1, 1]) {
      const dir = copyFixture(PODMAN, work());
      const layer = firstManifest(dir).manifest.layers[1]!;
      editManifest(dir, (m) => {
        m.layers[1]!.size = layer.size + delta;
      });
      expectOneProblem(await verify(dir), layer.digest, 'size', String(layer.size + delta), String(layer.size));
    }
  });

  it('a wrong size in the config descriptor', async () => {
    const dir = copyFixture(PODMAN, work());
    const cfg = firstManifest(dir).manifest.config;
    editManifest(dir, (m) => {
      m.config.size = cfg.size + 7;
    });
    expectOneProblem(await verify(dir), cfg.digest, 'size', String(cfg.size + 7), String(cfg.size));
  });

  it('a wrong size in the index.json descriptor of the manifest', async () => {
    const dir = copyFixture(PODMAN, work());
    const {digest} = firstManifest(dir);
    const size = fs.statSync(blobFile(dir, digest)).size;
    editIndex(dir, (i) => {
      i.manifests[0]!.size = size - 3;
    });
    expectOneProblem(await verify(dir), digest, 'size', String(size - 3), String(size));
  });

  it('a layer replaced by another valid gzip blob: the diffID no longer matches', async () => {
    const dir = copyFixture(PODMAN, work());
    const {manifest} = firstManifest(dir);
    const layer = manifest.layers[3]!;
    const other = execFileSync('gzip', ['-n', '-c'], {input: craftLayer([{name: 'other.txt', data: 'other'}])});
    const otherDigest = sha256(other);
    fs.writeFileSync(blobFile(dir, otherDigest), other);
    editManifest(dir, (m) => {
      m.layers[3] = {...layer, digest: otherDigest, size: other.length};
    });
    const config = readJson<{rootfs: {diff_ids: string[]}}>(blobFile(dir, manifest.config.digest));
    expectOneProblem(await verify(dir), otherDigest, 'diffID', config.rootfs.diff_ids[3]!);
  });
});

describe.skipIf(peerMissing('tar', 'python3'))('oci-archive corruption (extracted, edited, repacked in order)', () => {
  const SKOPEO_OCI = 'edge.skopeo.oci-archive.tar';

  it('a flipped byte in a layer', async () => {
    const file = copyFixture(SKOPEO_OCI, work());
    let digest = '';
    repack(file, path.dirname(file), (root) => {
      const layer = firstManifest(root).manifest.layers[1]!;
      digest = layer.digest;
      flipByte(blobFile(root, layer.digest), Math.floor(layer.size / 2));
    });
    expectOneProblem(await verify(file), digest);
  });

  it('a missing layer blob', async () => {
    const file = copyFixture(SKOPEO_OCI, work());
    let digest = '';
    repack(file, path.dirname(file), (root) => {
      digest = firstManifest(root).manifest.layers[0]!.digest;
      fs.rmSync(blobFile(root, digest));
    });
    expectOneProblem(await verify(file), digest, 'missing');
  });

  it('a wrong size in a layer descriptor', async () => {
    const file = copyFixture(SKOPEO_OCI, work());
    let layer = {digest: '', size: 0};
    repack(file, path.dirname(file), (root) => {
      layer = firstManifest(root).manifest.layers[2]!;
      const manifest = editManifest(root, (m) => {
        m.layers[2]!.size = layer.size * 2;
      });
      return [`blobs/sha256/${manifest.slice(7)}`];
    });
    expectOneProblem(await verify(file), layer.digest, 'size', String(layer.size * 2), String(layer.size));
  });

  it('a truncated oci-archive', async () => {
    const file = copyFixture(SKOPEO_OCI, work());
    const blob = members(file).find((m) => m.name.startsWith('blobs/sha256/') && m.size > 1000)!;
    truncateFile(file, blob.offset_data + 100);
    expectOneProblem(await verify(file), blob.name, 'truncated');
  });
});
