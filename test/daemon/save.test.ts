import {execFileSync} from 'node:child_process';
import {existsSync, mkdtempSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry} from '../helpers/cli.js';
import {startDockerd, type Dockerd} from '../helpers/daemons.js';
import {peerMissing} from '../helpers/peers.js';
import {craftBusybox, dockerArchiveFacts, expectOneLineError, inspectWith, type ArchiveImage, type Crafted} from './support.js';

/**
 * `ferry save` against a private docker 20.10, with `docker save` of the same names as the
 * reference: the same images (config bytes), diffIDs and RepoTags, read from both archives by the
 * tests' own reader; docker loads ferry's archive back to the same ID; skopeo reads the
 * oci-archive and the zstd docker-archive ferry writes, and what skopeo makes of them runs in docker.
 */

/** An archive's images in a comparable order (by config), names sorted. */
function facts(file: string): ArchiveImage[] {
  return dockerArchiveFacts(file)
    .map((i) => ({...i, repoTags: [...i.repoTags].sort()}))
    .sort((a, b) => a.configDigest.localeCompare(b.configDigest));
}

const withoutCompression = (images: ArchiveImage[]): Array<Omit<ArchiveImage, 'compressions'>> => images.map(({compressions: _c, ...rest}) => rest);

describe.skipIf(peerMissing('dockerd', 'skopeo', 'python3'))('ferry save from a private docker 20.10, against docker save', () => {
  let dir: string;
  let dockerd: Dockerd;
  let a: Crafted;
  let b: Crafted;
  const env = (): NodeJS.ProcessEnv => ({DOCKER_HOST: dockerd.host});
  const inspect = (name: string) => inspectWith(dockerd.docker, name);
  let n = 0;
  const out = (name: string): string => path.join(dir, `${++n}-${name}`);

  /** docker save and ferry save of the same names; both archives' facts. */
  function both(names: string[]): {docker: ArchiveImage[]; ferry: ArchiveImage[]; file: string} {
    const reference = out('docker.tar');
    dockerd.docker(['save', '-o', reference, ...names]);
    const file = out('ferry.tar');
    const r = ferry(['save', ...names, file], {env: env()});
    expect(r.status, r.stderr).toBe(0);
    return {docker: facts(reference), ferry: facts(file), file};
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-dsave-'));
    dockerd = await startDockerd();
    a = craftBusybox(path.join(dir, 'a.tar'), 'ferry-test/save:a', 'image a\n');
    b = craftBusybox(path.join(dir, 'b.tar'), 'ferry-test/save:b', 'image b\n', [[{path: 'srv/'}, {path: 'srv/b.txt', content: 'only in b\n'}]]);
    dockerd.docker(['load', '-i', a.file]);
    dockerd.docker(['load', '-i', b.file]);
    dockerd.docker(['tag', 'ferry-test/save:a', 'ferry-test/save:a2']);
    dockerd.docker(['tag', 'ferry-test/save:a', 'ferry-test/other:1']);
  });

  afterAll(async () => {
    await dockerd?.stop();
    if (dir) rmSync(dir, {recursive: true, force: true});
  });

  it('one name: the image ID, diffIDs and RepoTags of docker save; docker loads it back to the same image', () => {
    const {docker, ferry: ours, file} = both(['ferry-test/save:a']);
    expect(docker).toHaveLength(1);
    expect(docker[0]).toMatchObject({configDigest: a.id, diffIds: a.diffIds, repoTags: ['ferry-test/save:a']});
    expect(withoutCompression(ours)).toEqual(withoutCompression(docker));

    // Back into docker with every name of the image gone first: docker's own ID and diffIDs.
    dockerd.docker(['rmi', 'ferry-test/save:a', 'ferry-test/save:a2', 'ferry-test/other:1']);
    expect(dockerd.dockerRaw(['image', 'inspect', a.id]).status).not.toBe(0);
    expect(dockerd.docker(['load', '-i', file])).toContain('Loaded image: ferry-test/save:a');
    const back = inspect('ferry-test/save:a');
    expect(back.Id).toBe(a.id);
    expect(back.RootFS.Layers).toEqual(a.diffIds);
    expect(back.RepoTags).toEqual(['ferry-test/save:a']);
    dockerd.docker(['tag', 'ferry-test/save:a', 'ferry-test/save:a2']);
    dockerd.docker(['tag', 'ferry-test/save:a', 'ferry-test/other:1']);
  });

  it('to stdout (DEST -): docker load reads the stream', () => {
    const r = ferry(['save', 'ferry-test/save:b', '-'], {env: env()});
    expect(r.status, r.stderr).toBe(0);
    dockerd.docker(['rmi', 'ferry-test/save:b']);
    expect(dockerd.docker(['load'], {input: r.stdoutBytes})).toContain('Loaded image: ferry-test/save:b');
    expect(inspect('ferry-test/save:b').Id).toBe(b.id);
  });

  it('several names, two of them one image: one archive, as docker save writes it', () => {
    const {docker, ferry: ours} = both(['ferry-test/save:a', 'ferry-test/save:b', 'ferry-test/save:a2']);
    expect(docker.map((i) => i.repoTags)).toHaveLength(2);
    expect(withoutCompression(ours)).toEqual(withoutCompression(docker));
  });

  it('a repository without a tag: every tag of it, as docker save REPO does', () => {
    const {docker, ferry: ours} = both(['ferry-test/save']);
    expect(docker.flatMap((i) => i.repoTags).sort()).toEqual(['ferry-test/save:a', 'ferry-test/save:a2', 'ferry-test/save:b']);
    expect(withoutCompression(ours)).toEqual(withoutCompression(docker));
  });

  it('by image ID (full and short): unnamed, as docker save ID writes it; beside a name, only the name', () => {
    for (const id of [a.id, a.id.slice('sha256:'.length, 'sha256:'.length + 12)]) {
      const {docker, ferry: ours} = both([id]);
      expect(docker).toEqual([expect.objectContaining({configDigest: a.id, repoTags: []})]);
      expect(withoutCompression(ours)).toEqual(withoutCompression(docker));
    }
    const {docker, ferry: ours} = both([b.id, 'ferry-test/save:a']);
    expect(withoutCompression(ours)).toEqual(withoutCompression(docker));
  });

  it('oci-archive: with --compress zstd: skopeo reads it (ID, diffIDs, zstd layers) and what skopeo copies out of it runs in docker', () => {
    const file = out('a.oci.tar');
    const r = ferry(['save', 'ferry-test/save:a', `oci-archive:${file}`, '--compress', 'zstd'], {env: env()});
    expect(r.status, r.stderr).toBe(0);
    const manifest = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${file}`], {encoding: 'utf8'})) as {config: {digest: string}; layers: Array<{mediaType: string}>};
    expect(manifest.config.digest).toBe(inspect('ferry-test/save:a').Id);
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(a.diffIds.map(() => 'application/vnd.oci.image.layer.v1.tar+zstd'));
    const config = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `oci-archive:${file}`], {encoding: 'utf8'})) as {rootfs: {diff_ids: string[]}};
    expect(config.rootfs.diff_ids).toEqual(inspect('ferry-test/save:a').RootFS.Layers);
    // skopeo 1.9 turns no zstd layer into a docker image directly: through gzip first, each zstd
    // blob decompressed (and its digest checked) by skopeo.
    const gz = out('a.gzip.oci');
    execFileSync('skopeo', ['copy', '-q', '--dest-compress', '--dest-compress-format', 'gzip', `oci-archive:${file}`, `oci:${gz}:a`]);
    const copied = out('via-skopeo.tar');
    execFileSync('skopeo', ['copy', '-q', `oci:${gz}:a`, `docker-archive:${copied}:ferry-test/via-skopeo:oci`]);
    dockerd.docker(['load', '-i', copied]);
    expect(inspect('ferry-test/via-skopeo:oci').RootFS.Layers).toEqual(a.diffIds);
    expect(dockerd.docker(['run', '--rm', '--network', 'none', 'ferry-test/via-skopeo:oci', 'cat', '/etc/hello.txt'])).toBe('image a\n');
  });

  it('docker-archive: with --compress zstd: the same images as docker save, zstd layers (docker 20.10 refuses them, skopeo reads them)', () => {
    const reference = out('b.docker.tar');
    dockerd.docker(['save', '-o', reference, 'ferry-test/save:b']);
    const file = out('b.zstd.tar');
    const r = ferry(['save', 'ferry-test/save:b', `docker-archive:${file}`, '--compress', 'zstd'], {env: env()});
    expect(r.status, r.stderr).toBe(0);
    const ours = facts(file);
    expect(ours.flatMap((i) => i.compressions)).toEqual(b.diffIds.map(() => 'zstd'));
    expect(withoutCompression(ours)).toEqual(withoutCompression(facts(reference)));
    // docker skips layers it has: without b's own layer it must read the zstd blob, and cannot.
    dockerd.docker(['rmi', 'ferry-test/save:b']);
    expect(dockerd.dockerRaw(['load', '-i', file]).status).not.toBe(0);
    dockerd.docker(['load', '-i', b.file]);
    const seen = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${file}`], {encoding: 'utf8'})) as {Layers: string[]; RepoTags?: string[]};
    expect(seen.Layers).toEqual(b.diffIds);
    const copied = out('b-via-skopeo.tar');
    execFileSync('skopeo', ['copy', '-q', `docker-archive:${file}`, `docker-archive:${copied}:ferry-test/via-skopeo:zstd`]);
    dockerd.docker(['load', '-i', copied]);
    expect(inspect('ferry-test/via-skopeo:zstd').Id).toBe(b.id);
    expect(dockerd.docker(['run', '--rm', '--network', 'none', 'ferry-test/via-skopeo:zstd', 'cat', '/srv/b.txt'])).toBe('only in b\n');
  });

  it('an image the daemon does not have: docker\'s own message on one line, exit 1, no output left', () => {
    const said = dockerd.dockerRaw(['save', 'ferry-test/nothing:1']);
    expect(said.status).not.toBe(0);
    const message = said.stderr.trim().replace(/^Error response from daemon: /, '');
    const file = out('nothing.tar');
    expectOneLineError(ferry(['save', 'ferry-test/nothing:1', file], {env: env()}), 'ferry-test/nothing:1', message);
    expect(existsSync(file)).toBe(false);
  });
});
