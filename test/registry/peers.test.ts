/**
 * The peers judge ferry's registry transfers against Debian's real registry (distribution 2.8.2):
 * skopeo, a private dockerd (`--insecure-registry`), podman and containerd's ctr read what ferry
 * pushed and report the digest ferry printed (docker runs it, too); ferry pulls what each of them
 * pushed and reports, and pushes back, the digest they reported. The images are a small runnable
 * busybox image built at test time and a Docker 25+ / buildx save of it (an index with an attestation).
 */
import {existsSync, readFileSync, rmSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {buildBusyboxArchive, makePodman, startContainerd, startDockerd, type Containerd, type Dockerd, type Sandbox} from '../helpers/daemons.js';
import {peerMissing} from '../helpers/peers.js';
import {dockerSaveWithAttestation, type AttestedSave} from '../helpers/real-world.js';
import {startRegistry, type RunningRegistry} from '../helpers/registry.js';
import {execOk, ferryOk, isolatedEnv, registryDigest, sha256, skopeoInspect, skopeoRaw, tempDir} from './common.js';

const HELLO = 'hello from a ferry push\n';

/** `pushed REF sha256:…` → the digest ferry says the reference names now. */
function pushedDigest(stdout: string, ref: string): string {
  const m = new RegExp(`^pushed ${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} (sha256:[0-9a-f]{64})$`, 'm').exec(stdout);
  if (!m) throw new Error(`no "pushed ${ref} DIGEST" line in: ${stdout}`);
  return m[1]!;
}

describe.skipIf(peerMissing('docker-registry', 'skopeo', 'buildah', 'busybox'))('peers read what ferry pushes, ferry reads what peers push (distribution 2.8.2)', () => {
  let reg: RunningRegistry;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let archive: string;
  let attested: AttestedSave;
  /** What ferry pushed: the busybox image (legacy archive → ferry's OCI manifest) and the Docker 25+ index. */
  let image: {ref: string; digest: string};
  let index: {ref: string; digest: string};

  beforeAll(async () => {
    reg = await startRegistry();
    work = tempDir('ferry-reg-peers-');
    env = isolatedEnv(work);
    archive = await buildBusyboxArchive(path.join(work, 'bb.tar'), 'ferry-test/bb:1', [{'etc/hello.txt': HELLO}]);
    attested = dockerSaveWithAttestation(path.join(work, 'attested'), {base: archive, tags: ['ferry-test/attested:1']});
    const imageRef = `${reg.host}/ferry/bb:1`;
    image = {ref: imageRef, digest: pushedDigest((await ferryOk(['push', archive, imageRef], env)).stdout, imageRef)};
    const indexRef = `${reg.host}/ferry/attested:1`;
    index = {ref: indexRef, digest: pushedDigest((await ferryOk(['push', attested.tar, indexRef], env)).stdout, indexRef)};
  });
  afterAll(async () => {
    await reg?.stop();
    if (work) rmSync(work, {recursive: true, force: true});
  });

  describe('skopeo', () => {
    it('reads what ferry pushed: the digest ferry printed, the archive\'s config, and every blob (copy to oci:)', async () => {
      expect((await skopeoInspect(image.ref)).Digest).toBe(image.digest);
      expect((await skopeoRaw(image.ref)).rawDigest).toBe(image.digest);
      const archiveConfig = (await execOk('skopeo', ['inspect', '--config', '--raw', `docker-archive:${archive}`])).stdoutBytes;
      const registryConfig = (await execOk('skopeo', ['inspect', '--config', '--raw', '--tls-verify=false', `docker://${image.ref}`])).stdoutBytes;
      expect(registryConfig.equals(archiveConfig)).toBe(true);
      // skopeo copies it out whole (checking every blob) into dir:, which keeps the manifest bytes.
      const out = path.join(work, 'skopeo-of-ferry');
      await execOk('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${image.ref}`, `dir:${out}`]);
      expect(sha256(readFileSync(path.join(out, 'manifest.json')))).toBe(image.digest);
      // (Into oci: skopeo gzips the uncompressed layers of a legacy docker save, so the digest changes there.)
      const oci = path.join(work, 'skopeo-of-ferry.oci');
      await execOk('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${image.ref}`, `oci:${oci}:bb`]);
      const written = JSON.parse(readFileSync(path.join(oci, 'index.json'), 'utf8')) as {manifests: Array<{digest: string}>};
      const rewritten = JSON.parse(readFileSync(path.join(oci, 'blobs', 'sha256', written.manifests[0]!.digest.slice(7)), 'utf8')) as {config: {digest: string}; layers: Array<{mediaType: string}>};
      expect(rewritten.config.digest).toBe(sha256(archiveConfig));
      expect(rewritten.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip')).toBe(true);
      // The index too: skopeo copies every instance and its attestation, and keeps the index digest.
      expect((await skopeoRaw(index.ref)).rawDigest).toBe(index.digest);
      expect(index.digest).toBe(attested.indexDigest);
      const all = path.join(work, 'skopeo-of-ferry-index');
      await execOk('skopeo', ['copy', '-q', '--all', '--src-tls-verify=false', `docker://${index.ref}`, `oci:${all}:attested`]);
      expect((JSON.parse(readFileSync(path.join(all, 'index.json'), 'utf8')) as {manifests: Array<{digest: string}>}).manifests[0]!.digest).toBe(index.digest);
      for (const blob of attested.blobs) expect(existsSync(path.join(all, 'blobs', 'sha256', blob.slice(7))), blob).toBe(true);
    });

    it('ferry pulls what skopeo pushed and pushes it back under the digest skopeo reported', async () => {
      const ref = `${reg.host}/skopeo/bb:1`;
      await execOk('skopeo', ['copy', '-q', '--dest-tls-verify=false', `docker-archive:${archive}`, `docker://${ref}`]);
      const expected = (await skopeoInspect(ref)).Digest;
      const dest = `oci-archive:${path.join(work, 'from-skopeo.oci.tar')}`;
      expect((await ferryOk(['pull', ref, dest], env)).stdout).toContain(`pulled ${ref} ${expected}`);
      expect((await ferryOk(['verify', dest], env)).stdout).toMatch(/^ok/);
      // skopeo reads the manifest ferry stored as the bytes it pushed.
      expect(sha256((await execOk('skopeo', ['inspect', '--raw', dest])).stdoutBytes)).toBe(expected);
      const back = `${reg.host}/skopeo-back/bb:1`;
      expect(pushedDigest((await ferryOk(['push', dest, back], env)).stdout, back)).toBe(expected);
      expect((await skopeoInspect(back)).Digest).toBe(expected);
    });
  });

  describe.skipIf(peerMissing('dockerd'))('a private dockerd 20.10 (--insecure-registry)', () => {
    let dockerd: Dockerd;
    beforeAll(async () => {
      dockerd = await startDockerd({extraArgs: ['--insecure-registry', reg.host]});
    });
    afterAll(async () => {
      await dockerd?.stop();
    });

    it('docker pull + docker run --network none of what ferry pushed; RepoDigests name the digest ferry printed', () => {
      const pulled = dockerd.docker(['pull', image.ref]);
      expect(pulled).toContain(`Digest: ${image.digest}`);
      const repoDigests = JSON.parse(dockerd.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', image.ref])) as string[];
      expect(repoDigests).toContain(`${reg.host}/ferry/bb@${image.digest}`);
      expect(dockerd.docker(['run', '--rm', '--network', 'none', image.ref, 'cat', '/etc/hello.txt'])).toBe(HELLO);
    });

    it('docker pull of the index ferry pushed (an image and its buildx attestation): the index digest, and it runs', () => {
      const pulled = dockerd.docker(['pull', index.ref]);
      expect(pulled).toContain(`Digest: ${index.digest}`);
      const repoDigests = JSON.parse(dockerd.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', index.ref])) as string[];
      expect(repoDigests).toContain(`${reg.host}/ferry/attested@${index.digest}`);
      expect(dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', index.ref]).trim()).toBe(attested.configDigest);
      expect(dockerd.docker(['run', '--rm', '--network', 'none', index.ref, 'cat', '/etc/hello.txt'])).toBe(HELLO);
    });

    it('ferry pulls what docker pushed (schema2, gzip layers) and pushes it back under the digest docker printed', async () => {
      const ref = `${reg.host}/docker/bb:1`;
      dockerd.docker(['tag', image.ref, ref]);
      const out = dockerd.docker(['push', ref]);
      const expected = /digest: (sha256:[0-9a-f]{64})/.exec(out)?.[1];
      expect(expected, out).toBeDefined();
      expect(await registryDigest(reg, 'docker/bb', '1')).toBe(expected);
      const dest = path.join(work, 'from-docker.tar');
      expect((await ferryOk(['pull', ref, dest], env)).stdout).toContain(`pulled ${ref} ${expected}`);
      const back = `${reg.host}/docker-back/bb:1`;
      expect(pushedDigest((await ferryOk(['push', dest, back], env)).stdout, back)).toBe(expected);
      // docker pulls the copy by that digest: nothing to download, it is the image it has.
      expect(dockerd.docker(['pull', `${reg.host}/docker-back/bb@${expected}`])).toContain(`Digest: ${expected}`);
      // And loads ferry's archive of it (the Docker 25+ form) as the same image ID.
      const loaded = dockerd.docker(['load', '-i', dest]);
      expect(loaded).toContain(ref);
      expect(dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', ref]).trim()).toBe(dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', image.ref]).trim());
    });
  });

  describe.skipIf(peerMissing('podman'))('podman 4.3 (--tls-verify=false)', () => {
    let podman: Sandbox;
    beforeAll(() => {
      podman = makePodman();
    });
    afterAll(async () => {
      await podman?.cleanup();
    });

    it('podman pull of what ferry pushed reports the digest ferry printed', () => {
      podman.run(['pull', '-q', '--tls-verify=false', image.ref]);
      const [inspected] = JSON.parse(podman.run(['image', 'inspect', image.ref])) as Array<{Digest: string; RepoDigests: string[]; Id: string}>;
      expect(inspected!.Digest).toBe(image.digest);
      expect(inspected!.RepoDigests).toContain(`${reg.host}/ferry/bb@${image.digest}`);
      // And the index: podman picks the amd64 image, but keeps the index digest as the one it pulled.
      podman.run(['pull', '-q', '--tls-verify=false', index.ref]);
      const [fromIndex] = JSON.parse(podman.run(['image', 'inspect', index.ref])) as Array<{Digest: string; RepoDigests: string[]; Id: string}>;
      expect(fromIndex!.Id).toBe(attested.configDigest.slice(7));
      expect(fromIndex!.RepoDigests).toContain(`${reg.host}/ferry/attested@${index.digest}`);
    });

    it('ferry pulls what podman pushed and pushes it back under the digest podman wrote', async () => {
      const ref = `${reg.host}/podman/bb:1`;
      const digestFile = path.join(work, 'podman.digest');
      podman.run(['push', '-q', '--tls-verify=false', '--digestfile', digestFile, image.ref, `docker://${ref}`]);
      const expected = readFileSync(digestFile, 'utf8').trim();
      expect(await registryDigest(reg, 'podman/bb', '1')).toBe(expected);
      const dest = `oci:${path.join(work, 'from-podman')}`;
      expect((await ferryOk(['pull', ref, dest], env)).stdout).toContain(`pulled ${ref} ${expected}`);
      const back = `${reg.host}/podman-back/bb:1`;
      expect(pushedDigest((await ferryOk(['push', dest, back], env)).stdout, back)).toBe(expected);
      expect((await skopeoInspect(back)).Digest).toBe(expected);
    });
  });

  describe.skipIf(peerMissing('containerd', 'ctr'))('containerd 1.6 (ctr --plain-http)', () => {
    let containerd: Containerd;
    beforeAll(async () => {
      containerd = await startContainerd();
    });
    afterAll(async () => {
      await containerd?.stop();
    });

    /** `ctr images ls` rows: REF TYPE DIGEST SIZE PLATFORMS LABELS. */
    const listed = (): Map<string, {type: string; digest: string}> =>
      new Map(
        containerd
          .ctr(['images', 'ls'])
          .split('\n')
          .slice(1)
          .filter(Boolean)
          .map((l) => l.split(/\s+/))
          .map(([ref, type, digest]) => [ref!, {type: type!, digest: digest!}]),
      );

    it('ctr images pull of what ferry pushed (image and index) lists the digests ferry printed', () => {
      for (const {ref, digest} of [image, index]) {
        containerd.ctr(['images', 'pull', '--plain-http', '--snapshotter', 'native', ref]);
        expect(listed().get(ref)?.digest, ref).toBe(digest);
      }
      expect(listed().get(index.ref)?.type).toBe('application/vnd.oci.image.index.v1+json');
    });

    it('ferry pulls what ctr pushed and pushes it back under the digest containerd has', async () => {
      const ref = `${reg.host}/ctr/attested:1`;
      // ctr 1.6 `pull --all-platforms` tries to unpack the attestation (unknown/unknown) as a layer and
      // fails; `content fetch --all-platforms` brings its blobs without unpacking, so push has the whole index.
      containerd.ctr(['content', 'fetch', '--plain-http', '--all-platforms', index.ref]);
      containerd.ctr(['images', 'tag', index.ref, ref]);
      containerd.ctr(['images', 'push', '--plain-http', ref]);
      const expected = listed().get(ref)!.digest;
      expect(await registryDigest(reg, 'ctr/attested', '1')).toBe(expected);
      const dest = path.join(work, 'from-ctr.tar');
      expect((await ferryOk(['pull', ref, dest], env)).stdout).toContain(`pulled ${ref} ${expected}`);
      const back = `${reg.host}/ctr-back/attested:1`;
      expect(pushedDigest((await ferryOk(['push', dest, back], env)).stdout, back)).toBe(expected);
      // ctr imports ferry's archive of it under the same digest.
      containerd.ctr(['images', 'rm', ref]);
      containerd.ctr(['images', 'import', '--snapshotter', 'native', dest]);
      expect(listed().get(ref)?.digest).toBe(expected);
    });
  });
});
