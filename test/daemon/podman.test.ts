import {execFileSync} from 'node:child_process';
import {mkdirSync, mkdtempSync, rmSync, symlinkSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {startPodmanService, type PodmanService} from '../helpers/daemons.js';
import {peerMissing} from '../helpers/peers.js';
import {dockerSaveGraphdriver} from '../helpers/real-world.js';
import {canonFromTar, diffCanon, listTar, type Canon} from '../helpers/tree-model.js';
import {cleanEnv, craftBusybox, dockerArchiveFacts, expectOneLineError, ferryAsync, inspectWith, mergeDockerArchives} from './support.js';

/**
 * `ferry load --podman` and `ferry save --podman` against `podman system service` on a private
 * socket with private vfs storage. The podman CLI on that same storage is the judge (`podman image
 * inspect`, `podman save`, `podman load`); `podman run` does not work in this sandbox.
 *
 * Names: podman's Docker-compatible API gives a short name docker.io (its tag endpoint tags
 * `app` as docker.io/app, and an OCI layout's io.containerd.image.name is taken as written), so
 * what ferry loads is named docker.io/… whether the image has one name or several.
 */
/** A name as docker reads it: a first component without '.', ':' or localhost is no registry (docker.io). */
function dockerFull(name: string): string {
  const first = name.split('/')[0]!;
  if (name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) return name;
  return `docker.io/${name.includes('/') ? name : `library/${name}`}`;
}

describe.skipIf(peerMissing('podman', 'skopeo', 'python3'))('ferry load and save with the podman service', () => {
  let dir: string;
  let svc: PodmanService;
  let home: string;
  /** Only the podman service is reachable: CONTAINER_HOST, no DOCKER_* of the caller. */
  const env = (): NodeJS.ProcessEnv => cleanEnv(home, {CONTAINER_HOST: svc.host});
  const ferry = (args: string[], extra: NodeJS.ProcessEnv = env()) => ferryAsync(args, {env: extra, exactEnv: true});
  const inspect = (name: string) => inspectWith(svc.podman, name);
  const exists = (name: string): boolean => svc.podmanRaw(['image', 'exists', name]).status === 0;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-dpod-'));
    home = path.join(dir, 'home');
    mkdirSync(home);
    svc = await startPodmanService();
  });

  afterAll(async () => {
    await svc?.stop();
    if (dir) rmSync(dir, {recursive: true, force: true});
  });

  it('CONTAINER_HOST: podman image inspect shows the ID, diffIDs and the docker.io name', async () => {
    const c = craftBusybox(path.join(dir, 'one.tar'), 'ferry-test/pod:one', 'one\n');
    const r = await ferry(['load', '--podman', c.file]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('Loaded image: docker.io/ferry-test/pod:one');
    const image = inspect('docker.io/ferry-test/pod:one');
    expect(image.Id).toBe(c.id);
    expect(image.RootFS.Layers).toEqual(c.diffIds);
    expect(image.RepoTags).toEqual(['docker.io/ferry-test/pod:one']);
  });

  it('$XDG_RUNTIME_DIR/podman/podman.sock when CONTAINER_HOST is unset (the rootless socket)', async () => {
    const xdg = path.join(dir, 'xdg');
    mkdirSync(path.join(xdg, 'podman'), {recursive: true});
    symlinkSync(svc.sock, path.join(xdg, 'podman', 'podman.sock'));
    const c = craftBusybox(path.join(dir, 'xdg.tar'), 'ferry-test/pod:xdg', 'xdg\n');
    const r = await ferry(['load', '--podman', c.file], cleanEnv(home, {XDG_RUNTIME_DIR: xdg}));
    expect(r.status, r.stderr).toBe(0);
    expect(inspect('docker.io/ferry-test/pod:xdg').Id).toBe(c.id);

    // And a missing one is named with what chose it.
    const empty = path.join(dir, 'xdg-empty');
    mkdirSync(empty);
    expectOneLineError(await ferry(['load', '--podman', c.file], cleanEnv(home, {XDG_RUNTIME_DIR: empty})), path.join(empty, 'podman', 'podman.sock'), 'XDG_RUNTIME_DIR');
  });

  it('zstd layers go in as they are (podman reads zstd): the diffIDs and the ID skopeo wrote', async () => {
    const c = craftBusybox(path.join(dir, 'zsrc.tar'), 'ferry-test/src:zstd', 'zstd\n');
    const file = path.join(dir, 'zstd.oci.tar');
    execFileSync('skopeo', ['copy', '-q', '--dest-compress-format', 'zstd', '--dest-compress', `docker-archive:${c.file}`, `oci-archive:${file}:ferry-test/pod:zstd`]);
    const manifest = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${file}`], {encoding: 'utf8'})) as {config: {digest: string}};
    const r = await ferry(['load', '--podman', file]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/stored uncompressed/);
    const image = inspect('docker.io/ferry-test/pod:zstd');
    expect(image.Id).toBe(manifest.config.digest);
    expect(image.RootFS.Layers).toEqual(c.diffIds);
  });

  it('an image with several names (Docker 25+ save, plus --tag): every name, each on its own line, all docker.io', async () => {
    const base = craftBusybox(path.join(dir, 'd25src.tar'), 'ferry-test/src:d25', 'd25\n');
    const out = path.join(dir, 'd25');
    mkdirSync(out);
    const saved = dockerSaveGraphdriver(out, {base: base.file, tags: ['ferry-test/pod:d25', 'ferry-test/pod:d25-also']});
    const r = await ferry(['load', '--podman', saved.tar, '--tag', 'ferry-test/extra:9']);
    expect(r.status, r.stderr).toBe(0);
    const names = ['docker.io/ferry-test/extra:9', 'docker.io/ferry-test/pod:d25', 'docker.io/ferry-test/pod:d25-also'];
    expect(r.stdout.trimEnd().split('\n').sort()).toEqual(names.map((n) => `Loaded image: ${n}`));
    const image = inspect('docker.io/ferry-test/pod:d25');
    expect(image.Id).toBe(saved.configDigest);
    expect(image.RootFS.Layers).toEqual(saved.diffIds);
    expect([...image.RepoTags].sort()).toEqual(names);
    expect(exists('localhost/ferry-test/pod:d25')).toBe(false);
  });

  it('podman refusing the archive part way: its message on one line, exit 1, and the names loaded before it removed again or pointed back', async () => {
    const previous = craftBusybox(path.join(dir, 'prev.tar'), 'ferry-test/prb:moved', 'previous\n');
    expect((await ferry(['load', '--podman', previous.file])).status).toBe(0);
    const first = craftBusybox(path.join(dir, 'prb-new.tar'), 'ferry-test/prb:new', 'new\n');
    const second = craftBusybox(path.join(dir, 'prb-moved.tar'), 'ferry-test/prb:moved', 'moved\n');
    const bad = craftBusybox(path.join(dir, 'prb-bad.tar'), 'ferry-test/prb:bad', 'bad\n', [[{path: 'x/'}, {path: 'x/link', type: 'hardlink', linkname: 'nowhere/file'}]]);
    const archive = mergeDockerArchives(path.join(dir, 'prb.tar'), [first.file, second.file, bad.file]);

    // podman load itself keeps what it loaded before the bad image: the contrast.
    const plain = svc.podmanRaw(['load', '-i', archive]);
    expect(plain.status).not.toBe(0);
    expect(plain.stderr).toContain('no such file or directory');
    expect(inspect('localhost/ferry-test/prb:new').Id).toBe(first.id);
    svc.podman(['rmi', 'localhost/ferry-test/prb:new', 'localhost/ferry-test/prb:moved']);

    const r = await ferry(['load', '--podman', archive]);
    expectOneLineError(r, 'no such file or directory', svc.sock, 'CONTAINER_HOST');
    expect(exists('docker.io/ferry-test/prb:new')).toBe(false);
    expect(exists('docker.io/ferry-test/prb:bad')).toBe(false);
    expect(inspect('docker.io/ferry-test/prb:moved').Id).toBe(previous.id);
    expect(exists(first.id)).toBe(false);
  });

  it('ferry squash --podman docker-daemon: → docker-daemon:: one layer, and podman export of a container of each is the same file system', async () => {
    const c = craftBusybox(path.join(dir, 'sq.tar'), 'ferry-test/pod:sq', 'first\n', [
      [{path: 'etc/hello.txt', content: 'rewritten\n'}, {path: 'srv/'}, {path: 'srv/gone.txt', content: 'gone\n'}, {path: 'srv/kept.txt', content: 'kept\n', mode: 0o600}],
      [{path: 'srv/.wh.gone.txt'}],
    ]);
    expect((await ferry(['load', '--podman', c.file])).status).toBe(0);
    const r = await ferry(['squash', '--podman', 'docker-daemon:ferry-test/pod:sq', 'docker-daemon:ferry-test/pod:sq-flat']);
    expect(r.status, r.stderr).toBe(0);
    expect(inspect('docker.io/ferry-test/pod:sq-flat').RootFS.Layers).toHaveLength(1);
    const exported = (name: string): Canon => {
      const id = svc.podman(['create', '--network', 'none', name, '/nonexistent']).trim();
      const file = path.join(dir, `${name.replace(/\W/g, '_')}.export.tar`);
      try {
        svc.podman(['export', '-o', file, id]);
      } finally {
        svc.podman(['rm', id]);
      }
      return canonFromTar(listTar(file));
    };
    const original = exported('docker.io/ferry-test/pod:sq');
    expect(original.get('srv/kept.txt')?.mode).toBe(0o600);
    expect(original.has('srv/gone.txt')).toBe(false);
    expect(diffCanon(original, exported('docker.io/ferry-test/pod:sq-flat'))).toEqual([]);
  });

  it('ferry save --podman names what podman save names (short names resolved to localhost/), and podman loads it back', async () => {
    const c = craftBusybox(path.join(dir, 'cli.tar'), 'ferry-test/pod:cli', 'cli\n');
    svc.podman(['load', '-i', c.file]);
    expect(inspect('ferry-test/pod:cli').RepoTags).toEqual(['localhost/ferry-test/pod:cli']);
    const reference = path.join(dir, 'podman-save.tar');
    svc.podman(['save', '-o', reference, 'ferry-test/pod:cli']);
    const expected = dockerArchiveFacts(reference);
    expect(expected).toEqual([expect.objectContaining({configDigest: c.id, diffIds: c.diffIds, repoTags: ['localhost/ferry-test/pod:cli']})]);

    const file = path.join(dir, 'ferry-save.tar');
    const r = await ferry(['save', '--podman', 'ferry-test/pod:cli', file]);
    expect(r.status, r.stderr).toBe(0);
    expect(dockerArchiveFacts(file).map(({compressions: _c, ...rest}) => rest)).toEqual(expected.map(({compressions: _c, ...rest}) => rest));

    svc.podman(['rmi', 'localhost/ferry-test/pod:cli']);
    expect(svc.podman(['load', '-i', file])).toContain('localhost/ferry-test/pod:cli');
    const back = inspect('localhost/ferry-test/pod:cli');
    expect(back.Id).toBe(c.id);
    expect(back.RootFS.Layers).toEqual(c.diffIds);

    // What ferry loaded (docker.io names) saves under those names, several at once.
    const both = path.join(dir, 'ferry-save-two.tar');
    const two = await ferry(['save', '--podman', 'ferry-test/pod:one', 'ferry-test/pod:xdg', both]);
    expect(two.status, two.stderr).toBe(0);
    // podman save writes docker.io/ferry-test/pod:one; ferry's manifest.json writes docker's
    // familiar form of the same name (docker.io implied).
    const saved = dockerArchiveFacts(both).flatMap((i) => i.repoTags).sort();
    expect(saved.map(dockerFull)).toEqual(['docker.io/ferry-test/pod:one', 'docker.io/ferry-test/pod:xdg']);
    svc.podman(['save', '-m', '-o', path.join(dir, 'podman-two.tar'), 'ferry-test/pod:one', 'ferry-test/pod:xdg']);
    expect(dockerArchiveFacts(path.join(dir, 'podman-two.tar')).flatMap((i) => i.repoTags).sort()).toEqual(['docker.io/ferry-test/pod:one', 'docker.io/ferry-test/pod:xdg']);

    // podman writes no docker-archive of an image with zstd layers, not even for its own CLI:
    // ferry passes its words on, on one line.
    const cli = svc.podmanRaw(['save', '-o', path.join(dir, 'zstd-cli.tar'), 'docker.io/ferry-test/pod:zstd']);
    expect(cli.status).not.toBe(0);
    expect(cli.stderr).toContain('zstd compression is not supported for docker images');
    expectOneLineError(await ferry(['save', '--podman', 'ferry-test/pod:zstd', path.join(dir, 'zstd.tar')]), 'zstd compression is not supported for docker images');
  });
});
