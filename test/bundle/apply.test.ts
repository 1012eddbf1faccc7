/**
 * `ferry bundle apply` and `ferry bundle verify`, judged by peers: a second docker-registry 2.8.2
 * instance serves (to skopeo) the digests the source registry does; an OCI layout skopeo made keeps
 * its image and gains the bundle's (skopeo and umoci read it); with a part deleted or damaged, verify
 * names the images whose blobs tar no longer finds, and apply moves the rest or nothing.
 */
import {copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {peerMissing} from '../helpers/peers.js';
import {startRegistry, type RunningRegistry} from '../helpers/registry.js';
import {blobMembers, blobsOfImage, buildImages, exec, execOk, ferryAsync, ferryOk, pushWithSkopeo, registryContents, sha256, skopeoImage, tarExtract, type BuiltImages, type BundleJson, type SkopeoImage} from './kit.js';

const KEYS = ['a', 'b', 'c', 'd'] as const;

describe.skipIf(peerMissing('docker-registry', 'skopeo', 'buildah', 'busybox', 'umoci', 'tar'))('bundle apply and verify, judged by a second registry, skopeo, umoci and tar', () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'ferry-bundle-apply-'));
  let source: RunningRegistry;
  let target: RunningRegistry;
  let built: BuiltImages;
  const refs: Record<string, string> = {};
  const peer: Record<string, SkopeoImage> = {};
  const bundle = path.join(work, 'bundle');
  let manifest: BundleJson;
  /** Blobs (tar's view) of each part. */
  const members: Record<string, Map<string, number>> = {};

  /** A copy of the bundle without some parts (hard copies: the tests damage them). */
  const copyWithout = (name: string, drop: string[]): string => {
    const dir = path.join(work, name);
    mkdirSync(dir);
    for (const f of readdirSync(bundle)) if (!drop.includes(f)) copyFileSync(path.join(bundle, f), path.join(dir, f));
    return dir;
  };
  /** Which images are whole in what the remaining parts hold, by tar's listing and skopeo's manifests. */
  const wholeWithout = (drop: string[]): string[] => {
    const present = new Set(manifest.parts.filter((p) => !drop.includes(p.file)).flatMap((p) => [...members[p.file]!.keys()]));
    return KEYS.filter((k) => [peer[k]!.digest, ...blobsOfImage(peer[k]!).keys()].every((d) => present.has(d))).map((k) => refs[k]!);
  };

  beforeAll(async () => {
    [source, target, built] = await Promise.all([
      startRegistry(),
      startRegistry(),
      buildImages(work, {
        a: {name: 'test/app-a:1', layers: [{'etc/a.txt': 'a\n'}]},
        b: {name: 'test/app-b:1', layers: [{'etc/b.txt': 'b\n'}]},
        c: {name: 'test/app-c:1', layers: [{'etc/c.txt': 'c\n'}]},
        d: {name: 'test/app-d:1', layers: [{'data/r1.bin': {random: 900_000}}, {'data/r2.bin': {random: 900_000}}]},
        keep: {name: 'test/keep:1', layers: [{'etc/keep.txt': 'kept\n'}]},
      }),
    ]);
    for (const [key, format] of [['a', 'oci'], ['b', 'oci'], ['c', 'v2s2'], ['d', 'v2s2']] as const) {
      refs[key] = `${source.host}/test/app-${key}:1`;
      await pushWithSkopeo(built.archives[key]!, refs[key], format);
      peer[key] = await skopeoImage(`docker://${refs[key]}`);
    }
    const maxPartSize = peer.d!.manifest.layers[0]!.size + peer.d!.manifest.layers[1]!.size + 256 * 1024;
    await ferryOk(['bundle', 'create', ...KEYS.map((k) => refs[k]!), '-o', bundle, '--max-part-size', String(maxPartSize)]);
    manifest = JSON.parse(readFileSync(path.join(bundle, 'bundle.json'), 'utf8')) as BundleJson;
    for (const part of manifest.parts) members[part.file] = await blobMembers(path.join(bundle, part.file));
    // The shape the tests below rely on: a, b, c whole in one part, d across the two others.
    expect(manifest.parts.length).toBe(3);
    expect(wholeWithout(['part-0001.tar'])).toEqual([refs.d]);
  }, 240_000);

  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
    rmSync(work, {recursive: true, force: true});
  });

  it('into a second registry: skopeo reads every image under the prefix with the source registry\'s digest and bytes', async () => {
    const r = await ferryOk(['bundle', 'apply', bundle, `docker://${target.host}/mirror`]);
    for (const key of KEYS) {
      const there = await skopeoImage(`docker://${target.host}/mirror/test/app-${key}:1`);
      expect(there.digest).toBe(peer[key]!.digest);
      expect(there.raw.equals(peer[key]!.raw)).toBe(true);
      expect(r.stdout).toContain(`applied ${target.host}/mirror/test/app-${key}:1 ${peer[key]!.digest}`);
    }
    const stored = registryContents(target.storageRoot);
    expect(stored.repositories).toEqual(KEYS.map((k) => `mirror/test/app-${k}`));
    for (const key of KEYS) for (const d of [peer[key]!.digest, ...blobsOfImage(peer[key]!).keys()]) expect(stored.blobs).toContain(d);
    // Applied again: nothing changes, nothing fails.
    await ferryOk(['bundle', 'apply', bundle, `docker://${target.host}/mirror`]);
    expect((await skopeoImage(`docker://${target.host}/mirror/test/app-d:1`)).digest).toBe(peer.d!.digest);
  });

  it('into an OCI layout skopeo made: its image stays as skopeo named it, the bundle\'s are added (skopeo and umoci read them)', async () => {
    const layout = path.join(work, 'layout');
    await execOk('skopeo', ['copy', '-q', `docker-archive:${built.archives.keep}`, `oci:${layout}:keep`]);
    const before = await skopeoImage(`oci:${layout}:keep`, []);
    await ferryOk(['bundle', 'apply', bundle, `oci:${layout}`]);
    // The image the layout held is still there under its own name and digest.
    expect((await skopeoImage(`oci:${layout}:keep`, [])).digest).toBe(before.digest);
    const listed = (await execOk('umoci', ['ls', '--layout', layout])).trim().split('\n').sort();
    expect(listed).toEqual(['keep', ...KEYS.map((k) => refs[k]!)].sort());
    // skopeo picks OCI manifests out by name (not Docker schema2 ones: docs/peers.md): a and b.
    for (const key of ['a', 'b']) {
      const there = await skopeoImage(`oci:${layout}:${refs[key]}`, []);
      expect(there.digest).toBe(peer[key]!.digest);
      expect(there.raw.equals(peer[key]!.raw)).toBe(true);
    }
    // Every blob of every image is in blobs/, named by its digest.
    for (const key of KEYS) {
      for (const d of [peer[key]!.digest, ...blobsOfImage(peer[key]!).keys()]) {
        expect(sha256(readFileSync(path.join(layout, 'blobs', 'sha256', d.slice('sha256:'.length))))).toBe(d);
      }
    }
    const bundleDir = path.join(work, 'umoci-a');
    await execOk('umoci', ['unpack', '--rootless', '--image', `${layout}:${refs.a}`, bundleDir]);
    expect(readFileSync(path.join(bundleDir, 'rootfs/etc/a.txt'), 'utf8')).toBe('a\n');
  });

  it('verify names exactly the images a deleted part leaves incomplete (exit 1), for each part', async () => {
    const intact = await ferryAsync(['bundle', 'verify', bundle]);
    expect(intact.code).toBe(0);
    for (const part of manifest.parts) {
      const dir = copyWithout(`without-${part.file}`, [part.file]);
      const whole = wholeWithout([part.file]);
      const r = await ferryAsync(['bundle', 'verify', dir, '--json']);
      expect(r.code).toBe(1);
      const result = JSON.parse(r.stdout) as {ok: boolean; images: Array<{name: string; complete: boolean; missing: string[]}>};
      expect(result.ok).toBe(false);
      expect(result.images.filter((i) => i.complete).map((i) => i.name)).toEqual(whole);
      for (const i of result.images.filter((x) => !x.complete)) expect(i.missing).toEqual([part.file]);
      const text = await ferryAsync(['bundle', 'verify', dir]);
      expect(text.code).toBe(1);
      for (const key of KEYS) expect(text.stdout).toMatch(new RegExp(`^${whole.includes(refs[key]!) ? 'complete  ' : 'incomplete'} ${refs[key]!.replace(/[.]/g, '\\.')} `, 'm'));
    }
  });

  it('apply with a part missing: nothing moves without --keep-going; with it the rest is applied, exit 1, and the report says which', async () => {
    const dir = copyWithout('missing-1', ['part-0001.tar']);
    const refused = await ferryAsync(['bundle', 'apply', dir, `docker://${target.host}/partial`]);
    expect(refused.code).toBe(1);
    for (const key of ['a', 'b', 'c']) expect(refused.stderr).toContain(refs[key]);
    expect(refused.stderr).toContain('part-0001.tar');
    expect(registryContents(target.storageRoot).repositories.filter((r) => r.startsWith('partial/'))).toEqual([]);
    const report = path.join(work, 'report.json');
    const rest = await ferryAsync(['bundle', 'apply', dir, `docker://${target.host}/partial`, '--keep-going', '--report', report]);
    expect(rest.code).toBe(1);
    expect((await skopeoImage(`docker://${target.host}/partial/test/app-d:1`)).digest).toBe(peer.d!.digest);
    expect(registryContents(target.storageRoot).repositories.filter((r) => r.startsWith('partial/'))).toEqual(['partial/test/app-d']);
    const items = JSON.parse(readFileSync(report, 'utf8')) as Array<{ref: string; digest?: string; error?: string}>;
    expect(items.filter((i) => i.error !== undefined).map((i) => i.ref).sort()).toEqual(['a', 'b', 'c'].map((k) => refs[k]!).sort());
    expect(items.find((i) => i.error === undefined)).toEqual({ref: `${target.host}/partial/test/app-d:1`, digest: peer.d!.digest});
  });

  it('a part with one byte flipped is named by verify; apply --keep-going moves the sound images and names the bad blob', async () => {
    const dir = copyWithout('damaged', []);
    const file = path.join(dir, 'part-0002.tar');
    const r1 = peer.d!.manifest.layers[1]!.digest;
    // Where r1's bytes sit in the part: found by their content, as tar extracts them.
    const blob = await tarExtract(file, `blobs/sha256/${r1.slice('sha256:'.length)}`);
    const bytes = readFileSync(file);
    const at = bytes.indexOf(blob.subarray(0, 4096));
    expect(at).toBeGreaterThan(0);
    bytes[at + (blob.length >> 1)] ^= 0xff;
    writeFileSync(file, bytes);
    const r = await ferryAsync(['bundle', 'verify', dir, '--json']);
    expect(r.code).toBe(1);
    const result = JSON.parse(r.stdout) as {images: Array<{name: string; complete: boolean; damaged: string[]}>; parts: Array<{file: string; ok: boolean}>; problems: string[]};
    expect(result.parts.filter((p) => !p.ok).map((p) => p.file)).toEqual(['part-0002.tar']);
    expect(result.problems.join('\n')).toContain(file);
    expect(result.images.filter((i) => !i.complete).map((i) => [i.name, i.damaged])).toEqual([[refs.d, ['part-0002.tar']]]);
    // sha256sum -c agrees on which file is bad.
    const sums = await exec('sha256sum', ['-c', 'SHA256SUMS'], {cwd: dir});
    expect(sums.code).toBe(1);
    expect(sums.stdout).toContain('part-0002.tar: FAILED');
    const applied = await ferryAsync(['bundle', 'apply', dir, `docker://${target.host}/damaged`, '--keep-going']);
    expect(applied.code).toBe(1);
    expect(applied.stderr).toContain(r1);
    for (const key of ['a', 'b', 'c']) expect((await skopeoImage(`docker://${target.host}/damaged/test/app-${key}:1`)).digest).toBe(peer[key]!.digest);
    const missing = await exec('skopeo', ['inspect', '--tls-verify=false', `docker://${target.host}/damaged/test/app-d:1`]);
    expect(missing.code).not.toBe(0);
  });
});
