import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {mkdtempSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry} from '../helpers/cli.js';
import {startDockerd, type Dockerd} from '../helpers/daemons.js';
import {peerMissing} from '../helpers/peers.js';
import {busyboxLayer, craftDockerArchive, diffCanon, dockerExportCanon, EVERY_CASE, type CraftLayer} from '../helpers/tree-model.js';

/**
 * `ferry squash` judged by docker alone: the squashed archive is loaded into docker 20.10 and its
 * `docker export` must equal the export of the original image; a container run from each must see
 * the same files; with --from-layer the kept layers keep their digests.
 */
describe.skipIf(peerMissing('dockerd'))('ferry squash, checked by docker', () => {
  let dir: string;
  let dockerd: Dockerd;
  let n = 0;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-squash-docker-'));
    dockerd = await startDockerd();
  });
  afterAll(async () => {
    await dockerd?.stop();
    rmSync(dir, {recursive: true, force: true});
  });

  /** Loads the original and each squash of it; every docker export must be the same file system. */
  function squashAndCompare(layers: CraftLayer[], froms: number[]): Record<number, string> {
    const id = ++n;
    const source = path.join(dir, `src${id}.tar`);
    craftDockerArchive(source, `ferry-test/sq${id}:orig`, layers);
    dockerd.docker(['load', '-i', source]);
    const original = dockerExportCanon(dockerd, `ferry-test/sq${id}:orig`, path.join(dir, `src${id}.export.tar`));
    const tags: Record<number, string> = {};
    for (const from of froms) {
      const out = path.join(dir, `sq${id}-from${from}.tar`);
      const tag = `ferry-test/sq${id}:from${from}`;
      const r = ferry(['squash', source, `docker-archive:${out}`, '--from-layer', String(from), '--tag', tag]);
      expect(r.status, r.stderr).toBe(0);
      expect(dockerd.docker(['load', '-i', out])).toContain(tag);
      const squashed = dockerExportCanon(dockerd, tag, path.join(dir, `sq${id}-from${from}.export.tar`));
      expect(diffCanon(original, squashed), `--from-layer ${from}`).toEqual([]);
      tags[from] = tag;
    }
    return tags;
  }

  const rootfsLayers = (tag: string): string[] => JSON.parse(dockerd.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', tag])) as string[];

  const listing = (tag: string): string[] =>
    dockerd
      .docker(['run', '--rm', '--network', 'none', tag, '/bin/sh', '-c', "find /srv /newtree /app /bin -exec stat -c '%n|%F|%a|%u|%g|%s|%h' {} + && find /srv /newtree /app -type f -exec sha256sum {} +"])
      .trim()
      .split('\n')
      .sort();

  it('a busybox image with every case: docker export and docker run see the same files after squash (all, and from layer 2)', () => {
    const layers = [busyboxLayer(), ...EVERY_CASE];
    const tags = squashAndCompare(layers, [0, 2]);
    const original = listing(`ferry-test/sq${n}:orig`);
    expect(original.some((l) => l.startsWith('/srv/zeros16|regular file|644|0|0|16777216'))).toBe(true);
    expect(listing(tags[0]!)).toEqual(original);
    expect(listing(tags[2]!)).toEqual(original);
    // --from-layer 2 keeps layers 0 and 1 byte for byte: docker computes the same diffIDs for them.
    const before = rootfsLayers(`ferry-test/sq${n}:orig`);
    const after = rootfsLayers(tags[2]!);
    expect(after).toHaveLength(3);
    expect(after.slice(0, 2)).toEqual(before.slice(0, 2));
    expect(rootfsLayers(tags[0]!)).toHaveLength(1);
  });

  it('the kept layers are the very blobs of the source (--from-layer 2, legacy docker-archive output)', () => {
    const source = path.join(dir, 'kept.tar');
    const {diffIds} = craftDockerArchive(source, 'ferry-test/kept:1', [[{path: 'a', content: 'a'}], [{path: 'b', content: 'b'}], [{path: 'c', content: 'c'}], [{path: '.wh.a'}]]);
    const out = path.join(dir, 'kept-squashed.tar');
    expect(ferry(['squash', source, `docker-archive:${out}`, '--from-layer', '2', '--docker-layout', 'legacy']).status).toBe(0);
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', out, 'manifest.json'], {encoding: 'utf8'})) as Array<{Layers: string[]}>;
    const layerDigests = manifest[0]!.Layers.map((l) => `sha256:${createHash('sha256').update(execFileSync('tar', ['-xOf', out, l], {maxBuffer: 1 << 26})).digest('hex')}`);
    expect(layerDigests).toHaveLength(3);
    expect(layerDigests.slice(0, 2)).toEqual(diffIds.slice(0, 2));
    expect(dockerd.docker(['load', '-i', out])).toContain('ferry-test/kept:1');
    expect(rootfsLayers('ferry-test/kept:1').slice(0, 2)).toEqual(diffIds.slice(0, 2));
  });

  const regressions: Array<{name: string; layers: CraftLayer[]}> = [
    {
      name: 'goldmann/docker-squash#186, google/go-containerregistry#1897 (opaque directory)',
      layers: [
        [{path: 'd/'}, {path: 'd/old.txt', content: 'hidden'}, {path: 'd/sub/'}, {path: 'd/sub/x', content: 'x'}],
        [{path: 'd/'}, {path: 'd/.wh..wh..opq'}, {path: 'd/new.txt', content: 'new'}],
        [{path: 'top', content: 't'}],
      ],
    },
    {
      name: 'goldmann/docker-squash#97 (whiteouts of files in kept layers)',
      layers: [[{path: 'etc/'}, {path: 'etc/secret', content: 's'}, {path: 'etc/dir/'}, {path: 'etc/dir/f', content: 'f'}], [{path: 'etc/.wh.secret'}], [{path: 'etc/.wh.dir'}, {path: 'etc/added', content: 'a'}]],
    },
    {
      name: 'goldmann/docker-squash#94, google/go-containerregistry#2002 (hard links)',
      layers: [[{path: 'lib/'}, {path: 'lib/real.so', content: 'library'}, {path: 'lib/keep', content: 'k'}], [{path: 'lib/alias.so', type: 'hardlink', linkname: 'lib/real.so'}, {path: 'lib/k2', type: 'hardlink', linkname: 'lib/keep'}], [{path: 'lib/.wh.real.so'}]],
    },
    {
      name: 'goldmann/docker-squash#253 (directory replaced by a file)',
      layers: [[{path: 'x/'}, {path: 'x/inner', content: 'i'}], [{path: '.wh.x'}, {path: 'x', content: 'file'}], [{path: 'y', content: 'y'}]],
    },
    {
      name: 'same-layer whiteout (docker deletes the file)',
      layers: [[{path: 'keep', content: 'k'}], [{path: 'c/'}, {path: 'c/tmp', content: 'tmp'}, {path: 'c/.wh.tmp'}], [{path: 'z', content: 'z'}]],
    },
  ];

  for (const r of regressions) {
    it(`${r.name}: squash (all, from 1, from 2) loads into docker as the same file system`, () => {
      squashAndCompare(r.layers, [0, 1, 2]);
    });
  }
});
