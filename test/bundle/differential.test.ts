/**
 * Differential bundles and determinism, judged by peers: three images sharing a base in one
 * docker-registry 2.8.2, one of them updated; the far side (a second instance, filled by skopeo)
 * holds the old set. `bundle inventory` of it, `create --have`, and tar's listing of the parts says
 * the bundle carries the new layer, the manifests and the configs, and nothing else; applied, skopeo
 * reads the new image with the source's digest; applied to an empty registry it fails up front,
 * naming the blobs that registry lacks, and nothing lands there. Two creates give the same bytes.
 */
import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {peerMissing} from '../helpers/peers.js';
import {startRegistry, type RunningRegistry} from '../helpers/registry.js';
import {blobMembers, blobsOfImage, buildImages, execOk, ferryAsync, ferryOk, pushWithSkopeo, registryContents, skopeoImage, type BundleJson, type SkopeoImage} from './kit.js';

describe.skipIf(peerMissing('docker-registry', 'skopeo', 'buildah', 'busybox', 'tar'))('differential bundles and determinism, judged by registry 2.8, skopeo and tar', () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'ferry-bundle-diff-'));
  let source: RunningRegistry;
  let site: RunningRegistry;
  let empty: RunningRegistry;
  const peer: Record<string, SkopeoImage> = {};
  const refs: Record<string, string> = {};
  const have = path.join(work, 'have.json');
  const diff = path.join(work, 'diff');

  beforeAll(async () => {
    let built;
    [source, site, empty, built] = await Promise.all([
      startRegistry(),
      startRegistry(),
      startRegistry(),
      buildImages(work, {
        a: {name: 'test/app-a:1', layers: [{'etc/a.txt': 'a\n'}]},
        b: {name: 'test/app-b:1', layers: [{'etc/b.txt': 'b\n'}]},
        c1: {name: 'test/app-c:1', layers: [{'etc/c.txt': 'c one\n'}]},
        c2: {name: 'test/app-c:2', layers: [{'etc/c.txt': 'c two\n', 'etc/new.bin': {random: 200_000}}]},
      }),
    ]);
    for (const [key, tag] of [['a', 'test/app-a:1'], ['b', 'test/app-b:1'], ['c1', 'test/app-c:1'], ['c2', 'test/app-c:2']] as const) {
      refs[key] = `${source.host}/${tag}`;
      await pushWithSkopeo(built.archives[key]!, refs[key]);
      peer[key] = await skopeoImage(`docker://${refs[key]}`);
    }
    // The far side holds the old set, copied there by skopeo.
    for (const key of ['a', 'b', 'c1']) await execOk('skopeo', ['copy', '-q', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${refs[key]}`, `docker://${site.host}/site/${refs[key]!.slice(source.host.length + 1)}`]);
  }, 240_000);

  afterAll(async () => {
    await Promise.all([source?.stop(), site?.stop(), empty?.stop()]);
    rmSync(work, {recursive: true, force: true});
  });

  it('inventory of the far side lists every blob skopeo says its images have, and where', async () => {
    const r = await ferryOk(['bundle', 'inventory', `docker://${site.host}/site`]);
    writeFileSync(have, r.stdout);
    const inv = JSON.parse(r.stdout) as {schemaVersion: number; blobs: Record<string, {size: number; repositories: string[]}>};
    expect(inv.schemaVersion).toBe(1);
    for (const key of ['a', 'b', 'c1']) {
      const repo = `site/${refs[key]!.slice(source.host.length + 1).replace(/:.*$/, '')}`;
      for (const [d, size] of [[peer[key]!.digest, peer[key]!.raw.length] as const, ...blobsOfImage(peer[key]!)]) {
        expect(inv.blobs[d], d).toEqual(expect.objectContaining({size}));
        expect(inv.blobs[d]!.repositories).toContain(repo);
      }
    }
    expect(inv.blobs[peer.c2!.manifest.layers[1]!.digest]).toBeUndefined();
  });

  it('create --have carries the new layer, the manifests and the configs, and nothing else', async () => {
    const r = await ferryOk(['bundle', 'create', refs.a!, refs.b!, refs.c2!, '-o', diff, '--have', have, '--json']);
    const summary = JSON.parse(r.stdout) as {omitted: {blobs: number; bytes: number}};
    const manifest = JSON.parse(readFileSync(path.join(diff, 'bundle.json'), 'utf8')) as BundleJson;
    const stored = new Map<string, number>();
    for (const part of manifest.parts) for (const [d, size] of await blobMembers(path.join(diff, part.file))) stored.set(d, size);
    const newLayer = peer.c2!.manifest.layers[1]!;
    const expected = new Map<string, number>([[newLayer.digest, newLayer.size]]);
    for (const key of ['a', 'b', 'c2']) {
      expected.set(peer[key]!.digest, peer[key]!.raw.length);
      expected.set(peer[key]!.manifest.config.digest, peer[key]!.manifest.config.size);
    }
    expect(new Map([...stored].sort())).toEqual(new Map([...expected].sort()));
    // What it left out: the base and a's and b's own layers, with the repositories holding them.
    const left = [peer.a!.manifest.layers[0]!, peer.a!.manifest.layers[1]!, peer.b!.manifest.layers[1]!];
    expect(Object.keys(manifest.omitted).sort()).toEqual(left.map((l) => l.digest).sort());
    expect(manifest.omitted[peer.b!.manifest.layers[1]!.digest]).toEqual(['site/test/app-b']);
    expect(summary.omitted).toEqual({blobs: 3, bytes: left.reduce((n, l) => n + l.size, 0)});
    expect(r.stderr).toMatch(/left out 3 blob\(s\) the target holds/);
  });

  it('applied to the far side: skopeo reads the updated image with the source\'s digest, the others unchanged', async () => {
    await ferryOk(['bundle', 'apply', diff, `docker://${site.host}/site`]);
    const c2 = await skopeoImage(`docker://${site.host}/site/test/app-c:2`);
    expect(c2.digest).toBe(peer.c2!.digest);
    expect(c2.raw.equals(peer.c2!.raw)).toBe(true);
    for (const [key, tag] of [['a', 'test/app-a:1'], ['b', 'test/app-b:1'], ['c1', 'test/app-c:1']] as const) expect((await skopeoImage(`docker://${site.host}/site/${tag}`)).digest).toBe(peer[key]!.digest);
    // The registry can hand out every blob of the new image (skopeo copies it whole).
    await execOk('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${site.host}/site/test/app-c:2`, `dir:${path.join(work, 'c2-dir')}`]);
    expect(readdirSync(path.join(work, 'c2-dir')).sort()).toEqual([...blobsOfImage(peer.c2!).keys()].map((d) => d.slice('sha256:'.length)).concat(['manifest.json', 'version']).sort());
  });

  it('applied to an empty registry: fails before anything moves, naming each blob it lacks once', async () => {
    const r = await ferryAsync(['bundle', 'apply', diff, `docker://${empty.host}/site`]);
    expect(r.code).toBe(1);
    const lacking = [peer.a!.manifest.layers[0]!, peer.a!.manifest.layers[1]!, peer.b!.manifest.layers[1]!].map((l) => l.digest);
    for (const d of lacking) expect(r.stderr).toContain(d);
    expect(r.stderr).toMatch(/lacks 3 blob\(s\)/);
    expect(r.stderr).not.toContain(peer.c2!.manifest.layers[1]!.digest);
    expect(registryContents(empty.storageRoot)).toEqual({repositories: [], blobs: []});
    expect((await execOk('curl', ['-s', `${empty.url}/v2/_catalog`])).trim()).toBe('{"repositories":[]}');
  });

  it('-f LIST: comments and blank lines skipped; a name:tag@sha256 pin is read by the digest and applied under the tag', async () => {
    const list = path.join(work, 'images.txt');
    // Tag test/app-c:1 names c1; the pin says c2's manifest (same repository): the pin wins, the tag names it.
    writeFileSync(list, `# the week's images\n\n${refs.a}   # a\n${refs.c1}@${peer.c2!.digest}\n`);
    const dir = path.join(work, 'pinned');
    await ferryOk(['bundle', 'create', '-f', list, '-o', dir]);
    const manifest = JSON.parse(readFileSync(path.join(dir, 'bundle.json'), 'utf8')) as BundleJson;
    expect(manifest.images.map((m) => [m.name, m.sourceDigest])).toEqual([
      [refs.a, peer.a!.digest],
      [refs.c1, peer.c2!.digest],
    ]);
    await ferryOk(['bundle', 'apply', dir, `docker://${site.host}/pinned`]);
    expect((await skopeoImage(`docker://${site.host}/pinned/test/app-c:1`)).digest).toBe(peer.c2!.digest);
    expect((await skopeoImage(`docker://${site.host}/pinned/test/app-a:1`)).digest).toBe(peer.a!.digest);
  });

  it('two creates of the same inputs give byte-identical parts, bundle.json and SHA256SUMS', async () => {
    const size = String(peer.c2!.manifest.layers[1]!.size + peer.a!.manifest.layers[0]!.size + 64 * 1024);
    const inputs = [refs.a!, refs.b!, refs.c1!, refs.c2!];
    const [x, y] = [path.join(work, 'det-x'), path.join(work, 'det-y')];
    await ferryOk(['bundle', 'create', ...inputs, '-o', x, '--max-part-size', size]);
    await ferryOk(['bundle', 'create', ...inputs, '-o', y, '--max-part-size', size]);
    const files = readdirSync(x).sort();
    expect(files.filter((f) => f.startsWith('part-')).length).toBeGreaterThan(1);
    expect(readdirSync(y).sort()).toEqual(files);
    for (const f of files) expect(readFileSync(path.join(x, f)).equals(readFileSync(path.join(y, f))), f).toBe(true);
  });
});
