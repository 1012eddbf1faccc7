import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {readDockerArchive} from '../helpers/analyze-fixtures.js';
import {buildBusyboxArchive, dockerBuild, socketRequest, startDockerd, startPodmanService, type Dockerd, type PodmanService} from '../helpers/daemons.js';
import {peerMissing} from '../helpers/peers.js';

// The daemon helpers themselves: podman's API service on a private socket and the classic docker
// builder with --squash on an experimental private dockerd. Expected values come from the peers' own
// CLIs and from the archive bytes, never from the helper under test.

describe.skipIf(peerMissing('podman', 'buildah'))('podman system service (private storage, unix socket)', () => {
  let dir: string;
  let svc: PodmanService;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-psvc-'));
    svc = await startPodmanService();
  });
  afterAll(async () => {
    await svc?.stop();
    if (dir) rmSync(dir, {recursive: true, force: true});
  });

  it('answers the Docker API /_ping and /version', async () => {
    const ping = await socketRequest(svc.sock, 'GET', '/_ping');
    expect(ping.status).toBe(200);
    expect(ping.body.toString('utf8')).toBe('OK');
    const version = await socketRequest(svc.sock, 'GET', '/version');
    expect(version.status).toBe(200);
    const v = JSON.parse(version.body.toString('utf8')) as {Version: string; ApiVersion: string; Components: {Name: string}[]};
    // The server version is the podman that the CLI reports (`podman version` prints both sides).
    expect(v.Version).toBe(svc.podman(['version', '--format', '{{.Client.Version}}']).trim());
    expect(v.ApiVersion).toMatch(/^1\.\d+$/);
    expect(v.Components.map((c) => c.Name)).toContain('Podman Engine');
  });

  it('POST /images/load stores an image that `podman image inspect` on the same storage sees', async () => {
    const archive = await buildBusyboxArchive(path.join(dir, 'bb.tar'), 'ferry-test/psvc:1', [{'etc/psvc.txt': 'loaded through the API\n'}]);
    const expected = readDockerArchive(archive);
    const res = await socketRequest(svc.sock, 'POST', '/images/load', {bodyFile: archive, headers: {'Content-Type': 'application/x-tar'}});
    expect(res.status).toBe(200);
    expect(res.body.toString('utf8')).toContain('docker.io/ferry-test/psvc:1');
    const [img] = JSON.parse(svc.podman(['image', 'inspect', 'docker.io/ferry-test/psvc:1'])) as {Id: string; RootFS: {Layers: string[]}}[];
    expect(`sha256:${img!.Id}`).toBe(expected.configDigest);
    expect(img!.RootFS.Layers).toEqual(expected.layers.map((l) => l.diffId));
  });
});

describe.skipIf(peerMissing('dockerd', 'buildah'))('docker build --squash on an experimental private dockerd', () => {
  let dir: string;
  let dockerd: Dockerd;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-squash-'));
    dockerd = await startDockerd({extraArgs: ['--experimental']});
  });
  afterAll(async () => {
    await dockerd?.stop();
    if (dir) rmSync(dir, {recursive: true, force: true});
  });

  it('squashes the build steps into one layer on top of the base', async () => {
    expect(dockerd.docker(['version', '--format', '{{.Server.Experimental}}']).trim()).toBe('true');
    const archive = await buildBusyboxArchive(path.join(dir, 'base.tar'), 'ferry-test/sqbase:1', [{'etc/base.txt': 'base\n'}]);
    dockerd.docker(['load', '-i', archive]);
    const baseLayers = readDockerArchive(archive).layers.map((l) => l.diffId);
    const ctx = path.join(dir, 'ctx');
    mkdirSync(ctx);
    writeFileSync(path.join(ctx, 'added.txt'), 'copied in\n');
    writeFileSync(path.join(ctx, 'Dockerfile'), ['FROM ferry-test/sqbase:1', 'RUN echo one > /one.txt', 'RUN echo two > /two.txt && busybox rm /etc/base.txt', 'COPY added.txt /added.txt', ''].join('\n'));
    const layersOf = (tag: string): string[] => JSON.parse(dockerd.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', tag])) as string[];

    // Unsquashed, the classic builder makes one layer per RUN/COPY: the contrast that shows --squash acted.
    const plain = dockerBuild(dockerd, ctx, 'ferry-test/plain:1');
    expect(plain.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(layersOf('ferry-test/plain:1')).toHaveLength(baseLayers.length + 3);

    const squashed = dockerBuild(dockerd, ctx, 'ferry-test/squashed:1', {squash: true});
    expect(squashed.id).not.toBe(plain.id);
    const layers = layersOf('ferry-test/squashed:1');
    expect(layers).toHaveLength(baseLayers.length + 1);
    expect(layers.slice(0, baseLayers.length)).toEqual(baseLayers);
    // The squashed layer holds the net effect of all three steps, the deletion included.
    const run = (cmd: string): string => dockerd.docker(['run', '--rm', '--network', 'none', 'ferry-test/squashed:1', 'sh', '-c', cmd]);
    expect(run('cat /one.txt /two.txt /added.txt')).toBe('one\ntwo\ncopied in\n');
    expect(run('test -e /etc/base.txt && echo present || echo gone')).toBe('gone\n');
  });
});
