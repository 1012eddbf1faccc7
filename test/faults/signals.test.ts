/**
 * Ctrl-C and kill in the middle of work: convert, squash and export are interrupted once their temp
 * output exists, and must exit 130 (SIGINT) or 143 (SIGTERM) with one line, leaving no temp file
 * beside the destination, nothing in FERRY_TMPDIR and no destination. Also while spooling stdin.
 * Needs `npm run build`.
 */
import {spawn, type ChildProcess} from 'node:child_process';
import {mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FIXTURES, requireBuiltCli} from '../helpers/cli.js';
import {userEnv} from '../hostile/run.js';
import {writeBigDockerSave} from './big-archive.js';

let root: string;
let big: string;
const SIZE = 192 * 1024 * 1024;

beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'ferry-signals-'));
  big = path.join(root, 'big.tar');
  writeBigDockerSave(big, SIZE);
}, 120_000);

afterAll(() => {
  rmSync(root, {recursive: true, force: true});
});

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function finished(child: ChildProcess, stderr: Buffer[]): Promise<Finished> {
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({code, signal, stderr: Buffer.concat(stderr).toString('utf8')})));
}

/** Polls until `ready()` or the process ends; true when it was caught in the act. */
async function waitFor(child: ChildProcess, ready: () => boolean, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    if (ready()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return false;
}

const cases: Array<{command: string; name: string; args: (out: string) => string[]; signal: NodeJS.Signals; code: number}> = [
  {command: 'convert', name: 'convert to oci-archive', args: (out) => ['convert', big, `oci-archive:${path.join(out, 'result.tar')}`, '--compress', 'gzip'], signal: 'SIGINT', code: 130},
  {command: 'convert', name: 'convert to an OCI layout directory', args: (out) => ['convert', big, `oci:${path.join(out, 'layout')}`, '--compress', 'gzip'], signal: 'SIGTERM', code: 143},
  {command: 'squash', name: 'squash to docker-archive', args: (out) => ['squash', big, `docker-archive:${path.join(out, 'squashed.tar')}`, '--compress', 'gzip'], signal: 'SIGTERM', code: 143},
  {command: 'export', name: 'export to a rootfs tar', args: (out) => ['export', big, path.join(out, 'rootfs.tar')], signal: 'SIGINT', code: 130},
];

describe('interrupted by a signal', () => {
  for (const c of cases) {
    it(`${c.name} + ${c.signal} → exit ${c.code}, nothing left`, async () => {
      const run = path.join(root, `${c.command}-${c.signal}-${Math.random().toString(36).slice(2)}`);
      const out = path.join(run, 'out');
      const temp = path.join(run, 'tmp');
      mkdirSync(out, {recursive: true});
      mkdirSync(temp);
      const child = spawn(process.execPath, [requireBuiltCli(), ...c.args(out)], {env: userEnv({FERRY_TMPDIR: temp}), stdio: ['ignore', 'ignore', 'pipe']});
      const stderr: Buffer[] = [];
      child.stderr!.on('data', (d: Buffer) => stderr.push(d));
      const done = finished(child, stderr);
      // Mid-way: its temp output (beside the destination, or in FERRY_TMPDIR) exists.
      const caught = await waitFor(child, () => readdirSync(out).length > 0 || readdirSync(temp).length > 0);
      expect(caught, 'the command ended before it could be interrupted: make the input bigger').toBe(true);
      child.kill(c.signal);
      const result = await done;
      expect(result.code, `finished before the signal arrived: make the input bigger\n${result.stderr}`).not.toBe(0);
      expect(result.signal, result.stderr).toBeNull();
      expect(result.code, result.stderr).toBe(c.code);
      expect(result.stderr).toBe(`ferry: interrupted by ${c.signal}\n`);
      expect(readdirSync(out), 'left beside the destination').toEqual([]);
      expect(readdirSync(temp), 'left in FERRY_TMPDIR').toEqual([]);
      expect(readdirSync(run).sort()).toEqual(['out', 'tmp']);
    }, 120_000);
  }

  it('verify - (stdin being spooled) + SIGTERM → exit 143, the spool removed', async () => {
    const run = path.join(root, `spool-${Math.random().toString(36).slice(2)}`);
    const temp = path.join(run, 'tmp');
    mkdirSync(temp, {recursive: true});
    const child = spawn(process.execPath, [requireBuiltCli(), 'verify', '-'], {env: userEnv({FERRY_TMPDIR: temp}), stdio: ['pipe', 'ignore', 'pipe']});
    const stderr: Buffer[] = [];
    child.stderr!.on('data', (d: Buffer) => stderr.push(d));
    const done = finished(child, stderr);
    // Half of a gzip archive, and the pipe left open: ferry waits for the rest, spool file open.
    const gz = readFileSync(path.join(FIXTURES, 'edge.docker-save.tar.gz'));
    child.stdin!.write(gz.subarray(0, gz.length >> 1));
    const caught = await waitFor(child, () => readdirSync(temp).length > 0);
    expect(caught).toBe(true);
    child.kill('SIGTERM');
    const result = await done;
    child.stdin!.destroy();
    expect(result.code, result.stderr).toBe(143);
    expect(result.stderr).toBe('ferry: interrupted by SIGTERM\n');
    expect(readdirSync(temp)).toEqual([]);
  }, 60_000);

  it('inspect - waiting for stdin + SIGINT → exit 130 with one line', async () => {
    const child = spawn(process.execPath, [requireBuiltCli(), 'inspect', '-'], {env: userEnv(), stdio: ['pipe', 'ignore', 'pipe']});
    const stderr: Buffer[] = [];
    child.stderr!.on('data', (d: Buffer) => stderr.push(d));
    const done = finished(child, stderr);
    // inspect - blocks reading stdin (nothing is ever written).
    await new Promise((r) => setTimeout(r, 1000));
    child.kill('SIGINT');
    const result = await done;
    child.stdin!.destroy();
    expect(result.signal).toBeNull();
    expect(result.code).toBe(130);
    expect(result.stderr).toBe('ferry: interrupted by SIGINT\n');
  }, 30_000);
});
