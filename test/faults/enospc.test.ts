/**
 * A full disk. Where this process may mount (root), a 1 MiB tmpfs is the destination or
 * FERRY_TMPDIR of commands whose output needs more: each must exit 1 with one line saying "no space
 * left on device", and leave the tmpfs empty (no partial archive, no temp file). Everywhere, writing
 * to a stdout that is /dev/full (every write fails with ENOSPC) must do the same. Needs
 * `npm run build`.
 */
import {spawn, spawnSync} from 'node:child_process';
import {closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {requireBuiltCli} from '../helpers/cli.js';
import {IN_CI, runsAsRoot} from '../helpers/peers.js';
import {buildLegacy, file, packTar, withDiffIds} from '../hostile/kit.js';
import {lines, userEnv} from '../hostile/run.js';

let root: string;
let mountPoint: string;
let source: string;
let sourceGz: string;

/** 3 MiB of bytes gzip cannot shrink much, in a one-layer image: every output needs ~3 MiB. */
function bigImage(): Buffer {
  const data = Buffer.alloc(3 * 1024 * 1024);
  let x = 99;
  for (let i = 0; i < data.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  const layer = packTar([file('data.bin', data), file('etc/hostname', 'full\n')]);
  const config = {architecture: 'amd64', os: 'linux', config: {}, rootfs: {type: 'layers', diff_ids: []}, history: [{created: '2024-01-01T00:00:00Z'}]};
  return packTar(buildLegacy([withDiffIds({config, layers: [layer], tags: ['full:1']})]));
}

/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN): probed once, unmounted at once. */
function canMountTmpfs(): boolean {
  if (!runsAsRoot('a full tmpfs')) return false;
  const probe = mkdtempSync(path.join(os.tmpdir(), 'ferry-mount-probe-'));
  try {
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], {stdio: 'ignore'}).status !== 0) {
      if (IN_CI) throw new Error('CI=true but mounting a tmpfs failed: the full-disk tests need root with CAP_SYS_ADMIN');
      return false;
    }
    spawnSync('umount', [probe], {stdio: 'ignore'});
    return true;
  } finally {
    rmSync(probe, {recursive: true, force: true});
  }
}

const CAN_MOUNT = canMountTmpfs();
if (!CAN_MOUNT) console.warn('skipped: cannot mount a tmpfs here (not root); the /dev/full tests still inject ENOSPC');

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function run(args: string[], options: {env?: Record<string, string>; stdoutFd?: number} = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [requireBuiltCli(), ...args], {env: userEnv(options.env), stdio: ['ignore', options.stdoutFd ?? 'ignore', 'pipe']});
    const err: Buffer[] = [];
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.on('close', (code, signal) => resolve({code, signal, stderr: Buffer.concat(err).toString('utf8')}));
  });
}

function expectNoSpace(r: Result): void {
  expect(r.signal, r.stderr).toBeNull();
  expect(r.code, r.stderr).toBe(1);
  expect(lines(r.stderr), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(/^ferry: .*no space left on device/);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'ferry-enospc-'));
  source = path.join(root, 'full.tar');
  writeFileSync(source, bigImage());
  sourceGz = path.join(root, 'full.tar.gz');
  writeFileSync(sourceGz, zlib.gzipSync(bigImage()));
  mountPoint = path.join(root, 'tiny');
  mkdirSync(mountPoint);
  if (CAN_MOUNT) expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint]).status).toBe(0);
});

afterAll(() => {
  if (CAN_MOUNT) spawnSync('umount', [mountPoint], {stdio: 'ignore'});
  rmSync(root, {recursive: true, force: true});
});

describe.skipIf(!CAN_MOUNT)('a full disk (1 MiB tmpfs)', () => {
  const cases: Array<{name: string; args: () => string[]; env?: () => Record<string, string>}> = [
    {name: 'convert to oci-archive on the full disk', args: () => ['convert', source, `oci-archive:${path.join(mountPoint, 'out.tar')}`]},
    {name: 'convert to an OCI layout directory on the full disk', args: () => ['convert', source, `oci:${path.join(mountPoint, 'layout')}`]},
    {name: 'convert to docker-archive with gzip layers', args: () => ['convert', source, `docker-archive:${path.join(mountPoint, 'out.tar')}`, '--compress', 'gzip']},
    {name: 'squash with the destination on the full disk', args: () => ['squash', source, `oci-archive:${path.join(mountPoint, 'sq.tar')}`]},
    {name: 'squash with FERRY_TMPDIR on the full disk', args: () => ['squash', source, `oci-archive:${path.join(root, 'sq-elsewhere.tar')}`], env: () => ({FERRY_TMPDIR: mountPoint})},
    {name: 'export to the full disk', args: () => ['export', source, path.join(mountPoint, 'rootfs.tar')]},
    {name: 'verify of a gzip archive spooled into a full FERRY_TMPDIR', args: () => ['verify', sourceGz], env: () => ({FERRY_TMPDIR: mountPoint})},
  ];
  for (const c of cases) {
    it(`${c.name}: exit 1, "no space left on device", nothing left`, async () => {
      const r = await run(c.args(), c.env ? {env: c.env()} : {});
      expectNoSpace(r);
      expect(readdirSync(mountPoint), 'left on the full disk').toEqual([]);
      expect(readdirSync(root).sort()).toEqual(['full.tar', 'full.tar.gz', 'tiny']);
    }, 60_000);
  }
});

describe('stdout is /dev/full (an injected ENOSPC on every write)', () => {
  for (const [name, args] of [
    ['convert to oci-archive:-', () => ['convert', source, 'oci-archive:-']],
    ['export to -', () => ['export', source, '-']],
    ['cat of a 3 MiB file', () => ['cat', source, '/data.bin']],
    ['inspect --json', () => ['inspect', '--json', source]],
  ] as const) {
    it(`${name}: exit 1, "no space left on device", nothing left`, async () => {
      const temp = path.join(root, `tmp-${name.replace(/\W+/g, '-')}`);
      mkdirSync(temp);
      const fd = openSync('/dev/full', 'w');
      try {
        const r = await run(args(), {stdoutFd: fd, env: {FERRY_TMPDIR: temp}});
        expectNoSpace(r);
      } finally {
        closeSync(fd);
      }
      expect(readdirSync(temp)).toEqual([]);
      rmSync(temp, {recursive: true});
    }, 60_000);
  }
});
