import {mkdtempSync, rmSync} from 'node:fs';
import {createWriteStream} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {Readable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {flattenImage} from '../../../src/ops/flatten.js';
import {pickImage} from '../../../src/ops/select.js';
import {openArchive} from '../../../src/transports/table.js';
import {pythonMembers} from '../../tar/oracle.js';
import {canonFromTar, craftDockerArchive, diffCanon, LayerModel, listTar, ModelError, T0, type Canon, type CraftLayer} from '../../helpers/tree-model.js';

let dir: string;
let n = 0;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-engine-'));
});
afterAll(() => rmSync(dir, {recursive: true, force: true}));

/** ferry's export of the crafted layers, listed by Python's tarfile. */
async function ferryExport(layers: CraftLayer[]): Promise<{canon: Canon; warnings: string[]; file: string}> {
  const archivePath = path.join(dir, `img${++n}.tar`);
  craftDockerArchive(archivePath, `t/img:${n}`, layers);
  const archive = await openArchive(archivePath);
  try {
    const flat = await flattenImage((await pickImage(archive, [])).image);
    const file = path.join(dir, `export${n}.tar`);
    await pipeline(Readable.from(flat.stream()), createWriteStream(file));
    return {canon: canonFromTar(listTar(file)), warnings: flat.warnings, file};
  } finally {
    await archive.close();
  }
}

/** Exports with ferry, checks the result against the model, returns ferry's view. */
async function merged(layers: CraftLayer[]): Promise<Canon & {warnings?: string[]}> {
  const {canon, warnings} = await ferryExport(layers);
  const model = new LayerModel().applyLayers(layers).canon();
  expect(diffCanon(model, canon, {mtime: true})).toEqual([]);
  return Object.assign(canon, {warnings});
}

async function exportError(layers: CraftLayer[]): Promise<string> {
  const error = await ferryExport(layers).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  return (error as Error).message;
}

const base: CraftLayer = [
  {path: 'd/'},
  {path: 'd/keep', content: 'keep'},
  {path: 'd/gone', content: 'gone'},
  {path: 'd/sub/'},
  {path: 'd/sub/deep', content: 'deep'},
  {path: 'top', content: 'top'},
];

describe('whiteouts', () => {
  it('a whiteout removes a lower file, and a whole lower directory with its contents', async () => {
    const tree = await merged([base, [{path: 'd/.wh.gone'}, {path: 'd/.wh.sub'}]]);
    expect([...tree.keys()].sort()).toEqual(['d', 'd/keep', 'top']);
  });

  it('a whiteout naming nothing is ignored', async () => {
    const tree = await merged([base, [{path: 'd/.wh.never-existed'}]]);
    expect(tree.has('d/keep') && tree.has('d/gone')).toBe(true);
  });

  it('same-layer whiteout: a whiteout deletes a file created earlier in the same layer, as docker does (not as the OCI spec says)', async () => {
    // docs/formats.md §5: the spec says same-layer entries survive; docker 20.10's applier deletes them
    // (test/interop/export-docker.test.ts checks docker itself). ferry matches docker.
    const tree = await merged([base, [{path: 'c/'}, {path: 'c/new', content: 'n'}, {path: 'c/.wh.new'}]]);
    expect(tree.has('c')).toBe(true);
    expect(tree.has('c/new')).toBe(false);
  });

  it('stereoscope#647: a bare ".wh." entry does not wipe its parent directory (docker would delete it)', async () => {
    const tree = await merged([base, [{path: 'd/.wh.'}, {path: 'd/added', content: 'a'}]]);
    expect([...tree.keys()].filter((p) => p.startsWith('d/')).sort()).toEqual(['d/added', 'd/gone', 'd/keep', 'd/sub', 'd/sub/deep']);
    expect(tree.warnings!.join('\n')).toMatch(/whiteout "d\/\.wh\." names nothing; ignored/);
  });

  it('a whiteout inside a directory that does not exist creates that directory (0600, as docker does)', async () => {
    const tree = await merged([base, [{path: 'newdir/.wh.x'}]]);
    expect(tree.get('newdir')).toMatchObject({type: 'dir', mode: 0o600, uid: 0});
  });

  it('top-level .wh..wh.* (AUFS metadata) is skipped; a root opaque marker hides every lower path', async () => {
    const tree = await merged([base, [{path: '.wh..wh.plnk/'}, {path: '.wh..wh.plnk/123', content: 'x'}, {path: '.wh..wh..opq'}, {path: 'fresh', content: 'f'}]]);
    expect([...tree.keys()]).toEqual(['fresh']);
  });
});

describe('opaque directories', () => {
  it('hide every lower child, whether the marker comes before or after the layer own entries', async () => {
    for (const marker of ['first', 'last']) {
      const opq = {path: 'd/.wh..wh..opq'};
      const own: CraftLayer = [{path: 'd/'}, {path: 'd/sub/'}, {path: 'd/sub/new', content: 'n'}, {path: 'd/mine', content: 'm'}];
      const layer = marker === 'first' ? [own[0]!, opq, ...own.slice(1)] : [...own, opq];
      const tree = await merged([base, layer]);
      expect([...tree.keys()].filter((p) => p.startsWith('d/')).sort()).toEqual(['d/mine', 'd/sub', 'd/sub/new']);
    }
  });

  it('a marker after a child written without its own directory entry removes that child with its implicit parent (docker)', async () => {
    const tree = await merged([base, [{path: 'd/sub/new', content: 'n'}, {path: 'd/.wh..wh..opq'}]]);
    expect([...tree.keys()].filter((p) => p.startsWith('d/'))).toEqual([]);
  });

  it('stereoscope#694: a marker in a directory that is a symlink does not empty the link target', async () => {
    const tree = await merged([[...base, {path: 'link', type: 'symlink', linkname: 'd'}], [{path: 'link/.wh..wh..opq'}]]);
    expect(tree.has('d/keep') && tree.has('d/sub/deep')).toBe(true);
  });
});

describe('type changes', () => {
  it('file -> directory -> file across three layers', async () => {
    const tree = await merged([
      [{path: 'x', content: 'file one'}],
      [{path: 'x/'}, {path: 'x/inner', content: 'in'}],
      [{path: 'x', content: 'file again'}],
    ]);
    expect([...tree.keys()]).toEqual(['x']);
    expect(tree.get('x')).toMatchObject({type: 'file', size: 10});
  });

  it('a directory over a directory merges: attributes replaced, children kept', async () => {
    const tree = await merged([base, [{path: 'd/', mode: 0o700, uid: 7, gid: 8}]]);
    expect(tree.get('d')).toMatchObject({type: 'dir', mode: 0o700, uid: 7, gid: 8});
    expect(tree.has('d/sub/deep')).toBe(true);
  });

  it('a symlink replaced by a directory does not touch the old target', async () => {
    const tree = await merged([[...base, {path: 's', type: 'symlink', linkname: 'd'}], [{path: 's/'}, {path: 's/own', content: 'o'}]]);
    expect(tree.get('s')).toMatchObject({type: 'dir'});
    expect(tree.has('d/own')).toBe(false);
  });
});

describe('symlinks among parent directories', () => {
  it('members below a lower symlink are written through it, inside the root (docker, containerd)', async () => {
    const tree = await merged([
      [
        {path: 'real/'},
        {path: 'real/old', content: 'old'},
        {path: 'rel', type: 'symlink', linkname: 'real'},
        {path: 'abs', type: 'symlink', linkname: '/real'},
        // An absolute target climbing above the root stops at the root, as in a chroot.
        {path: 'up', type: 'symlink', linkname: '/../../../real'},
        {path: 'sub/'},
        {path: 'sub/back', type: 'symlink', linkname: '../real'},
      ],
      [{path: 'rel/a', content: 'a'}, {path: 'abs/b', content: 'b'}, {path: 'up/c', content: 'c'}, {path: 'sub/back/d', content: 'd'}, {path: 'rel/.wh.old'}],
    ]);
    expect([...tree.keys()].filter((p) => p.startsWith('real/')).sort()).toEqual(['real/a', 'real/b', 'real/c', 'real/d']);
  });

  it('a member below a dangling symlink or a file is an error naming it', async () => {
    expect(await exportError([[{path: 'dl', type: 'symlink', linkname: '/missing'}], [{path: 'dl/f', content: 'x'}]])).toMatch(/cannot place "dl\/f"/);
    expect(await exportError([[{path: 'f', content: 'x'}], [{path: 'f/g', content: 'y'}]])).toMatch(/cannot place "f\/g": "f" is not a directory/);
  });

  it('missing parents are made 0600 root-owned, as docker 20.10 does', async () => {
    const tree = await merged([[{path: 'a/b/c/file', content: 'x', uid: 5}]]);
    for (const p of ['a', 'a/b', 'a/b/c']) expect(tree.get(p)).toMatchObject({type: 'dir', mode: 0o600, uid: 0, gid: 0});
  });
});

describe('hard links', () => {
  it('within a layer and to a lower layer: one file with several names while both ends survive', async () => {
    const tree = await merged([
      [{path: 'h/'}, {path: 'h/a', content: 'shared'}, {path: 'h/b', type: 'hardlink', linkname: 'h/a'}],
      [{path: 'h/c', type: 'hardlink', linkname: 'h/a'}],
    ]);
    expect(tree.get('h/a')!.links).toEqual(['h/b', 'h/c']);
    expect(tree.get('h/c')!.sha256).toBe(tree.get('h/a')!.sha256);
  });

  it('the target removed later: the other name keeps the content (materialised)', async () => {
    const tree = await merged([[{path: 'a', content: 'content of a'}], [{path: 'b', type: 'hardlink', linkname: 'a'}], [{path: '.wh.a'}]]);
    expect(tree.has('a')).toBe(false);
    expect(tree.get('b')).toMatchObject({type: 'file', size: 12});
    expect(tree.get('b')!.links).toBeUndefined();
  });

  it('one name overwritten later: the pair is broken, the other name keeps the old content', async () => {
    const tree = await merged([[{path: 'a', content: 'old'}, {path: 'b', type: 'hardlink', linkname: 'a'}], [{path: 'a', content: 'new!'}]]);
    expect(tree.get('b')).toMatchObject({size: 3});
    expect(tree.get('a')).toMatchObject({size: 4});
    expect(tree.get('a')!.links).toBeUndefined();
  });

  it("a link's header sets the shared file's owner, mode and mtime (docker's Lchown/Chmod/Chtimes)", async () => {
    const tree = await merged([[{path: 'orig', content: 'o', mode: 0o644}], [{path: 'link', type: 'hardlink', linkname: 'orig', mode: 0o600, uid: 1234, gid: 5678, mtime: T0 + 100}]]);
    for (const p of ['orig', 'link']) expect(tree.get(p)).toMatchObject({mode: 0o600, uid: 1234, gid: 5678, mtime: T0 + 100});
  });

  it('a hard link to a symlink is another symlink; only its owner changes (docker)', async () => {
    const tree = await merged([[{path: 't', content: 't'}, {path: 'sl', type: 'symlink', linkname: 't'}], [{path: 'hl', type: 'hardlink', linkname: 'sl', uid: 77, mode: 0o600}]]);
    expect(tree.get('hl')).toMatchObject({type: 'symlink', linkname: 't', uid: 77, mode: 0o777});
    expect(tree.get('sl')).toMatchObject({type: 'symlink', uid: 77});
  });

  it('a hard link to a missing target, to a directory, or outside the root is refused, naming the member', async () => {
    expect(await exportError([[{path: 'l', type: 'hardlink', linkname: 'nothing'}]])).toMatch(/hardlink "l" -> "nothing": target does not exist/);
    expect(await exportError([[{path: 'd/'}, {path: 'l', type: 'hardlink', linkname: 'd'}]])).toMatch(/hardlink "l" -> "d": target is a directory/);
    expect(await exportError([[{path: 'l', type: 'hardlink', linkname: '../../etc/passwd'}]])).toMatch(/hardlink "l" points outside the image root/);
  });
});

describe('attributes carried into the output', () => {
  it('xattrs (PAX SCHILY.xattr.*) and sub-second mtimes survive export', async () => {
    const xattrs = {'user.note': 'kept', 'security.selinux': 'ctx'};
    const {file} = await ferryExport([
      [{path: 'cap', content: 'c', xattrs, mtime: 1600000000.25}, {path: 'real/'}, {path: 'sl', type: 'symlink', linkname: 'real'}],
      // Written through a symlink: the header is re-encoded under the resolved name.
      [{path: 'sl/moved', content: 'm', xattrs, mtime: 1600000000.5}],
    ]);
    for (const name of ['cap', 'real/moved']) {
      const member = pythonMembers(file).members.find((m) => m.name === name)!;
      expect(Buffer.from(member.pax['SCHILY.xattr.user.note']!, 'hex').toString(), name).toBe('kept');
      expect(Buffer.from(member.pax['SCHILY.xattr.security.selinux']!, 'hex').toString(), name).toBe('ctx');
      expect(Buffer.from(member.pax.mtime!, 'hex').toString(), name).toBe(name === 'cap' ? '1600000000.25' : '1600000000.5');
    }
  });
});

describe('untrusted input', () => {
  it('refuses ".." escapes and absolute names, naming the member', async () => {
    expect(await exportError([[{path: '../escape', content: 'x'}]])).toMatch(/entry "\.\.\/escape" escapes the image root/);
    expect(await exportError([[{path: '/abs', content: 'x'}]])).toMatch(/entry "\/abs" has an absolute path/);
  });

  it('refuses sparse files and entry types no runtime unpacks, naming the member', async () => {
    expect(await exportError([[{path: 'holes', rawType: 'S'}]])).toMatch(/entry "holes" is a sparse file/);
    expect(await exportError([[{path: 'odd', rawType: 'Z'}]])).toMatch(/entry "odd" has tar type 'Z'/);
  });

  it('symlink targets are kept as they are, absolute or climbing out (docker 20.10 loads and exports both unchanged)', async () => {
    const tree = await merged([[{path: 'out', type: 'symlink', linkname: '/../../../../etc/shadow'}, {path: 'a/'}, {path: 'a/up', type: 'symlink', linkname: '../../etc/shadow'}]]);
    expect(tree.get('out')).toMatchObject({type: 'symlink', linkname: '/../../../../etc/shadow'});
    expect(tree.get('a/up')).toMatchObject({type: 'symlink', linkname: '../../etc/shadow'});
  });
});

describe('model check', () => {
  it('the model and the engine both refuse what docker cannot apply', () => {
    expect(() => new LayerModel().applyLayers([[{path: 'l', type: 'hardlink', linkname: 'x'}]])).toThrow(ModelError);
  });
});
