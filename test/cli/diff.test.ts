import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry, FIXTURES, requireBuiltCli} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';
import {craftDockerArchive, type CraftLayer} from '../helpers/tree-model.js';
import {makeTmp, removeTmp} from '../ops/convert-fixtures.js';

/** `ferry diff` as scripts use it: diff(1)'s exit codes, a stable --json document, any two sources. */
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

describe('ferry diff (CLI)', () => {
  let dir: string;
  let a: string;
  let b: string;
  beforeAll(() => {
    requireBuiltCli();
    dir = makeTmp('ferry-diff-cli-');
    a = path.join(dir, 'a.tar');
    b = path.join(dir, 'b.tar');
    const base: CraftLayer = [{path: 'etc/'}, {path: 'etc/app.conf', content: 'level=1\n'}, {path: 'srv/'}, {path: 'srv/old/'}, {path: 'srv/old/x', content: 'x'}];
    craftDockerArchive(a, 'diff/app:1', [base], {config: {Env: ['PATH=/bin', 'LEVEL=1'], Labels: {version: '1'}}});
    craftDockerArchive(b, 'diff/app:2', [base, [{path: 'etc/'}, {path: 'etc/app.conf', content: 'level=2\n'}, {path: 'srv/.wh.old'}, {path: 'srv/new', content: 'new'}]], {
      config: {Env: ['PATH=/bin', 'LEVEL=2'], Labels: {version: '2'}},
    });
  });
  afterAll(() => removeTmp(dir));

  it('different: exit 1, the differences on stdout (a removed directory on one line)', () => {
    const r = ferry(['diff', a, b]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`  M /etc/app.conf  content 8 B → 8 B (sha256 ${sha('level=1\n').slice(0, 12)} → ${sha('level=2\n').slice(0, 12)})`);
    expect(r.stdout).toContain('  A /srv/new  (file, 3 B, mode 0644, L1)');
    expect(r.stdout).toContain('  D /srv/old/  (directory, mode 0755, and 1 entry below it)');
    expect(r.stdout).not.toContain('/srv/old/x');
    expect(r.stdout).toContain('  env LEVEL: "1" → "2"');
    expect(r.stdout).toContain('  label version: "1" → "2"');
    expect(r.stdout).toContain('layers: A has 1, B has 2; 1 shared blob(s) (A0=B0); common base: 1 layer(s)');
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('different: 4 path(s), 3 config difference(s)');
  });

  it('equal: exit 0; --path narrows, --ignore leaves paths out (config differences remain)', () => {
    expect(ferry(['diff', a, a])).toMatchObject({status: 0, stderr: ''});
    const narrowed = ferry(['diff', a, b, '--path', '/srv/old/x', '--json']);
    expect(narrowed.status).toBe(1);
    expect((JSON.parse(narrowed.stdout) as {files: Array<{path: string}>}).files.map((f) => f.path)).toEqual(['/srv/old/x']);
    const ignored = ferry(['diff', a, b, '--ignore', '/etc', '--ignore', '/srv', '--json']);
    const doc = JSON.parse(ignored.stdout) as {equal: boolean; files: unknown[]; summary: {config: number}};
    expect(doc.files).toEqual([]);
    expect(doc.summary.config).toBe(3); // env, label, and the history line of layer 1
    expect(ignored.status).toBe(1);
  });

  it('--json: the documented document', () => {
    const r = ferry(['diff', '--json', a, b]);
    expect(r.status).toBe(1);
    const doc = JSON.parse(r.stdout) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(Object.keys(doc)).toEqual(['equal', 'identical', 'a', 'b', 'summary', 'files', 'layers', 'config', 'warnings']);
    expect(doc).toMatchObject({equal: false, identical: false, summary: {added: 1, removed: 2, modified: 1, config: 3, sharedLayers: 1}});
    expect(Object.keys(doc.a)).toEqual(['source', 'names', 'configDigest', 'manifestDigest', 'platform', 'layers']);
    expect(doc.a.names).toEqual(['diff/app:1']);
    const conf = doc.files.find((f: {path: string}) => f.path === '/etc/app.conf');
    expect(conf).toEqual({
      path: '/etc/app.conf',
      change: 'modified',
      differences: ['content'],
      before: {type: 'file', size: 8, sha256: sha('level=1\n'), mode: 0o644, uid: 0, gid: 0, mtime: '2023-11-14T22:13:20.000Z', linkname: null, xattrs: {}, device: null, layer: 0},
      after: {type: 'file', size: 8, sha256: sha('level=2\n'), mode: 0o644, uid: 0, gid: 0, mtime: '2023-11-14T22:13:20.000Z', linkname: null, xattrs: {}, device: null, layer: 1},
    });
    expect(Object.keys(doc.config)).toEqual(['env', 'labels', 'exposedPorts', 'volumes', 'entrypoint', 'cmd', 'user', 'workingDir', 'history', 'other']);
    expect(doc.config.env).toEqual([{name: 'LEVEL', before: '1', after: '2'}]);
  });

  it('trouble is exit 2, as in diff(1): a missing source, one source without two --image, two stdins', () => {
    const missing = ferry(['diff', a, path.join(dir, 'nope.tar')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe(`ferry: ${path.join(dir, 'nope.tar')}: no such file or directory\n`);
    const json = ferry(['diff', '--json', a, path.join(dir, 'nope.tar')]);
    expect(json.status).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ok: false, error: {code: 'NOT_FOUND'}});
    expect(ferry(['diff', a])).toMatchObject({status: 2, stderr: 'ferry: diff with one source compares two of its images: give --image twice (got 0)\n'});
    expect(ferry(['diff', '-', '-']).status).toBe(2);
    expect(ferry(['diff', a, b, '--bogus']).status).toBe(2);
  });

  it('two images of one archive (--image twice), and a source on stdin', () => {
    const multi = `${FIXTURES}/edge-multi.docker-save.tar`;
    const r = ferry(['diff', multi, '--image', 'ferry-fixture/edge:1', '--image', 'ferry-fixture/edge-child:1', '--json']);
    expect(r.status, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as {a: {names: string[]}; b: {names: string[]}; layers: {commonBase: number; shared: unknown[]}; summary: {removed: number}};
    expect(doc.a.names).toContain('ferry-fixture/edge:1');
    expect(doc.b.names).toEqual(['ferry-fixture/edge-child:1']);
    // The child is FROM the parent plus one layer (fixtures/README.md).
    expect(doc.layers.commonBase).toBe(4);
    expect(doc.layers.shared).toHaveLength(4);
    expect(doc.summary.removed).toBe(0);
    const piped = ferry(['diff', '-', a], {input: execFileSync('cat', [a])});
    expect(piped.status, piped.stderr).toBe(0);
  });
});

describe.skipIf(peerMissing('skopeo'))('ferry diff across forms', () => {
  let dir: string;
  beforeAll(() => {
    dir = makeTmp('ferry-diff-forms-');
  });
  afterAll(() => removeTmp(dir));

  it('recompressed by ferry convert: the same image (same config), every layer the same content stored differently', () => {
    expect(ferry(['convert', `${FIXTURES}/edge.docker-save.tar`, `oci-archive:${dir}/gz.tar`, '--compress', 'gzip', '-q']).status).toBe(0);
    const r = ferry(['diff', '--json', `${FIXTURES}/edge.docker-save.tar`, `${dir}/gz.tar`]);
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {equal: boolean; identical: boolean; layers: {shared: unknown[]; sameContent: unknown[]}};
    expect(doc).toMatchObject({equal: true, identical: true});
    expect(doc.layers.shared).toHaveLength(0);
    expect(doc.layers.sameContent).toHaveLength(4);
  });

  it("converted by skopeo (layers recompressed, config rewritten): the same files; the config differs only in the Docker-only field skopeo drops", () => {
    execFileSync('skopeo', ['copy', '-q', `docker-archive:${FIXTURES}/edge.docker-save.tar`, `oci:${dir}/layout:edge`]);
    const r = ferry(['diff', '--json', `${FIXTURES}/edge.docker-save.tar`, `oci:${dir}/layout`]);
    expect(r.status, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as {files: unknown[]; identical: boolean; layers: {commonBase: number}; config: {other: Array<{field: string; after: unknown}>; env: unknown[]; labels: unknown[]; history: unknown[]}};
    expect(doc.files).toEqual([]);
    expect(doc.identical).toBe(false);
    expect(doc.layers.commonBase).toBe(4);
    expect(doc.config).toMatchObject({env: [], labels: [], history: []});
    // Docker's container config carries the build's parent image ID; OCI has no such field.
    expect(doc.config.other).toEqual([{field: 'config.Image', before: expect.stringMatching(/^sha256:/), after: null}]);
  });
});
