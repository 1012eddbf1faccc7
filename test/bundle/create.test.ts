/**
 * `ferry bundle create` from a real registry (docker-registry 2.8.2 on loopback), judged by peers:
 * skopeo says what each image is (the pins), GNU tar lists what each part holds, sha256sum checks
 * SHA256SUMS, a private dockerd loads and runs each part alone, containerd imports it, and the
 * spanning image comes back whole through `bundle apply docker-daemon:`.
 */
import {mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {startContainerd, startDockerd, type Containerd, type Dockerd} from '../helpers/daemons.js';
import {peerMissing} from '../helpers/peers.js';
import {startRegistry, type RunningRegistry} from '../helpers/registry.js';
import {blobMembers, blobsOfImage, buildImages, exec, ferryAsync, ferryOk, pushMultiArch, pushWithSkopeo, sha256, skopeoImage, tarMembers, type BuiltImages, type BundleJson, type SkopeoImage} from './kit.js';

const TEXT: Record<string, string> = {a: 'hello from a\n', b: 'hello from b\n', c: 'hello from c\n'};

describe.skipIf(peerMissing('docker-registry', 'skopeo', 'buildah', 'busybox', 'dockerd', 'containerd', 'ctr', 'sha256sum', 'tar'))('bundle create from registry 2.8, judged by skopeo, tar, sha256sum, dockerd and containerd', () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'ferry-bundle-create-'));
  let reg: RunningRegistry;
  let dockerd: Dockerd;
  let containerd: Containerd;
  let built: BuiltImages;
  const refs: Record<string, string> = {};
  const peer: Record<string, SkopeoImage> = {};
  const bundle = path.join(work, 'bundle');
  let manifest: BundleJson;
  let summary: {repeated: {blobs: number; bytes: number}; parts: Array<{file: string}>; bytes: number};
  let maxPartSize = 0;

  beforeAll(async () => {
    [reg, dockerd, containerd, built] = await Promise.all([
      startRegistry(),
      startDockerd(),
      startContainerd(),
      buildImages(work, {
        a: {name: 'test/app-a:1', layers: [{'etc/a.txt': TEXT.a!}]},
        b: {name: 'test/app-b:1', layers: [{'etc/b.txt': TEXT.b!}]},
        c: {name: 'test/app-c:1', layers: [{'etc/c.txt': TEXT.c!}]},
        // Random bytes do not compress: two layers that, with the base, are more than one part.
        d: {name: 'test/app-d:1', layers: [{'data/r1.bin': {random: 900_000}}, {'data/r2.bin': {random: 900_000}}]},
      }),
    ]);
    // a and b as OCI manifests, c and d as Docker schema2: both kinds travel byte for byte.
    for (const [key, format] of [['a', 'oci'], ['b', 'oci'], ['c', 'v2s2'], ['d', 'v2s2']] as const) {
      refs[key] = `${reg.host}/test/app-${key}:1`;
      await pushWithSkopeo(built.archives[key]!, refs[key], format);
      peer[key] = await skopeoImage(`docker://${refs[key]}`);
    }
    const base = peer.a!.manifest.layers[0]!;
    expect(peer.d!.manifest.layers[0]!.digest).toBe(base.digest);
    // The base and d's first layer fit in one part; its second does not.
    maxPartSize = base.size + peer.d!.manifest.layers[1]!.size + 256 * 1024;
    const r = await ferryOk(['bundle', 'create', refs.a!, refs.b!, `docker://${refs.c}`, refs.d!, '-o', bundle, '--max-part-size', String(maxPartSize), '--json']);
    summary = JSON.parse(r.stdout) as typeof summary;
    manifest = JSON.parse(readFileSync(path.join(bundle, 'bundle.json'), 'utf8')) as BundleJson;
  }, 240_000);

  afterAll(async () => {
    await Promise.all([reg?.stop(), dockerd?.stop(), containerd?.stop()]);
    rmSync(work, {recursive: true, force: true});
  });

  it('pins every image to the digest skopeo reports, with its media type, size, platform and blobs', () => {
    expect(manifest.schemaVersion).toBe(1);
    expect(manifest.maxPartSize).toBe(maxPartSize);
    expect(manifest.images.map((m) => m.name)).toEqual(['a', 'b', 'c', 'd'].map((k) => refs[k]));
    for (const [i, key] of ['a', 'b', 'c', 'd'].entries()) {
      const image = manifest.images[i]!;
      const judge = peer[key]!;
      expect(image.sourceDigest).toBe(judge.digest);
      expect(image.digest).toBe(judge.digest);
      expect(image.digest).toBe(sha256(judge.raw));
      expect(image.size).toBe(judge.raw.length);
      expect(image.mediaType).toBe(judge.manifest.mediaType);
      expect(image.platforms).toEqual([judge.platform]);
      const blobs = blobsOfImage(judge);
      expect(image.blobs).toEqual([judge.digest, ...blobs.keys()].sort());
      for (const [digest, size] of blobs) expect(manifest.blobs[digest]).toBe(size);
      expect(manifest.blobs[judge.digest]).toBe(judge.raw.length);
    }
    expect(manifest.images[2]!.ref).toBe(`docker://${refs.c}`);
    expect(manifest.images[0]!.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(manifest.images[3]!.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
  });

  it('SHA256SUMS passes the real sha256sum -c and covers every part and bundle.json', async () => {
    const files = readdirSync(bundle).sort();
    expect(files).toEqual(['SHA256SUMS', 'bundle.json', ...manifest.parts.map((p) => p.file)].sort());
    const r = await exec('sha256sum', ['-c', 'SHA256SUMS'], {cwd: bundle});
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['bundle.json', ...manifest.parts.map((p) => p.file)].map((f) => `${f}: OK`).sort());
    const sums = await exec('sha256sum', manifest.parts.map((p) => p.file), {cwd: bundle});
    for (const part of manifest.parts) expect(sums.stdout).toContain(`${part.sha256}  ${part.file}`);
  });

  it('packs whole images where they fit and spans the one that does not; each part holds what bundle.json says', async () => {
    const parts = manifest.parts.map((p) => p.file);
    expect(parts).toEqual(['part-0001.tar', 'part-0002.tar', 'part-0003.tar']);
    for (const key of ['a', 'b', 'c']) expect(manifest.images.find((m) => m.name === refs[key])!.parts).toEqual(['part-0001.tar']);
    expect(manifest.images.find((m) => m.name === refs.d)!.parts).toEqual(['part-0002.tar', 'part-0003.tar']);
    expect(manifest.parts[0]!.images).toEqual([refs.a, refs.b, refs.c]);
    expect(manifest.parts[1]!.images).toEqual([]);
    expect(manifest.parts[2]!.images).toEqual([refs.d]);
    const members = await Promise.all(parts.map((p) => blobMembers(path.join(bundle, p))));
    for (const [i, part] of manifest.parts.entries()) {
      expect(readFileSync(path.join(bundle, part.file)).length).toBe(part.size);
      for (const d of part.blobs) expect(members[i]!.has(d)).toBe(true);
      // Every part is ferry's default docker-archive layout: an OCI layout plus manifest.json.
      const names = [...(await tarMembers(path.join(bundle, part.file))).keys()];
      for (const n of ['oci-layout', 'index.json', 'manifest.json']) expect(names).toContain(n);
      expect(part.size).toBeLessThanOrEqual(maxPartSize);
    }
    // Whole images: every blob skopeo names (and the manifest) is in part-0001.
    for (const key of ['a', 'b', 'c']) for (const d of [peer[key]!.digest, ...blobsOfImage(peer[key]!).keys()]) expect(members[0]!.has(d), `${key}: ${d}`).toBe(true);
    // The spanning image: the base and its first layer loose in part-0002, the rest in part-0003.
    const d = peer.d!;
    const [base, r1, r2] = d.manifest.layers.map((l) => l.digest);
    expect([...members[1]!.keys()].sort()).toEqual([base, r1].sort());
    expect(members[2]!.has(r2!) && members[2]!.has(d.digest) && members[2]!.has(d.manifest.config.digest)).toBe(true);
    expect(members[2]!.has(base!) || members[2]!.has(r1!)).toBe(false);
  });

  it('says what the repetition costs, as the parts\' members add up', async () => {
    const copies = new Map<string, {n: number; size: number}>();
    for (const part of manifest.parts) {
      for (const [d, size] of await blobMembers(path.join(bundle, part.file))) {
        const c = copies.get(d) ?? {n: 0, size};
        c.n++;
        copies.set(d, c);
      }
    }
    const repeated = [...copies.values()].filter((c) => c.n > 1);
    const cost = {blobs: repeated.length, bytes: repeated.reduce((n, c) => n + (c.n - 1) * c.size, 0)};
    // Here it is the base, stored in part-0001 (for a, b, c) and again in part-0002 (for d).
    expect(cost).toEqual({blobs: 1, bytes: peer.a!.manifest.layers[0]!.size});
    expect(manifest.repeated).toEqual(cost);
    expect(summary.repeated).toEqual(cost);
    expect(summary.bytes).toBe(manifest.parts.reduce((n, p) => n + readFileSync(path.join(bundle, p.file)).length, 0));
  });

  it('the private dockerd loads each part alone and runs what it holds; the spanning image needs its earlier part', async () => {
    const part = (n: number): string => path.join(bundle, `part-000${n}.tar`);
    const loaded = dockerd.docker(['load', '-i', part(1)]);
    for (const key of ['a', 'b', 'c']) {
      expect(loaded).toContain(`Loaded image: ${refs[key]}`);
      expect(dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', refs[key]!]).trim()).toBe(peer[key]!.manifest.config.digest);
      expect(dockerd.docker(['run', '--rm', '--network', 'none', refs[key]!, 'cat', `/etc/${key}.txt`])).toBe(TEXT[key]);
    }
    // The part of loose layers loads as a part with no image in it.
    const loose = dockerd.dockerRaw(['load', '-i', part(2)]);
    expect(loose.status).toBe(0);
    expect(loose.stdout).not.toContain('Loaded image');
    // The part completing d lacks the layers part-0002 carries: docker names one of them.
    const alone = dockerd.dockerRaw(['load', '-i', part(3)]);
    expect(alone.status).not.toBe(0);
    const named = /sha256[:/]([a-f0-9]{64})/.exec(alone.stderr)?.[1];
    expect(named && (await blobMembers(part(2))).has(`sha256:${named}`)).toBe(true);
    // bundle apply puts the parts together: d runs, its random files intact.
    const applied = await ferryAsync(['bundle', 'apply', bundle, 'docker-daemon:'], {env: {DOCKER_HOST: dockerd.host}});
    expect(applied.code, applied.stderr).toBe(0);
    expect(dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', refs.d!]).trim()).toBe(peer.d!.manifest.config.digest);
    const sums = dockerd.docker(['run', '--rm', '--network', 'none', refs.d!, 'sha256sum', '/data/r1.bin', '/data/r2.bin']);
    expect(sums).toContain(`${built.files['/data/r1.bin']}  /data/r1.bin`);
    expect(sums).toContain(`${built.files['/data/r2.bin']}  /data/r2.bin`);
  });

  it('containerd imports a part alone and lists each image under the digest skopeo reports', () => {
    containerd.ctr(['-n', 'test', 'images', 'import', '--snapshotter', 'native', path.join(bundle, 'part-0001.tar')]);
    const listed = containerd.ctr(['-n', 'test', 'images', 'ls']);
    for (const key of ['a', 'b', 'c']) {
      const line = listed.split('\n').find((l) => l.startsWith(`${refs[key]} `));
      expect(line, listed).toBeDefined();
      expect(line).toContain(peer[key]!.digest);
    }
  });

  it('a multi-platform index travels whole (docker loads and runs its amd64 image); --platform keeps one, pinned to the index', async () => {
    const ref = `${reg.host}/test/multi:1`;
    await pushMultiArch(ref);
    const rawIndex = Buffer.from(await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]).then((r) => r.stdout));
    const index = JSON.parse(rawIndex.toString()) as {mediaType: string; manifests: Array<{digest: string; size: number; platform: {architecture: string; os: string}}>};
    const child = (arch: string): {digest: string} => index.manifests.find((m) => m.platform.architecture === arch)!;
    const children = await Promise.all(['amd64', 'arm64'].map((arch) => skopeoImage(`docker://${reg.host}/test/multi@${child(arch).digest}`)));
    const whole = path.join(work, 'multi');
    await ferryOk(['bundle', 'create', ref, '-o', whole]);
    const all = JSON.parse(readFileSync(path.join(whole, 'bundle.json'), 'utf8')) as BundleJson;
    expect(all.images[0]!).toMatchObject({name: ref, sourceDigest: sha256(rawIndex), digest: sha256(rawIndex), mediaType: index.mediaType, size: rawIndex.length, platforms: ['linux/amd64', 'linux/arm64']});
    expect(all.images[0]!.blobs).toEqual([sha256(rawIndex), ...children.flatMap((c) => [c.digest, ...blobsOfImage(c).keys()])].filter((d, i, xs) => xs.indexOf(d) === i).sort());
    const members = await blobMembers(path.join(whole, 'part-0001.tar'));
    for (const d of all.images[0]!.blobs) expect(members.has(d), d).toBe(true);
    expect(dockerd.docker(['load', '-i', path.join(whole, 'part-0001.tar')])).toContain(`Loaded image: ${ref}`);
    expect(dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', ref]).trim()).toBe(children[0]!.manifest.config.digest);
    expect(dockerd.docker(['run', '--rm', '--network', 'none', ref, 'cat', '/etc/arch.txt'])).toBe('amd64\n');
    // One platform: pinned to the index the tag named, stored as that platform's manifest.
    const one = path.join(work, 'multi-arm64');
    await ferryOk(['bundle', 'create', ref, '-o', one, '--platform', 'linux/arm64']);
    const picked = JSON.parse(readFileSync(path.join(one, 'bundle.json'), 'utf8')) as BundleJson;
    expect(picked.images[0]!).toMatchObject({sourceDigest: sha256(rawIndex), digest: children[1]!.digest, size: children[1]!.raw.length, platforms: ['linux/arm64']});
    expect([...(await blobMembers(path.join(one, 'part-0001.tar'))).keys()].sort()).toEqual([children[1]!.digest, ...blobsOfImage(children[1]!).keys()].sort());
  });
});
