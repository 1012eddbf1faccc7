import {createWriteStream, mkdtempSync, readFileSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {squashImage, type SquashResult} from '../../src/ops/squash.js';
import {pickImage} from '../../src/ops/select.js';
import {openArchive} from '../../src/transports/table.js';
import {canonFromTar, craftDockerArchive, diffCanon, entriesFromTar, LayerModel, listTar, type CraftLayer, type TarMember} from '../helpers/tree-model.js';
import {pipeline} from 'node:stream/promises';

let dir: string;
let n = 0;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-squash-'));
});
afterAll(() => rmSync(dir, {recursive: true, force: true}));

interface Squashed {
  result: SquashResult;
  /** The new layer's members, read back by Python's tarfile. */
  members: TarMember[];
}

async function squash(layers: CraftLayer[], fromLayer: number): Promise<Squashed> {
  const archivePath = path.join(dir, `src${++n}.tar`);
  craftDockerArchive(archivePath, `t/sq:${n}`, layers);
  const archive = await openArchive(archivePath);
  try {
    const result = await squashImage((await pickImage(archive, [])).image, fromLayer);
    const layerFile = path.join(dir, `squashed${n}.tar`);
    await pipeline(result.image.layers.at(-1)!.openCompressed(), createWriteStream(layerFile));
    result.dispose();
    return {result, members: listTar(layerFile)};
  } finally {
    await archive.close();
  }
}

/**
 * Squashes layers fromLayer..top and checks, with the in-test model (not ferry's engine), that the
 * kept lower layers plus the squashed layer give the same file system as the original layers.
 */
async function squashAndCheck(layers: CraftLayer[], fromLayer: number): Promise<Squashed> {
  const squashed = await squash(layers, fromLayer);
  const expected = new LayerModel().applyLayers(layers).canon();
  const actual = new LayerModel().applyLayers([...layers.slice(0, fromLayer), entriesFromTar(squashed.members)]).canon();
  expect(diffCanon(expected, actual, {mtime: true})).toEqual([]);
  const names = squashed.members.map((m) => m.name.replace(/\/$/, ''));
  expect(new Set(names).size, 'no name twice (docker load rejects duplicates, docker-squash#118)').toBe(names.length);
  return squashed;
}

const names = (s: Squashed): string[] => s.members.map((m) => m.name);

describe('squash: regressions from the peers', () => {
  const opaque: CraftLayer[] = [
    [{path: 'd/'}, {path: 'd/old.txt', content: 'must stay hidden'}, {path: 'd/sub/'}, {path: 'd/sub/x', content: 'x'}, {path: 'other', content: 'o'}],
    [{path: 'd/'}, {path: 'd/.wh..wh..opq'}, {path: 'd/new.txt', content: 'new'}],
    [{path: 'top', content: 't'}],
  ];

  it('goldmann/docker-squash#186: an opaque directory is honoured — hidden files do not come back', async () => {
    for (const from of [0, 1]) {
      const s = await squashAndCheck(opaque, from);
      expect(names(s)).not.toContain('d/old.txt');
    }
  });

  it('google/go-containerregistry#1897: an opaque directory over kept lower layers hides them through whiteouts', async () => {
    const s = await squashAndCheck(opaque, 1);
    expect(names(s)).toEqual(expect.arrayContaining(['d/.wh.old.txt', 'd/.wh.sub']));
  });

  it('goldmann/docker-squash#97: whiteouts of files that live in the kept parent layers survive the squash', async () => {
    const layers: CraftLayer[] = [
      [{path: 'etc/'}, {path: 'etc/secret', content: 'deleted later'}, {path: 'etc/dir/'}, {path: 'etc/dir/f', content: 'f'}],
      [{path: 'etc/.wh.secret'}],
      [{path: 'etc/.wh.dir'}, {path: 'etc/added', content: 'a'}],
    ];
    const s = await squashAndCheck(layers, 1);
    expect(names(s)).toEqual(expect.arrayContaining(['etc/.wh.secret', 'etc/.wh.dir']));
    // Squashing everything leaves no whiteout at all.
    const all = await squashAndCheck(layers, 0);
    expect(names(all).filter((x) => x.includes('.wh.'))).toEqual([]);
  });

  it('goldmann/docker-squash#94: hard links are kept as links, with the right content', async () => {
    const layers: CraftLayer[] = [
      [{path: 'a', content: 'linked content'}],
      [{path: 'b', type: 'hardlink', linkname: 'a'}, {path: 'c', content: 'plain'}, {path: 'd', type: 'hardlink', linkname: 'c'}],
    ];
    const all = await squashAndCheck(layers, 0);
    expect(all.members.find((m) => m.name === 'b')).toMatchObject({type: '1', linkname: 'a'});
    // Squashing only the upper layer: the link to the kept lower file stays a link, no copy.
    const upper = await squashAndCheck(layers, 1);
    expect(upper.members.find((m) => m.name === 'b')).toMatchObject({type: '1', linkname: 'a'});
    expect(upper.members.map((m) => m.name)).not.toContain('a');
  });

  it('google/go-containerregistry#2002: a hard link whose target was deleted gets the target content, not nothing', async () => {
    const layers: CraftLayer[] = [[{path: 'lib/'}, {path: 'lib/real.so', content: 'the library bytes'}], [{path: 'lib/alias.so', type: 'hardlink', linkname: 'lib/real.so'}], [{path: 'lib/.wh.real.so'}]];
    for (const from of [0, 1, 2]) {
      const s = await squashAndCheck(layers, from);
      const alias = s.members.find((m) => m.name === 'lib/alias.so');
      if (from < 2) expect(alias).toMatchObject({type: '0', size: 17});
      else expect(names(s)).toEqual(['lib', 'lib/.wh.real.so']); // tarfile drops the directory's trailing slash
    }
  });

  it('goldmann/docker-squash#253: a directory replaced by a file leaves only the file', async () => {
    const layers: CraftLayer[] = [[{path: 'x/'}, {path: 'x/inner', content: 'i'}], [{path: '.wh.x'}, {path: 'x', content: 'now a file'}]];
    for (const from of [0, 1]) {
      const s = await squashAndCheck(layers, from);
      expect(names(s).filter((m) => m.startsWith('x'))).toEqual(['x']);
    }
  });

  it('anchore/stereoscope#647: a bare .wh. entry does not wipe its directory in the squashed layer', async () => {
    const layers: CraftLayer[] = [[{path: 'd/'}, {path: 'd/keep', content: 'k'}], [{path: 'd/.wh.'}, {path: 'd/more', content: 'm'}]];
    const s = await squashAndCheck(layers, 1);
    expect(names(s).filter((x) => x.includes('.wh.'))).toEqual([]);
    expect(s.result.warnings.join()).toMatch(/names nothing/);
  });

  it('same-layer whiteout: a file created and whited out in one layer is gone after squash (as docker applies it)', async () => {
    const layers: CraftLayer[] = [[{path: 'keep', content: 'k'}], [{path: 'c/'}, {path: 'c/tmp', content: 'tmp'}, {path: 'c/.wh.tmp'}]];
    for (const from of [0, 1]) expect(names(await squashAndCheck(layers, from))).not.toContain('c/tmp');
  });
});

describe('squash: changesets', () => {
  it('type changes file -> dir -> file, symlink written through, and a link whose every lower name went away', async () => {
    const layers: CraftLayer[] = [
      [{path: 'f', content: 'file'}, {path: 'real/'}, {path: 's', type: 'symlink', linkname: 'real'}, {path: 'g', content: 'g'}, {path: 'h', type: 'hardlink', linkname: 'g'}],
      [{path: 'f/'}, {path: 'f/in', content: 'in'}, {path: 's/through', content: 't'}, {path: 'k', type: 'hardlink', linkname: 'g'}],
      [{path: 'f', content: 'file again'}, {path: '.wh.g'}, {path: '.wh.h'}],
    ];
    for (const from of [0, 1, 2]) await squashAndCheck(layers, from);
  });

  it('a lower file whose metadata a later link changed is carried by that link', async () => {
    const layers: CraftLayer[] = [[{path: 'o', content: 'o'}], [{path: 'l', type: 'hardlink', linkname: 'o', uid: 9, mode: 0o600}]];
    const s = await squashAndCheck(layers, 1);
    expect(s.members).toEqual([expect.objectContaining({name: 'l', type: '1', linkname: 'o', uid: 9, mode: 0o600})]);
  });

  it('keeps lower layers as they are and rewrites only rootfs.diff_ids and history in the config', async () => {
    const layers: CraftLayer[] = [[{path: 'a', content: 'a'}], [{path: 'b', content: 'b'}], [{path: 'c', content: 'c'}]];
    const archivePath = path.join(dir, 'config.tar');
    const crafted = craftDockerArchive(archivePath, 't/cfg:1', layers, {
      config: {Env: ['A=1'], Labels: {'x<y': '&'}},
      created: '2024-01-02T03:04:05Z',
      history: [{created_by: 'l0'}, {created_by: 'env', empty_layer: true}, {created_by: 'l1'}, {created_by: 'l2'}],
      custom_key: {kept: [1, 2.5e3, 'z']},
    });
    const archive = await openArchive(archivePath);
    try {
      const source = (await pickImage(archive, [])).image;
      const result = await squashImage(source, 1);
      result.dispose();
      expect(result.image.layers.slice(0, 1)).toEqual(source.layers.slice(0, 1));
      const before = JSON.parse(source.config.bytes.toString()) as Record<string, unknown>;
      const after = JSON.parse(result.image.config.bytes.toString()) as Record<string, unknown> & {rootfs: {diff_ids: string[]}; history: Array<Record<string, unknown>>};
      for (const key of Object.keys(before)) if (key !== 'rootfs' && key !== 'history') expect(after[key], key).toEqual(before[key]);
      expect(after.rootfs.diff_ids).toEqual([crafted.diffIds[0], result.diffId]);
      expect(after.history.map((h) => [h.created_by, h.empty_layer ?? false])).toEqual([
        ['l0', false],
        ['env', true],
        ['l1', true],
        ['l2', true],
        ['ferry squash --from-layer 1', false],
      ]);
      expect(after.history.filter((h) => !h.empty_layer)).toHaveLength(after.rootfs.diff_ids.length);
      expect(after.history.at(-1)).toMatchObject({created: '2024-01-02T03:04:05Z'});
    } finally {
      await archive.close();
    }
  });

});

