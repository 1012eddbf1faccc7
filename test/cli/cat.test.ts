import {createHash} from 'node:crypto';
import {mkdtempSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {catFile} from '../../src/ops/cat.js';
import {openArchive} from '../../src/transports/table.js';
import {ferry, FIXTURES} from '../helpers/cli.js';
import {canonFromTar, craftDockerArchive, listTar} from '../helpers/tree-model.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('ferry cat', () => {
  let dir: string;
  let jail: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-cat-'));
    jail = path.join(dir, 'jail.tar');
    craftDockerArchive(jail, 'ferry-test/jail:1', [
      [
        {path: 'etc/'},
        {path: 'etc/hostname', content: 'inside the image\n'},
        {path: 'up', type: 'symlink', linkname: '/../../../../../../etc/hostname'},
        {path: 'sub/'},
        {path: 'sub/rel', type: 'symlink', linkname: '../etc/hostname'},
        {path: 'abs', type: 'symlink', linkname: '/etc/hostname'},
        {path: 'hop', type: 'symlink', linkname: 'etc/../up'},
        {path: 'dirlink', type: 'symlink', linkname: '/etc'},
        {path: 'loop1', type: 'symlink', linkname: 'loop2'},
        {path: 'loop2', type: 'symlink', linkname: 'loop1'},
        {path: 'dangling', type: 'symlink', linkname: '/nowhere'},
        {path: 'pipe', type: 'fifo'},
      ],
      [{path: 'etc/hostname', content: 'upper layer wins\n'}, {path: 'hard', type: 'hardlink', linkname: 'etc/hostname'}],
    ]);
  });
  afterAll(() => rmSync(dir, {recursive: true, force: true}));

  it('prints every regular file of the fixture exactly as docker export holds it (symlinks and hard links followed)', async () => {
    const docker = canonFromTar(listTar(path.join(FIXTURES, 'edge.docker-export.tar')));
    const files = [...docker].filter(([p, e]) => e.type === 'file' && p.startsWith('srv/'));
    expect(files.length).toBeGreaterThan(15);
    // Through the library for each file (one process), through the CLI for a few.
    const archive = await openArchive(path.join(FIXTURES, 'edge.skopeo.oci-archive.tar'));
    try {
      for (const [p, e] of files) {
        const chunks: Buffer[] = [];
        for await (const chunk of (await catFile(archive, `/${p}`)).stream) chunks.push(chunk as Buffer);
        expect(sha(Buffer.concat(chunks)), p).toBe(e.sha256);
      }
    } finally {
      await archive.close();
    }
    const zeros = ferry(['cat', path.join(FIXTURES, 'edge.skopeo.oci-archive.tar'), '/srv/zeros.bin']);
    expect(zeros.status, zeros.stderr).toBe(0);
    expect(sha(zeros.stdoutBytes)).toBe(docker.get('srv/zeros.bin')!.sha256);
    const viaLink = ferry(['cat', path.join(FIXTURES, 'edge.docker-save.tar'), 'srv/rel-link']);
    expect(sha(viaLink.stdoutBytes)).toBe(docker.get('srv/keep.txt')!.sha256);
  });

  it('paths and symlinks resolve inside the image root only: ../ and absolute targets never leave it', () => {
    for (const p of ['/up', 'abs', '/hop', '/sub/rel', '/dirlink/hostname', '/hard', 'etc/../../etc/hostname', '../../etc/hostname']) {
      const r = ferry(['cat', jail, p]);
      expect(r.status, `${p}: ${r.stderr}`).toBe(0);
      expect(r.stdout, p).toBe('upper layer wins\n');
    }
  });

  it('a directory, a missing path, a dangling link, a loop or a fifo: one clear line, exit 1, nothing on stdout', () => {
    const cases: Array<[string, RegExp]> = [
      ['/etc', /\/etc in ferry-test\/jail:1: is a directory/],
      ['/dirlink', /is a directory/],
      ['/missing', /\/missing in ferry-test\/jail:1: no such file/],
      ['/dangling', /no such file/],
      ['/loop1', /too many levels of symbolic links/],
      ['/pipe', /is a fifo, not a regular file/],
    ];
    for (const [p, message] of cases) {
      const r = ferry(['cat', jail, p]);
      expect(r.status, p).toBe(1);
      expect(r.stdout, p).toBe('');
      expect(r.stderr, p).toMatch(message);
      expect(r.stderr.trim().split('\n'), p).toHaveLength(1);
    }
  });
});
