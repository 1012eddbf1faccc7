import {execFileSync} from 'node:child_process';
import {mkdtempSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {permissions, type ListedEntry} from '../../src/ops/ls.js';
import {ferry, FIXTURES} from '../helpers/cli.js';
import {canonFromTar, DOCKER_INIT_ENTRIES, listTar, normalizeName} from '../helpers/tree-model.js';

const SAVE = path.join(FIXTURES, 'edge.docker-save.tar');

describe('ferry ls', () => {
  const docker = canonFromTar(listTar(path.join(FIXTURES, 'edge.docker-export.tar')));

  it('lists the merged tree: the paths docker export has (minus its init stubs), with their attributes', () => {
    const r = ferry(['ls', '--json', path.join(FIXTURES, 'edge.podman.oci')]);
    expect(r.status, r.stderr).toBe(0);
    const entries = JSON.parse(r.stdout) as ListedEntry[];
    const expected = [...docker.keys()].filter((p) => !DOCKER_INIT_ENTRIES.includes(p) || p === 'etc' || p === 'dev').sort();
    expect(entries.map((e) => normalizeName(e.path)).sort()).toEqual(expected);
    for (const e of entries) {
      const d = docker.get(normalizeName(e.path))!;
      expect({type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, size: e.size}, e.path).toEqual({type: d.type, mode: d.mode, uid: d.uid, gid: d.gid, size: d.size});
      if (d.links) expect(e.links, e.path).toEqual(d.links.map((l) => `/${l}`));
    }
    expect(entries.find((e) => e.path === '/srv/opaque-me/after.txt')).toMatchObject({layer: 2});
  });

  it('below PATH, in docker export order; the plain form is one path per line, directories ending in /', () => {
    const r = ferry(['ls', SAVE, '/srv/unicode']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('/srv/unicode/\n/srv/unicode/ünïcödé.txt\n/srv/unicode/中文.txt\n/srv/unicode/🚢.txt\n');
    const members = listTar(path.join(FIXTURES, 'edge.docker-export.tar')).map((m) => normalizeName(m.name)).filter((n) => n.startsWith('srv/'));
    const ours = ferry(['ls', SAVE, 'srv/']).stdout.trim().split('\n').map(normalizeName);
    expect(ours).toEqual(members);
  });

  it('--long shows ls -l style mode, owner, size, time and the layer', () => {
    const r = ferry(['ls', '--long', SAVE, '/srv/setuid.sh']);
    expect(r.stdout).toMatch(/^-rwsr-xr-x 0\/0 +30 2026-11-23 08:50 +L0 \/srv\/setuid\.sh\n$/);
    expect(ferry(['ls', '-l', SAVE, '/srv/abs-link']).stdout).toMatch(/^lrwxrwxrwx .* \/srv\/abs-link -> \/srv\/keep\.txt\n$/);
    expect(permissions('dir', 0o1777)).toBe('drwxrwxrwt');
    expect(permissions('file', 0o2644)).toBe('-rw-r-Sr--');
  });

  it("--layer N lists that layer's own entries: adds, changes and deletions (whiteouts, opaque markers)", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-ls-'));
    try {
      const manifest = JSON.parse(execFileSync('tar', ['-xOf', SAVE, 'manifest.json'], {encoding: 'utf8'})) as Array<{Layers: string[]}>;
      execFileSync('tar', ['-xf', SAVE, '-C', dir, manifest[0]!.Layers[1]!]);
      const layerMembers = listTar(path.join(dir, manifest[0]!.Layers[1]!));
      const r = ferry(['ls', '--json', '--layer', '1', SAVE]);
      expect(r.status, r.stderr).toBe(0);
      const entries = JSON.parse(r.stdout) as ListedEntry[];
      expect(entries).toHaveLength(layerMembers.length);
      const deleted = entries.filter((e) => e.change === 'deleted').map((e) => e.path);
      const whiteouts = layerMembers.filter((m) => path.basename(m.name).startsWith('.wh.')).map((m) => `/${path.dirname(m.name)}/${path.basename(m.name).slice(4)}`);
      expect(deleted.sort()).toEqual(whiteouts.sort());
      expect(entries.find((e) => e.path === '/srv/f2d/inside')).toMatchObject({change: 'added', type: 'file'});
      expect(entries.find((e) => e.path === '/srv/mode.txt')).toMatchObject({change: 'changed', mode: 0o600});
    } finally {
      rmSync(dir, {recursive: true, force: true});
    }
    const text = ferry(['ls', '--layer', '2', SAVE]).stdout;
    expect(text).toContain('D /srv/opaque-me/ (opaque: hides everything below it from lower layers)\n');
    expect(text).toContain('A /srv/xlink link to /srv/base.txt\n');
    expect(text).toContain('D /srv/dangling\n');
  });

  it('errors: a missing PATH is exit 1, a --layer out of range exit 2', () => {
    const missing = ferry(['ls', SAVE, '/nope']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/\/nope: no such file or directory in ferry-fixture\/edge:1/);
    const range = ferry(['ls', SAVE, '--layer', '9']);
    expect(range.status).toBe(2);
    expect(range.stderr).toMatch(/--layer 9 is out of range: the image has 4 layer\(s\)/);
  });
});
