/**
 * The OCI layout grammar ferry writes (formats/layout/write.ts): layer media types that tell the
 * truth about the bytes, manifests kept byte-exact when nothing changed and generated as OCI
 * otherwise, indexes kept or regenerated, and index.json names. Expected media types and annotation
 * keys are the image-spec's; expected digests come from skopeo over the fixtures.
 */
import {writeFileSync} from 'node:fs';
import path from 'node:path';
import {gzipSync} from 'node:zlib';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {dockerSaveNames, indexFor, indexJson, manifestFor, ociLayerMediaType, ociLayoutNames, planLayout} from '../../../src/formats/layout/write.js';
import {RangeLayer} from '../../../src/io/layers/range-layer.js';
import {FileRange} from '../../../src/io/bytes/file-range.js';
import {sha256Of, type Digest} from '../../../src/model/digest.js';
import {isImageIndex, listImages, type Archive, type Image, type ImageIndex} from '../../../src/model/image.js';
import {openArchive} from '../../../src/transports/table.js';
import {peerMissing} from '../../helpers/peers.js';
import {FIXTURES, makeMultiPlatformLayout, makeTmp, removeTmp, sha256, skopeoConfigDigest, skopeoManifest} from '../../ops/convert-fixtures.js';
import {DEFAULT_LIMITS} from '../../../src/settings.js';

const TAR = Buffer.concat([Buffer.from('not really a tar but uncompressed'), Buffer.alloc(1024)]);

function layerOver(dir: string, name: string, bytes: Buffer, mediaType: string): RangeLayer {
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  return new RangeLayer({mediaType, digest: sha256Of(bytes), size: bytes.length}, sha256Of(TAR), new FileRange(file, 0, bytes.length, name), DEFAULT_LIMITS);
}

describe('ociLayerMediaType', () => {
  let dir: string;
  beforeAll(() => {
    dir = makeTmp('ferry-lw-');
  });
  afterAll(() => removeTmp(dir));

  it('maps Docker layer types to the OCI ones (image-spec media-types.md)', async () => {
    expect(await ociLayerMediaType(layerOver(dir, 'a', TAR, 'application/vnd.docker.image.rootfs.diff.tar'))).toBe('application/vnd.oci.image.layer.v1.tar');
    expect(await ociLayerMediaType(layerOver(dir, 'b', gzipSync(TAR), 'application/vnd.docker.image.rootfs.diff.tar.gzip'))).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
  });

  it('believes the bytes over a wrong label (containers/image labels uncompressed layers tar.gzip)', async () => {
    expect(await ociLayerMediaType(layerOver(dir, 'c', TAR, 'application/vnd.docker.image.rootfs.diff.tar.gzip'))).toBe('application/vnd.oci.image.layer.v1.tar');
    expect(await ociLayerMediaType(layerOver(dir, 'd', gzipSync(TAR), 'application/vnd.oci.image.layer.v1.tar'))).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
  });

  it('keeps non-distributable layers non-distributable, and leaves artifact layer types alone', async () => {
    expect(await ociLayerMediaType(layerOver(dir, 'e', gzipSync(TAR), 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'))).toBe('application/vnd.oci.image.layer.nondistributable.v1.tar+gzip');
    expect(await ociLayerMediaType(layerOver(dir, 'f', TAR, 'application/vnd.cncf.helm.chart.content.v1.tar+gzip'))).toBe('application/vnd.cncf.helm.chart.content.v1.tar+gzip');
  });
});

describe.skipIf(peerMissing('skopeo'))('manifests and indexes', () => {
  let tmp: string;
  const archives: Archive[] = [];
  const open = async (source: string): Promise<Archive> => {
    const a = await openArchive(source);
    archives.push(a);
    return a;
  };
  beforeAll(() => {
    tmp = makeTmp('ferry-lw2-');
  });
  afterAll(async () => {
    for (const a of archives) await a.close();
    removeTmp(tmp);
  });

  it('keeps an unchanged OCI manifest byte for byte (skopeo sees the same bytes in the source)', async () => {
    const source = path.join(FIXTURES, 'edge.podman.oci');
    const [{image}] = listImages(await open(source)) as [{image: Image}];
    const doc = await manifestFor(image);
    expect(sha256(doc.bytes)).toBe(sha256(skopeoManifest(`oci:${source}`).bytes));
  });

  it('generates an OCI manifest for a docker-save image: OCI types, the config bytes skopeo reads, diffIDs as layer digests', async () => {
    const source = path.join(FIXTURES, 'edge.docker-save.tar');
    const [{image}] = listImages(await open(source)) as [{image: Image}];
    const doc = await manifestFor(image);
    const m = JSON.parse(doc.bytes.toString()) as {schemaVersion: number; mediaType: string; config: {mediaType: string; digest: string; size: number}; layers: Array<{mediaType: string; digest: string}>};
    expect(m.schemaVersion).toBe(2);
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(m.config.mediaType).toBe('application/vnd.oci.image.config.v1+json');
    expect(m.config.digest).toBe(skopeoConfigDigest(`docker-archive:${source}`));
    const skopeoLayers = skopeoManifest(`docker-archive:${source}`).parsed.layers;
    expect(m.layers.map((l) => l.digest)).toEqual(skopeoLayers.map((l) => l.digest));
    expect(m.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar')).toBe(true);
    expect(doc.digest).toBe(sha256(doc.bytes));
  });

  it('keeps a whole OCI index byte for byte, and regenerates it (platforms and annotations kept) when a child is dropped', async () => {
    const layout = path.join(tmp, 'mp');
    const made = makeMultiPlatformLayout(path.join(FIXTURES, 'edge.podman.oci'), layout, {absentArm64: false, name: 'docker.io/x/mp:1'});
    const archive = await open(`oci:${layout}`);
    const index = archive.entries[0]!.root as ImageIndex;
    expect(isImageIndex(index)).toBe(true);
    const children = index.children.map((c) => ({...c.descriptor}));
    expect(indexFor(index, children).digest).toBe(made.indexDigest);
    const regenerated = indexFor(index, children.slice(0, 1));
    const parsed = JSON.parse(regenerated.bytes.toString()) as {mediaType: string; manifests: Array<{digest: string; platform: {architecture: string}}>};
    expect(regenerated.digest).not.toBe(made.indexDigest);
    expect(parsed.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(parsed.manifests.map((m) => [m.digest, m.platform.architecture])).toEqual([[made.amd64, 'amd64']]);
  });

  it('plans every blob once across images sharing layers', async () => {
    const archive = await open(path.join(FIXTURES, 'edge-multi.docker-save.tar'));
    const plan = await planLayout(archive.entries);
    const layers = new Set(listImages(archive).flatMap(({image}) => image.layers.map((l) => l.descriptor.digest)));
    expect(plan.images).toBe(2);
    expect(plan.blobs.size).toBe(layers.size + 2 + 2);
  });

  it('names index.json entries the Docker 25 way (full name + tag) or the podman way (full name twice)', async () => {
    const archive = await open(path.join(FIXTURES, 'edge.docker-save.tar'));
    const plan = await planLayout([{...archive.entries[0]!, names: ['docker.io/library/demo:1', 'registry.example:5000/a/b:v2']}, {...archive.entries[0]!, names: []}]);
    const docker = JSON.parse(indexJson(plan.roots, dockerSaveNames).toString()) as {mediaType: string; manifests: Array<{annotations?: Record<string, string>}>};
    expect(docker.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(docker.manifests.map((m) => m.annotations)).toEqual([
      {'io.containerd.image.name': 'docker.io/library/demo:1', 'org.opencontainers.image.ref.name': '1'},
      {'io.containerd.image.name': 'registry.example:5000/a/b:v2', 'org.opencontainers.image.ref.name': 'v2'},
      undefined,
    ]);
    const oci = JSON.parse(indexJson(plan.roots, ociLayoutNames).toString()) as {manifests: Array<{annotations?: Record<string, string>}>};
    expect(oci.manifests[0]!.annotations).toEqual({'io.containerd.image.name': 'docker.io/library/demo:1', 'org.opencontainers.image.ref.name': 'docker.io/library/demo:1'});
  });

  it('a config digest is the sha256 of its bytes, never re-serialised', async () => {
    const archive = await open(path.join(FIXTURES, 'edge.skopeo.oci-archive.tar'));
    const plan = await planLayout(archive.entries);
    const [{image}] = listImages(archive) as [{image: Image}];
    const member = plan.blobs.get(image.config.digest as Digest);
    expect(member?.type).toBe('file');
    if (member?.type === 'file') expect(sha256(member.bytes)).toBe(skopeoConfigDigest(`oci-archive:${path.join(FIXTURES, 'edge.skopeo.oci-archive.tar')}`));
  });
});
