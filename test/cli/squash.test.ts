import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry, FIXTURES} from '../helpers/cli.js';
import {canonFromTar, diffCanon, listTar} from '../helpers/tree-model.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-squash-cli-'));
});
afterAll(() => rmSync(dir, {recursive: true, force: true}));

describe('ferry squash (CLI)', () => {
  it('writes a loadable archive and a summary line with the sizes on stdout; same bytes every run', () => {
    const outs = [path.join(dir, 'cli1.tar'), path.join(dir, 'cli2.tar')];
    for (const out of outs) {
      const r = ferry(['squash', path.join(FIXTURES, 'edge.skopeo.oci-archive.tar'), `docker-archive:${out}`, '--from-layer', '1', '--tag', 'ferry-test/squashed:1']);
      expect(r.status, r.stderr).toBe(0);
      // Issue 10: results go to stdout (unless stdout carries the archive), as convert's always did.
      expect(r.stdout).toMatch(/^squashed layers 1\.\.3 of .* \(3 layer\(s\), [\d.]+ KiB uncompressed\) into one layer of [\d.]+ KiB: saved [\d.]+ KiB \([\d.]+%\); wrote docker-archive:/m);
      expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
    }
    expect(readFileSync(outs[0]!).equals(readFileSync(outs[1]!))).toBe(true);
  });

  it('--from-layer out of range is a usage error (exit 2) naming the layer count', () => {
    const r = ferry(['squash', path.join(FIXTURES, 'edge.docker-save.tar'), `docker-archive:${path.join(dir, 'never.tar')}`, '--from-layer', '4']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--from-layer 4 is out of range: the image has 4 layer\(s\), numbered 0 \(base\) to 3/);
  });

  it('exported, the squashed image is the same file system as the original', () => {
    const out = path.join(dir, 'squashed-all.tar');
    expect(ferry(['squash', path.join(FIXTURES, 'edge.docker-save.tar'), `oci-archive:${out}`]).status).toBe(0);
    const a = path.join(dir, 'orig.export.tar');
    const b = path.join(dir, 'sq.export.tar');
    expect(ferry(['export', path.join(FIXTURES, 'edge.docker-save.tar'), a]).status).toBe(0);
    expect(ferry(['export', out, b]).status).toBe(0);
    expect(diffCanon(canonFromTar(listTar(a)), canonFromTar(listTar(b)), {mtime: true})).toEqual([]);
  });
});
