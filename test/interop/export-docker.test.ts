import {execFileSync} from 'node:child_process';
import {mkdtempSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry, FIXTURES} from '../helpers/cli.js';
import {startDockerd, type Dockerd} from '../helpers/daemons.js';
import {peerMissing} from '../helpers/peers.js';
import {canonFromTar, craftDockerArchive, diffCanon, dockerExportCanon, EVERY_CASE, expectSameAsDocker, LayerModel, listTar, type CraftLayer} from '../helpers/tree-model.js';

/**
 * `ferry export` against `docker export` of a container created (never started) from the same
 * image, entry by entry: path, type, mode, uid, gid, size, content sha256, link target, and which
 * names are hard links of one file. Docker's init layer adds DOCKER_INIT_ENTRIES to every container;
 * those are left out where the image itself does not have them.
 */
describe.skipIf(peerMissing('dockerd'))('ferry export == docker export', () => {
  let dir: string;
  let dockerd: Dockerd;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-export-docker-'));
    dockerd = await startDockerd();
  });
  afterAll(async () => {
    await dockerd?.stop();
    rmSync(dir, {recursive: true, force: true});
  });

  it('for an image exercising every case: whiteouts, opaque dirs, type changes, hard links, long and unicode names, modes, owners, 16 MiB of zeros', () => {
    const archive = path.join(dir, 'every-case.tar');
    craftDockerArchive(archive, 'ferry-test/every-case:1', EVERY_CASE);
    dockerd.docker(['load', '-i', archive]);
    const docker = dockerExportCanon(dockerd, 'ferry-test/every-case:1', path.join(dir, 'docker.tar'));
    const out = path.join(dir, 'ferry.tar');
    const r = ferry(['export', archive, out]);
    expect(r.stdout).toMatch(/^exported ferry-test\/every-case:1/);
    expect(r.status).toBe(0);
    const ours = canonFromTar(listTar(out));
    expectSameAsDocker(docker, ours);
    // The cases really are in the image (a sample; the full comparison is above).
    expect(ours.get('srv/zeros16')).toMatchObject({size: 16 << 20});
    expect(ours.get('srv/xlink')).toMatchObject({type: 'file', size: 32});
    expect(ours.get('srv/h/b')!.links).toEqual(['srv/h/sub/c']);
    expect(ours.get('srv/meta-orig')).toMatchObject({uid: 4321, mode: 0o600});
    expect(ours.get('srv/wt-real/through.txt')).toMatchObject({type: 'file'});
    expect(ours.has('srv/tmpfile') || ours.has('srv/opq/old.txt') || ours.has('srv/olddir')).toBe(false);
    // And the in-test model agrees with both.
    expect(diffCanon(new LayerModel().applyLayers(EVERY_CASE).canon(), ours)).toEqual([]);
  });

  it('for the fixture child image (edge-multi.docker-save.tar, --image ferry-fixture/edge-child:1)', () => {
    dockerd.docker(['load', '-i', path.join(FIXTURES, 'edge-multi.docker-save.tar')]);
    const docker = dockerExportCanon(dockerd, 'ferry-fixture/edge-child:1', path.join(dir, 'docker-child.tar'));
    const out = path.join(dir, 'ferry-child.tar');
    const r = ferry(['export', '--image', 'ferry-fixture/edge-child:1', path.join(FIXTURES, 'edge-multi.docker-save.tar'), out]);
    expect(r.status, r.stderr).toBe(0);
    expectSameAsDocker(docker, canonFromTar(listTar(out)));
  });

  it('headers as docker export writes them: type bits in the mode, symlinks lrwxrwxrwx, owners named from the image, no hdrcharset', () => {
    // (the fixture image's /etc/passwd names uid 1000, which owns /app: docker names owners from it)
    const headers = (file: string): Map<string, string> => {
      const py = `import tarfile,sys
for m in tarfile.open(sys.argv[1]).getmembers(): print(m.name, oct(m.mode), m.uname, m.gname, ','.join(sorted(m.pax_headers)))`;
      const lines = execFileSync('python3', ['-c', py, file], {encoding: 'utf8'}).split('\n').filter((l) => l !== '');
      return new Map(lines.map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]));
    };
    const docker = headers(path.join(dir, 'docker-child.tar'));
    const ours = headers(path.join(dir, 'ferry-child.tar'));
    const mismatches = [...ours].filter(([name, h]) => docker.has(name) && docker.get(name) !== h).map(([name, h]) => `${name}: ferry ${h} docker ${docker.get(name)}`);
    expect(mismatches).toEqual([]);
    expect([...ours.values()].some((h) => h.startsWith('0o120777'))).toBe(true);
    expect([...ours.values()].filter((h) => h.includes('hdrcharset'))).toEqual([]);
  });

  it('docker itself deletes a file whited out in the layer that created it (what ferry matches)', () => {
    const layers: CraftLayer[] = [[{path: 'keep', content: 'k'}], [{path: 'c/'}, {path: 'c/new', content: 'n'}, {path: 'c/.wh.new'}]];
    const archive = path.join(dir, 'same-layer.tar');
    craftDockerArchive(archive, 'ferry-test/same-layer:1', layers);
    dockerd.docker(['load', '-i', archive]);
    const docker = dockerExportCanon(dockerd, 'ferry-test/same-layer:1', path.join(dir, 'docker-same.tar'));
    expect(docker.has('c')).toBe(true);
    expect(docker.has('c/new')).toBe(false);
    const out = path.join(dir, 'ferry-same.tar');
    expect(ferry(['export', archive, out]).status).toBe(0);
    expectSameAsDocker(docker, canonFromTar(listTar(out)));
  });

  it("docker's applier wipes the directory holding a bare .wh. entry (stereoscope#647); ferry keeps it", () => {
    const layers: CraftLayer[] = [[{path: 'd/'}, {path: 'd/keep', content: 'k'}, {path: 'other', content: 'o'}], [{path: 'd/.wh.'}]];
    const archive = path.join(dir, 'bare-wh.tar');
    craftDockerArchive(archive, 'ferry-test/bare-wh:1', layers);
    dockerd.docker(['load', '-i', archive]);
    const docker = dockerExportCanon(dockerd, 'ferry-test/bare-wh:1', path.join(dir, 'docker-bare.tar'));
    expect(docker.has('d')).toBe(false);
    const out = path.join(dir, 'ferry-bare.tar');
    const r = ferry(['export', archive, out]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/warning: .*whiteout "d\/\.wh\." names nothing; ignored/);
    const ours = canonFromTar(listTar(out));
    expect(ours.has('d/keep')).toBe(true);
  });
});
