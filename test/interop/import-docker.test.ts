import {execFileSync} from 'node:child_process';
import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry} from '../helpers/cli.js';
import {startDockerd, type Dockerd} from '../helpers/daemons.js';
import {peerMissing} from '../helpers/peers.js';
import {busyboxLayer, craftDockerArchive} from '../helpers/tree-model.js';

/**
 * `ferry import` of `docker export`'s tar, loaded back into docker: the --change settings must be
 * what `docker import --change` makes of the same instructions (docker 20.10 itself is the expected
 * value), the layer must be the tar as given (same diffID as docker import's), and a container run
 * from it must see them.
 */
const CHANGES = [
  'CMD ["/bin/sh", "-c", "echo from cmd"]',
  'ENTRYPOINT /bin/sh -c',
  'ENV GREETING="hello world" LEVEL=3',
  'ENV LEGACY value with spaces',
  'WORKDIR /srv',
  'WORKDIR data',
  'USER 1000:1000',
  'EXPOSE 8080 53/udp 9000-9002',
  'LABEL org.example.team="core team" version=2',
  'VOLUME ["/data", "/cache"]',
  'VOLUME /logs',
];

interface DockerConfig {
  Cmd: string[] | null;
  Entrypoint: string[] | null;
  Env: string[] | null;
  WorkingDir: string;
  User: string;
  ExposedPorts: Record<string, object> | null;
  Labels: Record<string, string> | null;
  Volumes: Record<string, object> | null;
  StopSignal?: string;
}

describe.skipIf(peerMissing('dockerd'))('ferry import, loaded into docker', () => {
  let dir: string;
  let dockerd: Dockerd;
  let rootfs: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-import-docker-'));
    dockerd = await startDockerd();
    const source = path.join(dir, 'bb.tar');
    craftDockerArchive(source, 'ferry-test/import-src:1', [busyboxLayer(['sh', 'cat', 'id', 'pwd', 'echo']), [{path: 'srv/'}, {path: 'srv/data/'}, {path: 'srv/msg', content: 'from the rootfs\n'}]]);
    dockerd.docker(['load', '-i', source]);
    const cid = dockerd.docker(['create', '--network', 'none', 'ferry-test/import-src:1', '/bin/sh']).trim();
    rootfs = path.join(dir, 'rootfs.tar');
    dockerd.docker(['export', '-o', rootfs, cid]);
    dockerd.docker(['rm', cid]);
  });
  afterAll(async () => {
    await dockerd?.stop();
    rmSync(dir, {recursive: true, force: true});
  });

  const inspect = (tag: string): {Config: DockerConfig; RootFS: {Layers: string[]}; Architecture: string; Os: string; Comment: string} =>
    (JSON.parse(dockerd.docker(['image', 'inspect', tag])) as Array<{Config: DockerConfig; RootFS: {Layers: string[]}; Architecture: string; Os: string; Comment: string}>)[0]!;

  it('--change settings appear in docker image inspect exactly as docker import --change makes them', () => {
    const changeArgs = CHANGES.flatMap((c) => ['--change', c]);
    dockerd.docker(['import', ...changeArgs, rootfs, 'ferry-test/by-docker:1']);
    const out = path.join(dir, 'imported.tar');
    const r = ferry(['import', rootfs, `docker-archive:${out}`, '--tag', 'ferry-test/by-ferry:1', ...changeArgs, '--change', 'STOPSIGNAL SIGQUIT']);
    expect(r.status, r.stderr).toBe(0);
    expect(dockerd.docker(['load', '-i', out])).toContain('ferry-test/by-ferry:1');
    const theirs = inspect('ferry-test/by-docker:1');
    const ours = inspect('ferry-test/by-ferry:1');
    // The comparison is not vacuous: docker did apply the instructions.
    expect(theirs.Config.Env).toEqual(expect.arrayContaining(['GREETING=hello world', 'LEGACY=value with spaces']));
    expect(Object.keys(theirs.Config.ExposedPorts ?? {}).sort()).toEqual(['53/udp', '8080/tcp', '9000/tcp', '9001/tcp', '9002/tcp']);
    expect(theirs.Config.WorkingDir).toBe('/srv/data');
    for (const key of ['Cmd', 'Entrypoint', 'Env', 'WorkingDir', 'User', 'ExposedPorts', 'Labels', 'Volumes'] as const) expect(ours.Config[key], key).toEqual(theirs.Config[key]);
    // docker 20.10 refuses STOPSIGNAL in --change (added in 23.0); the value is the instruction's.
    expect(ours.Config.StopSignal).toBe('SIGQUIT');
    // The layer is the tar as given: docker import computes the same diffID.
    expect(ours.RootFS.Layers).toEqual(theirs.RootFS.Layers);
    expect(ours.Comment).toBe(theirs.Comment);
  });

  it('a container run from the imported image sees the settings', () => {
    const out = path.join(dir, 'run.tar');
    const r = ferry(['import', rootfs, `docker-archive:${out}`, '--tag', 'ferry-test/run:1', '--change', 'ENV GREETING="hello world"', '--change', 'WORKDIR /srv/data', '--change', 'USER 1000', '--change', 'CMD ["/bin/sh", "-c", "echo $GREETING; pwd; id -u; cat /srv/msg"]']);
    expect(r.status, r.stderr).toBe(0);
    dockerd.docker(['load', '-i', out]);
    expect(dockerd.docker(['run', '--rm', '--network', 'none', 'ferry-test/run:1'])).toBe('hello world\n/srv/data\n1000\nfrom the rootfs\n');
  });

  it('a gzip-compressed rootfs (and one on stdin) becomes the same layer as the plain tar', () => {
    const gz = path.join(dir, 'rootfs.tar.gz');
    execFileSync('sh', ['-c', `gzip -c '${rootfs}' > '${gz}'`]);
    const out = path.join(dir, 'gz.tar');
    expect(ferry(['import', gz, `docker-archive:${out}`, '--tag', 'ferry-test/gz:1', '--platform', 'linux/arm64']).status).toBe(0);
    const viaStdin = path.join(dir, 'stdin.tar');
    expect(ferry(['import', '-', `docker-archive:${viaStdin}`, '--tag', 'ferry-test/stdin:1'], {input: readFileSync(rootfs)}).status).toBe(0);
    dockerd.docker(['load', '-i', out]);
    dockerd.docker(['load', '-i', viaStdin]);
    const plain = inspect('ferry-test/by-docker:1').RootFS.Layers;
    expect(inspect('ferry-test/gz:1').RootFS.Layers).toEqual(plain);
    expect(inspect('ferry-test/stdin:1').RootFS.Layers).toEqual(plain);
    expect(inspect('ferry-test/gz:1')).toMatchObject({Os: 'linux', Architecture: 'arm64'});
  });
});
