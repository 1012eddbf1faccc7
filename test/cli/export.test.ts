import {existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry, FIXTURES} from '../helpers/cli.js';
import {canonFromTar, craftDockerArchive, expectSameAsDocker, listTar} from '../helpers/tree-model.js';

/**
 * `ferry export` of every fixture against docker's own export of the same image
 * (fixtures/edge.docker-export.tar: `docker create` + `docker export` of edge.docker-save.tar).
 * Run `npm run build` first: these spawn the CLI.
 */
const FORMS: Array<{name: string; source: string; args?: string[]}> = [
  {name: 'docker save (legacy layout)', source: 'edge.docker-save.tar'},
  {name: 'docker save, gzip outside', source: 'edge.docker-save.tar.gz'},
  {name: 'docker save, zstd outside', source: 'edge.docker-save.tar.zst'},
  {name: 'skopeo docker-archive', source: 'edge.skopeo.docker-archive.tar'},
  {name: 'skopeo oci-archive (gzip layers)', source: 'edge.skopeo.oci-archive.tar'},
  {name: 'podman OCI layout directory (gzip layers)', source: 'edge.podman.oci'},
  {name: 'docker save of several images, --image', source: 'edge-multi.docker-save.tar', args: ['--image', 'ferry-fixture/edge:1']},
];

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-flatten-'));
});
afterAll(() => rmSync(dir, {recursive: true, force: true}));

describe('ferry export of the fixtures', () => {
  const docker = canonFromTar(listTar(path.join(FIXTURES, 'edge.docker-export.tar')));
  const outputs: Buffer[] = [];

  for (const form of FORMS) {
    it(`${form.name}: equals docker export of the same image, entry by entry`, () => {
      const out = path.join(dir, `${form.source}.export.tar`);
      const r = ferry(['export', path.join(FIXTURES, form.source), out, ...(form.args ?? [])]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^exported [^\n]+\n$/); // the result line (issue 10: results on stdout)
      expectSameAsDocker(docker, canonFromTar(listTar(out)));
      outputs.push(readFileSync(out));
    });
  }

  it('is the same bytes whatever archive form or compression held the image (and on every run)', () => {
    expect(outputs).toHaveLength(FORMS.length);
    for (const o of outputs) expect(o.equals(outputs[0]!)).toBe(true);
    const again = path.join(dir, 'again.tar');
    expect(ferry(['export', path.join(FIXTURES, 'edge.skopeo.oci-archive.tar'), again]).status).toBe(0);
    expect(readFileSync(again).equals(outputs[0]!)).toBe(true);
  });

  it('has no whiteout files, directories before what they hold, and no duplicate names', () => {
    const members = listTar(path.join(dir, 'edge.docker-save.tar.export.tar'));
    const names = members.map((m) => m.name.replace(/\/$/, ''));
    expect(names.filter((n) => /(^|\/)\.wh\./.test(n))).toEqual([]);
    expect(new Set(names).size).toBe(names.length);
    for (const [i, n] of names.entries()) {
      const parent = n.includes('/') ? n.slice(0, n.lastIndexOf('/')) : undefined;
      if (parent) expect(names.indexOf(parent), `${parent} before ${n}`).toBeLessThan(i);
    }
  });

  it("writes to stdout with '-' (same bytes as to a file)", () => {
    const r = ferry(['export', path.join(FIXTURES, 'edge.docker-save.tar'), '-']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdoutBytes.equals(readFileSync(path.join(dir, 'edge.docker-save.tar.export.tar')))).toBe(true);
  });
});

describe('ferry export errors', () => {
  it('refuses an existing destination unless --force, leaving it untouched', () => {
    const out = path.join(dir, 'exists.tar');
    writeFileSync(out, 'precious');
    const r = ferry(['export', path.join(FIXTURES, 'edge.docker-save.tar'), out]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ferry: .*exists\.tar: already exists \(pass --force to replace it\)\n$/);
    expect(readFileSync(out, 'utf8')).toBe('precious');
    expect(ferry(['export', path.join(FIXTURES, 'edge.docker-save.tar'), out, '--force']).status).toBe(0);
    expect(readFileSync(out).length).toBeGreaterThan(500_000);
  });

  it('asks for --image when the archive holds several images (usage error, exit 2)', () => {
    const r = ferry(['export', path.join(FIXTURES, 'edge-multi.docker-save.tar'), path.join(dir, 'multi.tar')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/holds 2 images: .*ferry-fixture\/edge-child:1.*choose one with --image/);
    expect(existsSync(path.join(dir, 'multi.tar'))).toBe(false);
  });

  it('a bad layer: one line on stderr naming the member, exit 1, no output file and no temp file left', () => {
    const sub = mkdtempSync(path.join(dir, 'bad-'));
    const archive = path.join(sub, 'bad.tar');
    craftDockerArchive(archive, 'bad/escape:1', [[{path: 'ok', content: 'fine'}], [{path: '../../etc/evil', content: 'x'}]]);
    const out = path.join(sub, 'out.tar');
    const r = ferry(['export', archive, out]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ferry: .*entry "\.\.\/\.\.\/etc\/evil" escapes the image root\n$/);
    expect(readdirSync(sub)).toEqual(['bad.tar']);
  });

  it('a missing source is exit 1 with one line', () => {
    const r = ferry(['export', path.join(dir, 'nope.tar'), path.join(dir, 'x.tar')]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
