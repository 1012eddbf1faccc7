import {mkdtempSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {buildBusyboxArchive, startContainerd, startDockerd, type Containerd, type Dockerd} from '../helpers/daemons.js';
import {peerMissing} from '../helpers/peers.js';

// The harness itself: the peers start, load a real image, run it, and stop by pid.
describe.skipIf(peerMissing('dockerd', 'containerd', 'ctr', 'buildah'))('peer harness', () => {
  let dir: string;
  let dockerd: Dockerd;
  let containerd: Containerd;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-harness-'));
    [dockerd, containerd] = await Promise.all([startDockerd(), startContainerd()]);
  });
  afterAll(async () => {
    await Promise.all([dockerd?.stop(), containerd?.stop()]);
    rmSync(dir, {recursive: true, force: true});
  });

  it('builds a busybox image that docker loads and runs', async () => {
    const archive = await buildBusyboxArchive(path.join(dir, 'bb.tar'), 'ferry-test/bb:1', [{'etc/hello.txt': 'hello from layer 1\n'}]);
    expect(dockerd.docker(['load', '-i', archive])).toContain('ferry-test/bb:1');
    expect(dockerd.docker(['run', '--rm', '--network', 'none', 'ferry-test/bb:1', 'cat', '/etc/hello.txt'])).toBe('hello from layer 1\n');
    containerd.ctr(['images', 'import', '--snapshotter', 'native', archive]);
    expect(containerd.ctr(['images', 'ls', '-q'])).toContain('docker.io/ferry-test/bb:1');
  });
});
