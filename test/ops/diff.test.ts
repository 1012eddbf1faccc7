import {createHash} from 'node:crypto';
import {rmSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {diffArchives, globMatcher, type DiffOptions, type DiffResult, type FileChange} from '../../src/ops/diff.js';
import {openArchive} from '../../src/transports/table.js';
import {buildDiffPairFixture, fixtureDir, type ChangedFile, type DiffFixture} from '../helpers/analyze-fixtures.js';
import {peerMissing} from '../helpers/peers.js';
import {craftDockerArchive, craftOciLayout, T0, type CraftLayer} from '../helpers/tree-model.js';
import {makeTmp, removeTmp} from './convert-fixtures.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

async function diff(a: string, b: string, options: DiffOptions = {}): Promise<DiffResult> {
  const archiveA = await openArchive(a);
  const archiveB = await openArchive(b);
  try {
    return await diffArchives(archiveA, archiveB, options);
  } finally {
    await archiveA.close();
    await archiveB.close();
  }
}

/** The fixture's answer shape: content changes only. */
function asAnswer(files: FileChange[]): ChangedFile[] {
  return files.map((f) => {
    const out: ChangedFile = {path: f.path, change: f.change};
    if (f.before?.type === 'file') out.before = {bytes: f.before.size, sha256: f.before.sha256!};
    if (f.after?.type === 'file') out.after = {bytes: f.after.size, sha256: f.after.sha256!};
    return out;
  });
}

describe.skipIf(peerMissing('buildah'))('ferry diff: two buildah builds differing in one file, one env var and one label', () => {
  let dir: string;
  let fixture: DiffFixture;
  let result: DiffResult;
  beforeAll(async () => {
    dir = fixtureDir();
    fixture = await buildDiffPairFixture(dir);
    result = await diff(fixture.before.archive, fixture.after.archive);
  });
  afterAll(() => rmSync(dir, {recursive: true, force: true}));

  it('reports exactly the file, the env var and the label (directory mtimes and created times are not changes)', () => {
    expect(result.equal).toBe(false);
    expect(asAnswer(result.files)).toEqual(fixture.expected.files);
    expect(result.files[0]!.differences).toEqual(['content']);
    expect(result.config.env).toEqual(fixture.expected.env);
    expect(result.config.labels).toEqual(fixture.expected.labels);
    expect(result.config).toMatchObject({exposedPorts: {added: [], removed: []}, volumes: {added: [], removed: []}, entrypoint: null, cmd: null, user: null, workingDir: null, other: []});
    // The history lines differ where the build wrote different text: COPY file:<sha of the variant file>.
    const lines = (h: {created_by?: string}[]): string[] => h.map((x) => x.created_by ?? '');
    const before = lines(fixture.before.observed.history);
    const after = lines(fixture.after.observed.history);
    const differing = before.map((l, i) => (l === after[i] ? -1 : i)).filter((i) => i >= 0);
    expect(result.config.history.map((h) => h.index)).toEqual(differing);
    expect(result.summary).toEqual({added: 0, removed: 0, modified: 1, config: 2 + differing.length, sharedLayers: 2});
  });

  it('names the layers both use by digest: the base and the COPY of common/', () => {
    const a = fixture.before.observed.layers;
    const b = fixture.after.observed.layers;
    expect(result.layers.shared.map((s) => [s.a, s.b, s.diffId])).toEqual([
      [0, 0, a[0]!.diffId],
      [1, 1, a[1]!.diffId],
    ]);
    expect(a[2]!.diffId).not.toBe(b[2]!.diffId);
    expect(result.layers.commonBase).toBe(2);
  });

  it('--times: the directory and config times the builds stamped become differences too', async () => {
    const timed = await diff(fixture.before.archive, fixture.after.archive, {times: true});
    expect(timed.files.some((f) => f.path === '/app/' && f.differences.includes('mtime'))).toBe(true);
    expect(timed.config.other.map((o) => o.field)).toContain('created');
  });

  it('an image against itself: equal and identical, without reading a layer', async () => {
    const same = await diff(fixture.before.archive, fixture.before.archive);
    expect(same).toMatchObject({equal: true, identical: true, files: [], summary: {added: 0, removed: 0, modified: 0, config: 0, sharedLayers: 3}});
  });
});

describe('ferry diff: every kind of file difference, on crafted images', () => {
  let dir: string;
  let a: string;
  let b: string;
  beforeAll(() => {
    dir = makeTmp('ferry-diff-');
    a = path.join(dir, 'a.tar');
    b = path.join(dir, 'b.tar');
    const common: CraftLayer = [{path: 'etc/'}, {path: 'etc/os-release', content: 'ID=test\n'}, {path: 'bin/'}, {path: 'bin/tool', content: 'tool-v1', mode: 0o755}];
    const layersA: CraftLayer[] = [
      common,
      [
        {path: 'app/'},
        {path: 'app/same.txt', content: 'same'},
        {path: 'app/moved-later.txt', content: 'layered'},
        {path: 'app/mode.txt', content: 'm', mode: 0o644},
        {path: 'app/owner.txt', content: 'o', uid: 0},
        {path: 'app/equal-size.txt', content: 'aaaa'},
        {path: 'app/link', type: 'symlink', linkname: 'same.txt'},
        {path: 'app/becomes-link', content: 'file'},
        {path: 'app/xattr.bin', content: 'x', xattrs: {'user.note': 'one'}},
        {path: 'app/mtime.txt', content: 't', mtime: T0},
        {path: 'old/'},
        {path: 'old/a', content: 'A'},
        {path: 'old/sub/'},
        {path: 'old/sub/b', content: 'BB'},
        {path: 'app/cache.pyc', content: 'pyc-a'},
      ],
    ];
    const layersB: CraftLayer[] = [
      common,
      [
        {path: 'app/'},
        {path: 'app/same.txt', content: 'same'},
        {path: 'app/mode.txt', content: 'm', mode: 0o600},
        {path: 'app/owner.txt', content: 'o', uid: 1000},
        {path: 'app/equal-size.txt', content: 'bbbb'},
        {path: 'app/link', type: 'symlink', linkname: 'mode.txt'},
        {path: 'app/becomes-link', type: 'symlink', linkname: 'same.txt'},
        {path: 'app/xattr.bin', content: 'x', xattrs: {'user.note': 'two'}},
        {path: 'app/mtime.txt', content: 't', mtime: T0 + 60},
        {path: 'new.txt', content: 'brand new'},
        {path: 'app/cache.pyc', content: 'pyc-b'},
      ],
      // The same file as A's, written by another layer: not a difference.
      [{path: 'app/moved-later.txt', content: 'layered'}],
    ];
    craftDockerArchive(a, 'diff/a:1', layersA, {config: {Env: ['PATH=/bin', 'GONE=1', 'MODE=a=b'], Entrypoint: ['/bin/tool'], Cmd: ['run'], ExposedPorts: {'80/tcp': {}}, User: '', WorkingDir: '/app', Labels: {keep: 'x'}, StopSignal: 'SIGTERM'}});
    craftDockerArchive(b, 'diff/b:1', layersB, {config: {Env: ['PATH=/bin', 'NEW=2', 'MODE=a=c'], Entrypoint: ['/bin/tool'], Cmd: ['serve'], ExposedPorts: {'443/tcp': {}}, User: 'app', WorkingDir: '/app', Labels: {keep: 'x'}, Volumes: {'/data': {}}, StopSignal: 'SIGINT'}});
  });
  afterAll(() => removeTmp(dir));

  it('lists added, removed and modified paths with what differs, in docker export order', async () => {
    const r = await diff(a, b);
    expect(r.files.map((f) => [f.change, f.path, f.differences.join(',')])).toEqual([
      ['modified', '/app/becomes-link', 'type'],
      ['modified', '/app/cache.pyc', 'content'],
      ['modified', '/app/equal-size.txt', 'content'],
      ['modified', '/app/link', 'linkname'],
      ['modified', '/app/mode.txt', 'mode'],
      ['modified', '/app/owner.txt', 'owner'],
      ['modified', '/app/xattr.bin', 'xattrs'],
      ['added', '/new.txt', ''],
      ['removed', '/old/', ''],
      ['removed', '/old/a', ''],
      ['removed', '/old/sub/', ''],
      ['removed', '/old/sub/b', ''],
    ]);
    const byPath = new Map(r.files.map((f) => [f.path, f]));
    // Same size: told apart by content hashes, which both sides then report.
    expect([byPath.get('/app/equal-size.txt')!.before!.sha256, byPath.get('/app/equal-size.txt')!.after!.sha256]).toEqual([sha('aaaa'), sha('bbbb')]);
    expect([byPath.get('/app/mode.txt')!.before!.mode, byPath.get('/app/mode.txt')!.after!.mode]).toEqual([0o644, 0o600]);
    expect([byPath.get('/app/owner.txt')!.before!.uid, byPath.get('/app/owner.txt')!.after!.uid]).toEqual([0, 1000]);
    expect([byPath.get('/app/link')!.before!.linkname, byPath.get('/app/link')!.after!.linkname]).toEqual(['same.txt', 'mode.txt']);
    expect([byPath.get('/app/xattr.bin')!.before!.xattrs, byPath.get('/app/xattr.bin')!.after!.xattrs]).toEqual([{'user.note': Buffer.from('one').toString('hex')}, {'user.note': Buffer.from('two').toString('hex')}]);
    expect([byPath.get('/app/becomes-link')!.before!.type, byPath.get('/app/becomes-link')!.after!.type]).toEqual(['file', 'symlink']);
    expect(byPath.get('/new.txt')!.after).toMatchObject({type: 'file', size: 9, sha256: null, layer: 1});
    expect(r.summary).toMatchObject({added: 1, removed: 4, modified: 7, sharedLayers: 1});
  });

  it('config: env split at the first "=", cmd, ports, volumes, user ("" is unset), other fields, history', async () => {
    const r = await diff(a, b);
    expect(r.config.env).toEqual([
      {name: 'GONE', before: '1', after: null},
      {name: 'MODE', before: 'a=b', after: 'a=c'},
      {name: 'NEW', before: null, after: '2'},
    ]);
    expect(r.config.labels).toEqual([]);
    expect(r.config.cmd).toEqual({before: ['run'], after: ['serve']});
    expect(r.config.entrypoint).toBeNull();
    expect(r.config.exposedPorts).toEqual({added: ['443/tcp'], removed: ['80/tcp']});
    expect(r.config.volumes).toEqual({added: ['/data'], removed: []});
    expect(r.config.user).toEqual({before: null, after: 'app'});
    expect(r.config.workingDir).toBeNull();
    expect(r.config.other).toEqual([{field: 'config.StopSignal', before: 'SIGTERM', after: 'SIGINT'}]);
    expect(r.config.history).toEqual([{index: 2, before: null, after: {created_by: 'crafted layer 2'}}]);
  });

  it('--times adds the mtime difference; --path narrows; --ignore leaves paths (and what is below them) out', async () => {
    expect((await diff(a, b, {times: true})).files.find((f) => f.path === '/app/mtime.txt')?.differences).toEqual(['mtime']);
    expect((await diff(a, b, {path: '/old'})).files.map((f) => f.path)).toEqual(['/old/', '/old/a', '/old/sub/', '/old/sub/b']);
    expect((await diff(a, b, {path: 'app/mode.txt'})).files.map((f) => f.path)).toEqual(['/app/mode.txt']);
    const ignored = await diff(a, b, {ignore: ['*.pyc', '/old', 'app/*-link', 'new.???']});
    expect(ignored.files.map((f) => f.path)).toEqual(['/app/equal-size.txt', '/app/link', '/app/mode.txt', '/app/owner.txt', '/app/xattr.bin']);
    await expect(diff(a, b, {path: '/nowhere'})).rejects.toThrow(/--path \/nowhere: in neither image/);
  });

  it('the same layers in another form (docker-archive vs OCI layout) are equal', async () => {
    const layers: CraftLayer[] = [[{path: 'x/'}, {path: 'x/y', content: 'why'}]];
    const d1 = path.join(dir, 'one.tar');
    const d2 = path.join(dir, 'one-oci');
    craftDockerArchive(d1, 'one:1', layers);
    craftOciLayout(d2, 'one:1', layers);
    const r = await diff(d1, `oci:${d2}`);
    expect(r).toMatchObject({equal: true, identical: true, files: []});
  });
});

describe('--ignore globs', () => {
  it.each([
    ['*.pyc', '/usr/lib/x/a.pyc', true],
    ['*.pyc', '/usr/lib/x/a.py', false],
    ['__pycache__', '/usr/lib/__pycache__/m.cpython.pyc', true],
    ['/var/cache', '/var/cache/apt/archives/x.deb', true],
    ['var/cache', '/var/cache', true],
    ['var/cache', '/srv/var/cache', false],
    ['/usr/**/*.a', '/usr/lib/x86_64/libz.a', true],
    ['/usr/**/*.a', '/usr/libz.a', true],
    ['/usr/*/*.a', '/usr/lib/x86_64/libz.a', false],
    ['/etc/ssl/cert?.pem', '/etc/ssl/cert1.pem', true],
    ['/etc/[!a]*', '/etc/hosts', true],
    ['/etc/[!a]*', '/etc/alternatives', false],
  ])('%s matches %s: %s', (glob, p, hit) => {
    expect(globMatcher(glob)(p)).toBe(hit);
  });
});
