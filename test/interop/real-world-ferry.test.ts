/**
 * ferry on the archives buildx, Docker 25+, cosign, Helm and Windows registries produce (built by
 * test/helpers/real-world.ts with real digests; test/interop/real-world-fixtures.test.ts shows the
 * peers accept them). Every command must work on the images beside the content that is not an image,
 * keep that content byte for byte in OCI outputs, and the peers must read what ferry writes.
 * Expected digests are the sha256 of the fixtures' own bytes or what skopeo reports.
 */
import {spawnSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry} from '../helpers/cli.js';
import {buildBusyboxArchive, runRaw, startDockerd, type Dockerd} from '../helpers/daemons.js';
import {peerMissing} from '../helpers/peers.js';
import {cosignSave, dockerSaveWithAttestation, layoutWithArtifacts, trailingData, windowsForeignLayers, type ArtifactLayout, type AttestedSave, type CosignSave, type TrailingData, type WindowsForeign} from '../helpers/real-world.js';

const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface InspectJson {
  images: Array<{names: string[]; configDigest: string; manifestDigest: string | null}>;
  artifacts: Array<{digest: string; kind: string; artifactType: string; subject: string | null; names: string[]; annotations: Record<string, string>}>;
}

function inspect(source: string, ...extra: string[]): InspectJson {
  const r = ferry(['inspect', '--json', source, ...extra]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as InspectJson;
}

function ok(args: string[]): string {
  const r = ferry(args);
  expect(r.status, `${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r.stderr;
}

function skopeoRaw(ref: string): Buffer {
  const r = spawnSync('skopeo', ['inspect', '--raw', ref]);
  if (r.status !== 0) throw new Error(`skopeo inspect --raw ${ref}: ${r.stderr.toString()}`);
  return r.stdout;
}

/** Blob files of a layout written by ferry, each checked to hash to its name. */
function layoutBlobs(dir: string): Set<string> {
  const files = spawnSync('ls', [path.join(dir, 'blobs', 'sha256')], {encoding: 'utf8'}).stdout.trim().split('\n');
  for (const f of files) expect(sha(readFileSync(path.join(dir, 'blobs', 'sha256', f)))).toBe(`sha256:${f}`);
  return new Set(files.map((f) => `sha256:${f}`));
}

describe.skipIf(peerMissing('skopeo', 'umoci', 'oci-image-tool', 'buildah', 'dockerd', 'tar'))('ferry on real-world archives', () => {
  let dir: string;
  let base: string;
  let a: AttestedSave;
  let b: ArtifactLayout;
  let cs: CosignSave;
  let c: WindowsForeign;
  let d: TrailingData;
  beforeAll(async () => {
    dir = await import('node:fs').then((fs) => fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-rwf-')));
    base = await buildBusyboxArchive(path.join(dir, 'base.tar'), 'ferry-test/base:1', [{'app/hello.txt': 'hello from the base\n'}]);
    a = dockerSaveWithAttestation(path.join(dir, 'a'), {base, tags: ['ferry-test/app:1', 'ferry-test/app:latest']});
    b = layoutWithArtifacts(path.join(dir, 'b'), {base});
    cs = cosignSave(path.join(dir, 'cs'), {base});
    c = windowsForeignLayers(path.join(dir, 'c'));
    d = trailingData(path.join(dir, 'd'), {base});
  }, 300_000);
  afterAll(() => rmSync(dir, {recursive: true, force: true}));

  describe('attestation manifests (buildx, Docker 25+)', () => {
    it('inspect lists the image once, and the attestation apart, naming what it attests', () => {
      const r = inspect(a.tar);
      expect(r.images.map((i) => [i.manifestDigest, i.configDigest])).toEqual([[a.imageManifestDigest, a.configDigest]]);
      expect(r.images[0]!.names.sort()).toEqual(['ferry-test/app:1', 'ferry-test/app:latest']);
      expect(r.artifacts).toHaveLength(1);
      expect(r.artifacts[0]).toMatchObject({digest: a.attestationManifestDigest, kind: 'attestation', subject: a.imageManifestDigest});
      expect(r.artifacts[0]!.annotations['vnd.docker.reference.type']).toBe('attestation-manifest');
    });

    it('--image NAME picks the image alone; verify checks the attestation by digest', () => {
      expect(inspect(a.tar, '--image', 'ferry-test/app:1').images.map((i) => i.manifestDigest)).toEqual([a.imageManifestDigest]);
      const r = ferry(['verify', '--json', a.tar]);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ok: true, images: 1, artifacts: 1});
    });

    it('convert keeps the index byte for byte in every OCI output; skopeo copy --all and umoci read it', () => {
      for (const dest of [`oci:${path.join(dir, 'a-oci')}`, `oci-archive:${path.join(dir, 'a.oci.tar')}`, `docker-archive:${path.join(dir, 'a.docker.tar')}`]) ok(['convert', a.tar, dest]);
      const index = readFileSync(path.join(a.dir, 'blobs', 'sha256', a.indexDigest.slice(7)));
      expect(sha(skopeoRaw(`oci:${path.join(dir, 'a-oci')}:docker.io/ferry-test/app:1`))).toBe(a.indexDigest);
      expect(skopeoRaw(`oci-archive:${path.join(dir, 'a.oci.tar')}:docker.io/ferry-test/app:1`).equals(index)).toBe(true);
      const blobs = layoutBlobs(path.join(dir, 'a-oci'));
      for (const blob of [a.attestationManifestDigest, a.attestationConfigDigest, a.statementDigests.sbom, a.statementDigests.provenance]) expect(blobs.has(blob), blob).toBe(true);
      const copy = runRaw('skopeo', ['copy', '--all', `oci:${path.join(dir, 'a-oci')}:docker.io/ferry-test/app:1`, `oci:${path.join(dir, 'a-skopeo')}:copied`]);
      expect(copy.status, copy.stderr).toBe(0);
      expect(sha(skopeoRaw(`oci:${path.join(dir, 'a-skopeo')}:copied`))).toBe(a.indexDigest);
      const umoci = runRaw('umoci', ['ls', '--layout', path.join(dir, 'a-oci')]);
      expect(umoci.status, umoci.stderr).toBe(0);
      expect(umoci.stdout).toContain('docker.io/ferry-test/app:1');
    });

    it('--platform keeps the platform and its attestation (a new index, said so)', () => {
      const out = path.join(dir, 'a-amd64');
      const stderr = ok(['convert', a.tar, `oci:${out}`, '--platform', 'linux/amd64']);
      expect(stderr).toMatch(/kept linux\/amd64 and its 1 attestation\(s\) in a new index/);
      const r = inspect(`oci:${out}`);
      expect(r.images.map((i) => i.manifestDigest)).toEqual([a.imageManifestDigest]);
      expect(r.artifacts.map((x) => x.digest)).toEqual([a.attestationManifestDigest]);
    });

    it('the legacy docker-archive leaves attestations out, with a note', () => {
      const stderr = ok(['convert', a.tar, `docker-archive:${path.join(dir, 'a.legacy.tar')}`, '--docker-layout', 'legacy']);
      expect(stderr).toMatch(/legacy docker-archive layout cannot hold the index's 1 attestation/);
      expect(inspect(path.join(dir, 'a.legacy.tar')).artifacts).toEqual([]);
    });
  });

  describe('artifacts beside an image (Helm chart, OCI 1.1 referrer, cosign signature)', () => {
    it('inspect lists one image and three artifacts; export, ls and cat work on the image', () => {
      const r = inspect(`oci:${b.dir}`);
      expect(r.images.map((i) => i.manifestDigest)).toEqual([b.image.manifestDigest]);
      expect(r.artifacts.map((x) => [x.digest, x.kind]).sort()).toEqual(
        [
          [b.chart.manifestDigest, 'artifact'],
          [b.referrer.manifestDigest, 'artifact'],
          [b.signature.manifestDigest, 'signature'],
        ].sort(),
      );
      expect(r.artifacts.find((x) => x.digest === b.referrer.manifestDigest)!.subject).toBe(b.image.manifestDigest);
      expect(ferry(['ls', `oci:${b.dir}`, '/app']).stdout).toContain('/app/hello.txt');
      expect(ferry(['cat', `oci:${b.dir}`, '/app/hello.txt']).stdout).toBe('hello from the base\n');
      ok(['export', `oci:${b.dir}`, path.join(dir, 'b-rootfs.tar')]);
      ok(['verify', `oci:${b.dir}`]);
    });

    it('convert keeps every artifact byte for byte, its index.json descriptor with it; skopeo reads them', () => {
      const out = path.join(dir, 'b-oci');
      ok(['convert', `oci:${b.dir}`, `oci:${out}`]);
      const index = JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8')) as {manifests: Array<{digest: string; annotations?: Record<string, string>}>};
      const source = JSON.parse(readFileSync(path.join(b.dir, 'index.json'), 'utf8')) as {manifests: Array<{digest: string; annotations?: Record<string, string>}>};
      for (const kept of source.manifests.filter((m) => m.digest !== b.image.manifestDigest)) expect(index.manifests).toContainEqual(kept);
      expect(sha(skopeoRaw(`oci:${out}:${b.refs.chart}`))).toBe(b.chart.manifestDigest);
      expect(sha(skopeoRaw(`oci:${out}:${b.refs.signature}`))).toBe(b.signature.manifestDigest);
      const blobs = layoutBlobs(out);
      for (const blob of [b.chart.configDigest, b.chart.chartDigest, b.referrer.blobDigest, b.referrer.emptyConfigDigest]) expect(blobs.has(blob), blob).toBe(true);
      expect(runRaw('umoci', ['ls', '--layout', out]).stdout).toContain(b.refs.chart);
    });

    it('--image picks the image and brings its referrers along, never an artifact by its name', () => {
      const out = path.join(dir, 'b-picked');
      ok(['convert', `oci:${b.dir}`, `oci:${out}`, '--image', b.image.manifestDigest]);
      const r = inspect(`oci:${out}`);
      expect(r.images).toHaveLength(1);
      expect(r.artifacts.map((x) => x.digest).sort()).toEqual([b.referrer.manifestDigest, b.signature.manifestDigest].sort());
      expect(ferry(['inspect', '--image', b.refs.chart, `oci:${b.dir}`]).status).toBe(1);
    });

    it('cosign save: the image (named by nothing) and its signature, kept', () => {
      const r = inspect(`oci:${cs.dir}`);
      expect(r.images.map((i) => i.manifestDigest)).toEqual([cs.imageManifestDigest]);
      expect(r.artifacts.map((x) => [x.digest, x.kind])).toEqual([[cs.signatureManifestDigest, 'signature']]);
      const out = path.join(dir, 'cs.oci.tar');
      ok(['convert', `oci:${cs.dir}`, `oci-archive:${out}`, '--tag', 'ferry-test/signed:1']);
      expect(inspect(out).artifacts.map((x) => x.digest)).toEqual([cs.signatureManifestDigest]);
    });
  });

  describe('foreign layers (Windows base images)', () => {
    it('verify notes the absent foreign layer (urls) and succeeds; export says the layer is foreign', () => {
      for (const source of [`oci:${c.dockerForeign.dir}`, `oci:${c.ociNondistributable.dir}`]) {
        const r = ferry(['verify', source]);
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).toMatch(/note: .*foreign layer, not in the archive \(urls: https:\/\/mcr\.microsoft\.com\//);
        const e = ferry(['export', source, path.join(dir, 'never.tar')]);
        expect(e.status).toBe(1);
        expect(e.stderr).toMatch(/foreign layer, not in the archive .*its files cannot be read/);
      }
    });

    it('OCI outputs keep the foreign descriptor with its urls; docker-archive outputs keep LayerSources', () => {
      const out = path.join(dir, 'c-oci');
      ok(['convert', `oci:${c.ociNondistributable.dir}`, `oci:${out}`]);
      const manifest = JSON.parse(skopeoRaw(`oci:${out}`).toString()) as {layers: Array<{digest: string; urls?: string[]}>};
      expect(manifest.layers[0]).toMatchObject({digest: c.ociNondistributable.foreign.digest, urls: c.ociNondistributable.foreign.urls});
      const docker = path.join(dir, 'c.docker.tar');
      ok(['convert', `oci:${c.dockerForeign.dir}`, `docker-archive:${docker}`]);
      const items = JSON.parse(spawnSync('tar', ['-xOf', docker, 'manifest.json'], {encoding: 'utf8'}).stdout) as Array<{LayerSources?: Record<string, {digest: string; urls?: string[]}>}>;
      expect(items[0]!.LayerSources?.[c.dockerForeign.foreignDiffId]).toMatchObject({digest: c.dockerForeign.foreign.digest, urls: c.dockerForeign.foreign.urls});
      const legacy = path.join(dir, 'c.legacy.tar');
      ok(['convert', c.legacyLayerSources.tar, `docker-archive:${legacy}`, '--docker-layout', 'legacy']);
      const legacyItems = JSON.parse(spawnSync('tar', ['-xOf', legacy, 'manifest.json'], {encoding: 'utf8'}).stdout) as Array<{LayerSources?: Record<string, {digest: string}>}>;
      expect(legacyItems[0]!.LayerSources?.[c.legacyLayerSources.foreignDiffId]?.digest).toBe(c.legacyLayerSources.foreign.digest);
    });
  });

  describe('bytes after the compressed stream', () => {
    it('verify reports trailing data after a gzip and a zstd stream; the controls verify', () => {
      for (const [source, kind] of [
        [d.gzipZerosDockerArchive.tar, 'gzip'],
        [`oci:${d.gzipZerosOci.dir}`, 'gzip'],
        [`oci:${d.zstdGarbageOci.dir}`, 'zstd'],
      ] as const) {
        const r = ferry(['verify', source]);
        expect(r.status, source).toBe(1);
        expect(r.stderr).toMatch(new RegExp(`data after the end of the ${kind} stream`));
      }
      for (const source of [d.control.tar, `oci:${d.zstdControlOci.dir}`]) expect(ferry(['verify', source]).status, source).toBe(0);
    });

    it('convert refuses such a layer by default and writes nothing; --compress gzip repairs it, and docker loads the result', async () => {
      const refused = ferry(['convert', `oci:${d.gzipZerosOci.dir}`, `docker-archive:${path.join(dir, 'trailing.tar')}`]);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(/data after the end of the gzip stream/);
      const repaired = path.join(dir, 'repaired.tar');
      ok(['convert', `oci:${d.gzipZerosOci.dir}`, `docker-archive:${repaired}`, '--compress', 'gzip']);
      ok(['verify', repaired]);
      expect(inspect(repaired).images[0]!.configDigest).toBe(d.gzipZerosOci.configDigest);
      const dockerd: Dockerd = await startDockerd();
      try {
        const load = dockerd.dockerRaw(['load', '-i', repaired]);
        expect(load.status, load.stderr).toBe(0);
        expect(dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', d.gzipZerosOci.tag]).trim()).toBe(d.gzipZerosOci.configDigest);
        // The attestation archive as ferry's docker-archive (the OCI view keeps the attestation):
        // docker 20.10 loads it through manifest.json and runs the image.
        const attested = dockerd.dockerRaw(['load', '-i', path.join(dir, 'a.docker.tar')]);
        expect(attested.status, attested.stderr).toBe(0);
        expect(dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', 'ferry-test/app:1']).trim()).toBe(a.configDigest);
        expect(dockerd.docker(['run', '--rm', '--network', 'none', 'ferry-test/app:1', 'cat', '/app/hello.txt'])).toBe('hello from the base\n');
      } finally {
        await dockerd.stop();
      }
    });
  });

  it('oci-image-tool validates the image of an OCI output holding artifacts (copied out alone, as rc1 needs)', () => {
    const out = path.join(dir, 'b-alone');
    mkdirSync(out, {recursive: true});
    ok(['convert', `oci:${b.dir}`, `oci:${path.join(out, 'l')}`, '--image', b.image.manifestDigest]);
    // The source's tag-only ref.name ("v1", as skopeo's oci:DIR:v1 writes) names the image in the OCI output too.
    const copy = runRaw('skopeo', ['copy', `oci:${path.join(out, 'l')}:v1`, `oci:${path.join(out, 'alone')}:v1`]);
    expect(copy.status, copy.stderr).toBe(0);
    const r = runRaw('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=v1', path.join(out, 'alone')]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    writeFileSync(path.join(out, 'ok'), '');
  });
});
