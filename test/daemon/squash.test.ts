import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry} from '../helpers/cli.js';
import {dockerBuild, startDockerd, type Dockerd} from '../helpers/daemons.js';
import {peerMissing} from '../helpers/peers.js';
import {diffCanon, dockerExportCanon, type Canon} from '../helpers/tree-model.js';
import {craftBusybox, type Crafted} from './support.js';

/**
 * In-daemon squash against docker's own: one Dockerfile built plainly and with `docker build
 * --squash` (classic builder, experimental dockerd), then `ferry squash docker-daemon:plain
 * docker-daemon:plain-small --from-layer <base layers>`. docker judges both results: the same
 * number of layers, the base layers' diffIDs kept, the same file system in `docker export`
 * (names, types, modes, owners, sizes, content hashes, link targets, hard-link groups), the same
 * runtime config, and `docker run` of ferry's result.
 */

const DOCKERFILE = [
  'FROM ferry-test/sqbase:1',
  'ENV GREETING=squashed',
  // add files, a symlink, a tree that a later step deletes, and a hard-link pair within one step
  'RUN mkdir -p /app/tmp/deep/er /app/data && echo one > /app/data/one.txt && echo t > /app/tmp/deep/er/t.txt && ln -s data/one.txt /app/link && echo pair > /app/pair-a && ln /app/pair-a /app/pair-b',
  // change a base file, chmod and chown base files, delete a base directory (with a subdirectory) and a base file
  'RUN echo changed >> /srv/change.txt && chmod 600 /srv/modme.txt && chown 1000:1000 /srv/owned.txt && rm -rf /srv/dropdir && rm /etc/base.txt',
  // delete the whole tree added two steps up, change modes in the image's own files, replace a file by a directory and a directory by a file
  'RUN rm -rf /app/tmp && echo two > /app/data/two.txt && chmod 750 /app/data && chmod 4755 /app/data/two.txt && rm /srv/f2d && mkdir /srv/f2d && echo inside > /srv/f2d/in.txt && rm -rf /srv/d2f && echo now-a-file > /srv/d2f',
  // bring back a deleted base directory with other content; repoint the symlink; an empty file
  'RUN mkdir /srv/dropdir && echo reborn > /srv/dropdir/new.txt && rm /app/link && ln -s data/two.txt /app/link && touch /app/empty',
  'COPY added.txt /app/added.txt',
  'WORKDIR /app',
  'LABEL org.example.squash=yes',
  '',
].join('\n');

describe.skipIf(peerMissing('dockerd', 'python3'))('ferry squash in the daemon, against docker build --squash', () => {
  let dir: string;
  let dockerd: Dockerd;
  let base: Crafted;
  const layersOf = (tag: string): string[] => JSON.parse(dockerd.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', tag])) as string[];
  const configOf = (tag: string): Record<string, unknown> => {
    const c = JSON.parse(dockerd.docker(['image', 'inspect', '--format', '{{json .Config}}', tag])) as Record<string, unknown>;
    return {Env: c.Env, Cmd: c.Cmd, Entrypoint: c.Entrypoint, WorkingDir: c.WorkingDir, Labels: c.Labels, User: c.User};
  };
  const exported: Record<string, Canon> = {};
  const exportOf = (tag: string): Canon => (exported[tag] ??= dockerExportCanon(dockerd, tag, path.join(dir, `${tag.replace(/\W/g, '_')}.export.tar`)));

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-dsquash-'));
    dockerd = await startDockerd({extraArgs: ['--experimental']});
    expect(dockerd.docker(['version', '--format', '{{.Server.Experimental}}']).trim()).toBe('true');
    base = craftBusybox(path.join(dir, 'base.tar'), 'ferry-test/sqbase:1', 'base\n', [
      [
        {path: 'etc/base.txt', content: 'deleted by a RUN step\n'},
        {path: 'srv/'},
        {path: 'srv/change.txt', content: 'original\n'},
        {path: 'srv/modme.txt', content: 'mode\n'},
        {path: 'srv/owned.txt', content: 'owner\n'},
        {path: 'srv/f2d', content: 'a file, then a directory\n'},
        {path: 'srv/d2f/'},
        {path: 'srv/d2f/x.txt', content: 'a directory, then a file\n'},
        {path: 'srv/dropdir/'},
        {path: 'srv/dropdir/a.txt', content: 'a\n'},
        {path: 'srv/dropdir/sub/'},
        {path: 'srv/dropdir/sub/c.txt', content: 'c\n'},
      ],
    ]);
    dockerd.docker(['load', '-i', base.file]);
    const ctx = path.join(dir, 'ctx');
    mkdirSync(ctx);
    writeFileSync(path.join(ctx, 'added.txt'), 'copied in\n');
    writeFileSync(path.join(ctx, 'Dockerfile'), DOCKERFILE);
    dockerBuild(dockerd, ctx, 'ferry-test/sq:plain');
    dockerBuild(dockerd, ctx, 'ferry-test/sq:docker-squash', {squash: true});
  });

  afterAll(async () => {
    await dockerd?.stop();
    if (dir) rmSync(dir, {recursive: true, force: true});
  });

  it('docker-daemon: to docker-daemon: --from-layer <base layers>: the layers docker --squash makes, the base kept', () => {
    const baseLayers = base.diffIds.length;
    expect(layersOf('ferry-test/sq:plain')).toHaveLength(baseLayers + 5);
    const r = ferry(['squash', 'docker-daemon:ferry-test/sq:plain', 'docker-daemon:ferry-test/sq:plain-small', '--from-layer', String(baseLayers)], {env: {DOCKER_HOST: dockerd.host}});
    expect(r.status, r.stderr).toBe(0);
    const ours = layersOf('ferry-test/sq:plain-small');
    const docker = layersOf('ferry-test/sq:docker-squash');
    expect(docker).toHaveLength(baseLayers + 1);
    expect(ours).toHaveLength(docker.length);
    expect(ours.slice(0, baseLayers)).toEqual(base.diffIds);
    expect(docker.slice(0, baseLayers)).toEqual(base.diffIds);
    // The source image is left as it was.
    expect(layersOf('ferry-test/sq:plain')).toHaveLength(baseLayers + 5);
  });

  it('the same file system as docker --squash in docker export, entry by entry', () => {
    const docker = exportOf('ferry-test/sq:docker-squash');
    // The build did what the Dockerfile says (so the comparison covers every case).
    expect(docker.get('srv/dropdir/new.txt')?.type).toBe('file');
    expect(docker.has('srv/dropdir/a.txt')).toBe(false);
    expect(docker.get('srv/f2d')?.type).toBe('dir');
    expect(docker.get('srv/d2f')?.type).toBe('file');
    expect(docker.has('app/tmp')).toBe(false);
    expect(docker.get('app/pair-b')?.links).toEqual(['app/pair-a']);
    expect(docker.get('srv/owned.txt')).toMatchObject({uid: 1000, gid: 1000});
    expect(docker.get('app/data/two.txt')?.mode).toBe(0o4755);
    expect(diffCanon(docker, exportOf('ferry-test/sq:plain-small'))).toEqual([]);
    expect(diffCanon(docker, exportOf('ferry-test/sq:plain'))).toEqual([]);
  });

  it('the same runtime config as docker --squash, and docker run of ferry\'s result works', () => {
    expect(configOf('ferry-test/sq:plain-small')).toEqual(configOf('ferry-test/sq:docker-squash'));
    const script = 'cat /srv/change.txt /srv/dropdir/new.txt /app/link /srv/d2f; echo $GREETING; pwd; ls /srv/f2d';
    const run = (tag: string): string => dockerd.docker(['run', '--rm', '--network', 'none', tag, 'sh', '-c', script]);
    expect(run('ferry-test/sq:plain-small')).toBe(run('ferry-test/sq:docker-squash'));
    expect(run('ferry-test/sq:plain-small')).toBe('original\nchanged\nreborn\ntwo\nnow-a-file\nsquashed\n/app\nin.txt\n');
  });

  it('docker-daemon: without a name: the squashed image takes the source\'s name (docker-squash\'s default, in place)', () => {
    const before = layersOf('ferry-test/sq:plain');
    const r = ferry(['squash', 'docker-daemon:ferry-test/sq:plain', 'docker-daemon:', '--from-layer', String(base.diffIds.length)], {env: {DOCKER_HOST: dockerd.host}});
    expect(r.status, r.stderr).toBe(0);
    const after = layersOf('ferry-test/sq:plain');
    expect(after).toHaveLength(base.diffIds.length + 1);
    expect(after).toEqual(layersOf('ferry-test/sq:plain-small'));
    expect(after).not.toEqual(before);
    delete exported['ferry-test/sq:plain'];
    expect(diffCanon(exportOf('ferry-test/sq:docker-squash'), exportOf('ferry-test/sq:plain'))).toEqual([]);
  });
});
