/**
 * The docker-archive writer over hand-built models: RepoTags, repositories, repeated layers stored
 * once, zero-layer images, the one-image-per-name rule of manifest.json. Archives are read back
 * with GNU tar and Python's tarfile; the rules are those of docs/formats.md §1–2 (moby's tarexport).
 */
import {execFileSync} from 'node:child_process';
import {writeFileSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {repoTags, writeDockerArchive} from '../../../src/formats/docker-archive/write.js';
import {RangeLayer} from '../../../src/io/layers/range-layer.js';
import {FileRange} from '../../../src/io/bytes/file-range.js';
import {parseConfig} from '../../../src/model/config.js';
import {sha256Of} from '../../../src/model/digest.js';
import type {ArchiveEntry, Image, ImageIndex} from '../../../src/model/image.js';
import {peerMissing} from '../../helpers/peers.js';
import {ArchiveView, makeTmp, removeTmp, sha256, tarHeaders} from '../../ops/convert-fixtures.js';
import {DEFAULT_LIMITS} from '../../../src/settings.js';

describe('repoTags', () => {
  it('writes familiar name:tag only, as docker save does', () => {
    expect(repoTags(['docker.io/library/demo:1', 'docker.io/ns/app:2', 'registry.example:5000/a/b:3', 'localhost/x:4'])).toEqual(['demo:1', 'ns/app:2', 'registry.example:5000/a/b:3', 'localhost/x:4']);
  });
  it('leaves out digest references (docker load aborts on them) and repeats', () => {
    expect(repoTags([`demo@sha256:${'a'.repeat(64)}`, 'docker.io/library/demo:1', 'demo:1'])).toEqual(['demo:1']);
  });
});

describe.skipIf(peerMissing('python3'))('writeDockerArchive', () => {
  let dir: string;
  let a: RangeLayer;
  let b: RangeLayer;
  beforeAll(() => {
    dir = makeTmp('ferry-dw-');
    const tarOf = (name: string, content: string): RangeLayer => {
      const src = path.join(dir, `src-${name}`);
      execFileSync('sh', ['-c', `mkdir -p "$1" && printf %s "$2" > "$1/${name}.txt" && tar --sort=name --owner=0 --group=0 --mtime=@0 -C "$1" -cf "$1.tar" .`, 'sh', src, content]);
      const file = `${src}.tar`;
      const bytes = execFileSync('cat', [file]);
      const digest = sha256Of(bytes);
      return new RangeLayer({mediaType: 'application/vnd.docker.image.rootfs.diff.tar', digest, size: bytes.length}, digest, new FileRange(file, 0, bytes.length, file), DEFAULT_LIMITS);
    };
    a = tarOf('a', 'first');
    b = tarOf('b', 'second');
  });
  afterAll(() => removeTmp(dir));

  const image = (layers: RangeLayer[], arch = 'amd64'): Image => {
    const bytes = Buffer.from(JSON.stringify({architecture: arch, os: 'linux', rootfs: {type: 'layers', diff_ids: layers.map((l) => l.diffId)}}));
    return {manifest: null, config: parseConfig(bytes, 'application/vnd.docker.container.image.v1+json', 'test'), layers, platform: {os: 'linux', architecture: arch}};
  };

  it('legacy: a layer repeated in one image is stored once; the later directory links to it and manifest.json names the file', async () => {
    const img = image([a, b, a]);
    const out = path.join(dir, 'repeat.tar');
    await writeDockerArchive([{names: ['docker.io/library/rep:1'], root: img}], out, {layout: 'legacy'});
    const headers = tarHeaders(out);
    const layerFiles = headers.filter((h) => h.name.endsWith('/layer.tar'));
    expect(layerFiles.map((h) => h.type).sort()).toEqual(['0', '0', '2']);
    const view = new ArchiveView(out);
    const [item] = view.json<Array<{Config: string; RepoTags: string[]; Layers: string[]}>>('manifest.json');
    expect(item!.Config).toBe(`${img.config.digest.slice(7)}.json`);
    expect(item!.RepoTags).toEqual(['rep:1']);
    expect(item!.Layers).toHaveLength(3);
    expect(item!.Layers[0]).toBe(item!.Layers[2]);
    expect(layerFiles.find((h) => h.name === item!.Layers[0])!.type).toBe('0');
    for (const [i, layer] of item!.Layers.entries()) expect(sha256(view.read(layer))).toBe(img.layers[i]!.diffId);
    // repositories points the tag at the top layer's v1 directory, which exists.
    const repos = view.json<Record<string, Record<string, string>>>('repositories');
    const top = repos.rep!['1']!;
    expect(headers.some((h) => h.name === `${top}/layer.tar`)).toBe(true);
    expect(view.read(`${top}/VERSION`).toString()).toBe('1.0');
    view.close();
  });

  it('oci layout: Config and Layers point into blobs/, repositories maps the tag to the top diffID', async () => {
    const img = image([a, b]);
    const out = path.join(dir, 'oci.tar');
    await writeDockerArchive([{names: ['docker.io/ns/app:2'], root: img}], out, {layout: 'oci'});
    const view = new ArchiveView(out);
    const [item] = view.json<Array<{Config: string; Layers: string[]; LayerSources?: unknown}>>('manifest.json');
    expect(item!.Config).toBe(`blobs/sha256/${img.config.digest.slice(7)}`);
    expect(item!.Layers).toEqual([a, b].map((l) => `blobs/sha256/${l.diffId.slice(7)}`));
    expect(item!.LayerSources).toBeUndefined();
    expect(view.read('manifest.json').toString().endsWith('\n')).toBe(true);
    expect(view.json('repositories')).toEqual({'ns/app': {'2': b.diffId.slice(7)}});
    expect(view.read('oci-layout').toString()).toBe('{"imageLayoutVersion": "1.0.0"}');
    view.close();
  });

  it('a zero-layer image gets an empty Layers list and no repositories entry', async () => {
    const out = path.join(dir, 'empty.tar');
    await writeDockerArchive([{names: ['docker.io/library/empty:1'], root: image([])}], out, {layout: 'legacy'});
    const view = new ArchiveView(out);
    expect(view.json<Array<{Layers: string[]}>>('manifest.json')[0]!.Layers).toEqual([]);
    expect(view.has('repositories')).toBe(false);
    view.close();
  });

  it('an index: the whole index in index.json, the chosen image alone in manifest.json; legacy refuses an index', async () => {
    const amd = image([a]);
    const arm = image([b], 'arm64');
    const indexBytes = Buffer.from('{"schemaVersion":2,"manifests":[]}');
    const index: ImageIndex = {document: {bytes: indexBytes, digest: sha256Of(indexBytes), mediaType: 'application/vnd.oci.image.index.v1+json', parsed: {schemaVersion: 2, manifests: []}}, children: [amd, arm].map((img) => ({descriptor: {mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256Of('x'), size: 1, platform: img.platform}, target: img}))};
    const entry: ArchiveEntry = {names: ['docker.io/library/mp:1'], root: index};
    const out = path.join(dir, 'index.tar');
    await writeDockerArchive([entry], out, {layout: 'oci', primary: new Map([[entry, arm]])});
    const view = new ArchiveView(out);
    const items = view.json<Array<{Config: string}>>('manifest.json');
    expect(items.map((i) => i.Config)).toEqual([`blobs/sha256/${arm.config.digest.slice(7)}`]);
    const top = view.json<{manifests: Array<{mediaType: string; digest: string}>}>('index.json').manifests;
    expect(top.map((d) => d.mediaType)).toEqual(['application/vnd.oci.image.index.v1+json']);
    const written = view.json<{manifests: Array<{platform: {architecture: string}}>}>(`blobs/${top[0]!.digest.replace(':', '/')}`);
    expect(written.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    view.close();
    await expect(writeDockerArchive([entry], path.join(dir, 'index-legacy.tar'), {layout: 'legacy'})).rejects.toThrow(/legacy docker-archive layout holds single images/);
  });

  it('refuses to write over an existing file (the op renames a fresh temp into place)', async () => {
    const out = path.join(dir, 'taken.tar');
    writeFileSync(out, 'x');
    await expect(writeDockerArchive([{names: [], root: image([a])}], out)).rejects.toThrow(/already exists/);
  });
});
