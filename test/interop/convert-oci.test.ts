/**
 * Issue 3, "Done when" 4, 5 (OCI part) and 6: ferry's oci: and oci-archive: outputs read by
 * oci-image-tool, umoci, skopeo and podman; multi-image oci-archives picked by name; multi-platform
 * indexes kept whole, picked with --platform, or pruned of absent platforms. Expected values come
 * from the sources read with skopeo or tar + JSON, never from ferry.
 */
import {readFileSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {convertArchive} from '../../src/ops/convert.js';
import {buildBusyboxArchive, makePodman, runRaw} from '../helpers/daemons.js';
import {peerMissing} from '../helpers/peers.js';
import {ArchiveView, canonicalName, expectPodmanLoads, describeArchive, FIXTURES, makeMultiPlatformLayout, makeTmp, OCI_INDEX, removeTmp, sha256, skopeoConfigDigest, skopeoManifest, tarDirectory, type ExpectedImage} from '../ops/convert-fixtures.js';

const BB_NAME = 'ferry-test/bb-oci:1';
const LAYERS = [{'hello.txt': 'hello from layer 1\n'}, {'hello.txt': 'layer 2 wins\n', 'etc/motd': 'motd\n'}];

describe.skipIf(peerMissing('skopeo', 'umoci', 'oci-image-tool', 'podman', 'buildah', 'busybox'))('oci and oci-archive outputs are read by the real tools', () => {
  let tmp: string;
  let busybox: string;
  let expected: ExpectedImage;

  beforeAll(async () => {
    tmp = makeTmp('ferry-oci-');
    busybox = await buildBusyboxArchive(path.join(tmp, 'bb.tar'), BB_NAME, LAYERS);
    expected = describeArchive(busybox, 'docker-archive')[0]!;
  });
  afterAll(() => {
    if (tmp) removeTmp(tmp);
  });

  for (const compress of ['keep', 'gzip'] as const) {
    it(`oci:DIR (${compress}): oci-image-tool validate, umoci unpack, skopeo inspect`, async () => {
      const dir = path.join(tmp, `bb-${compress}.layout`);
      await convertArchive(busybox, `oci:${dir}`, {compress, tags: [BB_NAME]});
      const name = canonicalName(BB_NAME);
      // oci-image-tool 1.0.0-rc1 has no `--type imageLayout` ("unimplemented", docs/peers.md): `--type image`
      // on the layout directory validates index.json, every manifest, config and layer it reaches.
      const validated = runRaw('oci-image-tool', ['validate', '--type', 'image', dir]);
      expect(validated.status, validated.stderr + validated.stdout).toBe(0);
      expect(validated.stdout + validated.stderr).toMatch(/Validation succeeded/);
      const bundle = path.join(tmp, `bb-${compress}.bundle`);
      const unpacked = runRaw('umoci', ['unpack', '--rootless', '--image', `${dir}:${name}`, bundle]);
      expect(unpacked.status, unpacked.stderr).toBe(0);
      expect(readFileSync(path.join(bundle, 'rootfs', 'hello.txt'), 'utf8')).toBe('layer 2 wins\n');
      expect(readFileSync(path.join(bundle, 'rootfs', 'etc', 'motd'), 'utf8')).toBe('motd\n');
      expect(skopeoConfigDigest(`oci:${dir}:${name}`)).toBe(expected.configDigest);
      const manifest = skopeoManifest(`oci:${dir}:${name}`).parsed;
      expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(manifest.config.mediaType).toBe('application/vnd.oci.image.config.v1+json');
      const want = compress === 'gzip' ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar';
      expect(manifest.layers.map((l) => l.mediaType)).toEqual(expected.diffIds.map(() => want));
      // keep: the uncompressed docker layers are copied byte for byte, so blob digest = diffID.
      if (compress === 'keep') expect(manifest.layers.map((l) => l.digest)).toEqual(expected.diffIds);
      else expect(manifest.layers.map((l) => l.digest)).not.toEqual(expected.diffIds);
      expect(describeArchive(dir, 'oci')).toEqual([{...expected, names: [name]}]);
    });
  }

  it('oci-archive: podman load, and skopeo copy oci-archive:… docker-archive:… keeps the config', async () => {
    const out = path.join(tmp, 'bb.oci.tar');
    await convertArchive(busybox, `oci-archive:${out}`, {tags: [BB_NAME]});
    await expectPodmanLoads(out, BB_NAME, expected);
    const copied = path.join(tmp, 'bb.skopeo-copied.tar');
    const r = runRaw('skopeo', ['copy', '-q', `oci-archive:${out}`, `docker-archive:${copied}:${BB_NAME}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(describeArchive(copied, 'docker-archive')).toEqual([{...expected, names: [canonicalName(BB_NAME)]}]);
  });

  it('a multi-image oci-archive lists every image in index.json and skopeo picks each by name', async () => {
    const source = path.join(FIXTURES, 'edge-multi.docker-save.tar');
    const images = describeArchive(source, 'docker-archive');
    const out = path.join(tmp, 'multi.oci.tar');
    await convertArchive(source, `oci-archive:${out}`);
    const view = new ArchiveView(out);
    const index = view.json<{manifests: Array<{annotations: Record<string, string>}>}>('index.json');
    view.close();
    const allNames = images.flatMap((i) => i.names).sort();
    expect(index.manifests.map((m) => m.annotations['io.containerd.image.name']).sort()).toEqual(allNames);
    for (const image of images) {
      for (const name of image.names) {
        expect(skopeoConfigDigest(`oci-archive:${out}:${name}`)).toBe(image.configDigest);
        const copied = path.join(tmp, `picked-${sha256(name).slice(7, 19)}.tar`);
        const r = runRaw('skopeo', ['copy', '-q', `oci-archive:${out}:${name}`, `docker-archive:${copied}:${name}`]);
        expect(r.status, r.stderr).toBe(0);
        expect(describeArchive(copied, 'docker-archive').map((i) => i.configDigest)).toEqual([image.configDigest]);
      }
    }
  });

  it('an unchanged OCI manifest keeps its bytes (and digest); recompressing regenerates it with the same diffIDs', async () => {
    const source = path.join(FIXTURES, 'edge.podman.oci');
    const sourceManifest = skopeoManifest(`oci:${source}`);
    const kept = path.join(tmp, 'edge-kept.oci.tar');
    await convertArchive(source, `oci-archive:${kept}`);
    const keptManifest = skopeoManifest(`oci-archive:${kept}:localhost/ferry-fixture/edge:1`);
    expect(sha256(keptManifest.bytes)).toBe(sha256(sourceManifest.bytes));
    const plain = path.join(tmp, 'edge-plain.layout');
    await convertArchive(source, `oci:${plain}`, {compress: 'none'});
    const plainManifest = skopeoManifest(`oci:${plain}:localhost/ferry-fixture/edge:1`).parsed;
    const [image] = describeArchive(source, 'oci');
    expect(plainManifest.layers.map((l) => l.digest)).toEqual(image!.diffIds);
    expect(plainManifest.layers.map((l) => l.mediaType)).toEqual(image!.diffIds.map(() => 'application/vnd.oci.image.layer.v1.tar'));
    expect(plainManifest.config.digest).toBe(image!.configDigest);
  });

  it('a multi-platform index is kept whole (byte for byte), and --platform picks one image', async () => {
    const layout = path.join(tmp, 'multi-platform.layout');
    const made = makeMultiPlatformLayout(path.join(FIXTURES, 'edge.podman.oci'), layout, {absentArm64: false, name: 'docker.io/ferry-test/mp:1'});
    const whole = path.join(tmp, 'mp-whole.oci.tar');
    await convertArchive(`oci:${layout}`, `oci-archive:${whole}`);
    const view = new ArchiveView(whole);
    const top = view.json<{manifests: Array<{digest: string; mediaType: string}>}>('index.json').manifests;
    view.close();
    expect(top.map((d) => [d.mediaType, d.digest])).toEqual([[OCI_INDEX, made.indexDigest]]);
    for (const arch of ['amd64', 'arm64']) {
      const r = runRaw('skopeo', ['--override-arch', arch, 'inspect', '--raw', '--config', `oci-archive:${whole}:docker.io/ferry-test/mp:1`]);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).architecture).toBe(arch);
    }
    const picked = path.join(tmp, 'mp-arm64.layout');
    await convertArchive(`oci:${layout}`, `oci:${picked}`, {platform: {os: 'linux', architecture: 'arm64'}});
    const index = JSON.parse(readFileSync(path.join(picked, 'index.json'), 'utf8')) as {manifests: Array<{digest: string; mediaType: string}>};
    expect(index.manifests.map((d) => [d.mediaType, d.digest])).toEqual([['application/vnd.oci.image.manifest.v1+json', made.arm64]]);
    expect(skopeoConfigDigest(`oci:${picked}:docker.io/ferry-test/mp:1`)).toBe(made.arm64Config);
    await expect(convertArchive(`oci:${layout}`, `oci:${path.join(tmp, 'mp-s390x.layout')}`, {platform: {os: 'linux', architecture: 's390x'}})).rejects.toThrow(/no image for platform linux\/s390x.*present: linux\/amd64, linux\/arm64\/v8/);
  });

  it('a multi-platform index with an absent platform (kind#3795): the written index lists only what is present', async () => {
    const layout = path.join(tmp, 'partial.layout');
    const made = makeMultiPlatformLayout(path.join(FIXTURES, 'edge.podman.oci'), layout, {absentArm64: true, name: 'docker.io/ferry-test/partial:1'});
    const source = tarDirectory(layout, path.join(tmp, 'partial.source.oci.tar'));
    for (const dest of ['oci-archive', 'oci'] as const) {
      const notes: string[] = [];
      const out = path.join(tmp, `partial-out-${dest}`);
      await convertArchive(source, `${dest}:${out}`, {note: (m) => notes.push(m)});
      expect(notes.some((n) => /platform linux\/arm64\/v8 .*not in the source/.test(n))).toBe(true);
      const view = new ArchiveView(out);
      const top = view.json<{manifests: Array<{digest: string}>}>('index.json').manifests[0]!;
      const written = view.json<{manifests: Array<{digest: string; platform: {architecture: string}}>}>(`blobs/${top.digest.replace(':', '/')}`);
      view.close();
      expect(written.manifests.map((m) => [m.digest, m.platform.architecture])).toEqual([[made.amd64, 'amd64']]);
      expect(skopeoConfigDigest(`${dest}:${out}:docker.io/ferry-test/partial:1`)).toBe(describeArchive(layout, 'oci')[0]!.configDigest);
    }
  });
});
