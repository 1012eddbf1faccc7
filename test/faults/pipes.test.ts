/**
 * Pipes that close early. An archive read from stdin that stops short — inside a member, or exactly
 * at a member boundary, where the tar itself looks whole — is an error, never a smaller archive:
 * from stdin nothing else can tell (ferry requires the end-of-archive marker there). And a reader
 * of ferry's stdout that goes away (`| head`) ends ferry with at most one line, nothing left behind.
 * Needs `npm run build`.
 */
import {spawn} from 'node:child_process';
import {mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FIXTURES, requireBuiltCli} from '../helpers/cli.js';
import {memberOffsets} from '../hostile/kit.js';
import {leaksInternals, lines, userEnv} from '../hostile/run.js';

let root: string;
const legacy = readFileSync(path.join(FIXTURES, 'edge.docker-save.tar'));
const exported = readFileSync(path.join(FIXTURES, 'edge.docker-export.tar'));
const gz = readFileSync(path.join(FIXTURES, 'edge.docker-save.tar.gz'));

beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'ferry-pipes-'));
});

afterAll(() => {
  rmSync(root, {recursive: true, force: true});
});

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  temp: string[];
  out: string[];
}

/** Runs ferry with `input` written to its stdin and the pipe then closed; `readStdout` bytes read. */
function run(args: string[], input: Buffer | undefined, options: {stdoutLimit?: number} = {}): Promise<Result> {
  const dir = mkdtempSync(path.join(root, 'run-'));
  const temp = path.join(dir, 'tmp');
  const out = path.join(dir, 'out');
  mkdirSync(temp);
  mkdirSync(out);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [requireBuiltCli(), ...args], {cwd: out, env: userEnv({FERRY_TMPDIR: temp}), stdio: ['pipe', 'pipe', 'pipe']});
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let seen = 0;
    child.stdout!.on('data', (d: Buffer) => {
      stdout.push(d);
      seen += d.length;
      // A reader that has had enough and goes away, as `head -c N` does.
      if (options.stdoutLimit !== undefined && seen >= options.stdoutLimit) child.stdout!.destroy();
    });
    child.stderr!.on('data', (d: Buffer) => stderr.push(d));
    child.stdin!.on('error', () => {}); // ferry may stop reading before the end: not this test's concern
    if (input) child.stdin!.end(input);
    else child.stdin!.end();
    child.on('close', (code, signal) => resolve({code, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8'), temp: readdirSync(temp), out: readdirSync(out)}));
  });
}

function expectOneLineFailure(r: Result, message: RegExp): void {
  expect(r.signal, r.stderr).toBeNull();
  expect(r.code, r.stderr).toBe(1);
  expect(lines(r.stderr), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(message);
  expect(leaksInternals(r.stderr), r.stderr).toBe(false);
  expect(r.stdout.length).toBe(0);
  expect(r.temp, 'temp files left').toEqual([]);
  expect(r.out, 'output left').toEqual([]);
}

describe('an archive on stdin that stops short', () => {
  it('cut inside a layer member: inspect, verify and convert fail naming it', async () => {
    const offsets = await memberOffsets(legacy);
    const layer = [...offsets.entries()].find(([n]) => n.endsWith('layer.tar') && offsets.get(n)!.size > 100_000)!;
    const cut = legacy.subarray(0, layer[1].data + 1000);
    for (const args of [['inspect', '-'], ['verify', '-'], ['convert', '-', 'oci-archive:result.tar']]) {
      expectOneLineFailure(await run(args, cut), new RegExp(`stdin: .*${layer[0].replace(/\./g, '\\.')}.*truncated`));
    }
  });

  it('cut at a member boundary after manifest.json (only "repositories" and the end marker lost): still an error', async () => {
    // The silent short archive: every member that is there is whole, and nothing ferry needs is
    // missing — but a pipe cut at a boundary cannot be told from a complete copy, except by the marker.
    const offsets = await memberOffsets(legacy);
    const cut = legacy.subarray(0, offsets.get('repositories')!.header);
    for (const args of [['inspect', '-'], ['verify', '-'], ['convert', '-', 'oci-archive:result.tar'], ['export', '-', 'rootfs.tar']]) {
      expectOneLineFailure(await run(args, cut), /^ferry: stdin: archive ends without the tar end-of-archive marker/);
    }
  });

  it('the same archive whole on stdin works (the check is not a false alarm)', async () => {
    const r = await run(['verify', '-'], legacy);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString()).toMatch(/^ok: 1 image/);
    expect(r.temp).toEqual([]);
  });

  it('a gzip stream cut short: corrupt gzip data', async () => {
    const r = await run(['inspect', '-'], gz.subarray(0, gz.length - 100));
    expectOneLineFailure(r, /^ferry: stdin: corrupt gzip data \(truncated\)/);
  });

  it('a rootfs tar for import cut at a member boundary is refused, not imported short', async () => {
    const offsets = [...(await memberOffsets(exported)).values()].sort((a, b) => a.header - b.header);
    const cut = exported.subarray(0, offsets.at(-3)!.header);
    const r = await run(['import', '-', 'oci-archive:imported.tar', '--tag', 'short:1'], cut);
    expectOneLineFailure(r, /end-of-archive marker/);
  });

  it('nothing at all on stdin', async () => {
    expectOneLineFailure(await run(['inspect', '-'], undefined), /^ferry: stdin: empty input/);
  });
});

describe("a reader of ferry's stdout that goes away early", () => {
  for (const [name, args] of [
    ['export to -', ['export', path.join(FIXTURES, 'edge.docker-save.tar'), '-']],
    ['convert to oci-archive:-', ['convert', path.join(FIXTURES, 'edge.docker-save.tar'), 'oci-archive:-']],
    ['cat of a 512 KiB file', ['cat', path.join(FIXTURES, 'edge.docker-save.tar'), '/srv/zeros.bin']],
  ] as const) {
    it(`${name}: at most one line, no stack trace, nothing left`, async () => {
      const r = await run([...args], undefined, {stdoutLimit: 1000});
      expect(r.signal, r.stderr).toBeNull();
      expect([0, 1]).toContain(r.code);
      expect(lines(r.stderr).length, r.stderr).toBeLessThanOrEqual(1);
      if (r.code === 1) expect(r.stderr).toMatch(/^ferry: stdout: broken pipe\n$/);
      expect(leaksInternals(r.stderr), r.stderr).toBe(false);
      expect(r.temp).toEqual([]);
      expect(r.out).toEqual([]);
    });
  }
});
