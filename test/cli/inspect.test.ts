import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FIXTURES, ferry} from '../helpers/cli.js';

/** `ferry inspect` as a user runs it: exit codes 0/1/2, one line on stderr, nothing on stdout for errors. */

const FIXTURE = path.join(FIXTURES, 'edge.docker-save.tar');
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-cli-inspect-'));
});
afterAll(() => {
  fs.rmSync(tmp, {recursive: true, force: true});
});

/** An error as the house style wants it: exit `code`, stdout empty, exactly one `ferry: …` line, no stack. */
function expectCleanError(r: ReturnType<typeof ferry>, code: number, ...fragments: string[]): void {
  expect(r.status).toBe(code);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^ferry: /);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  for (const f of fragments) expect(lines[0]).toContain(f);
}

describe('exit codes', () => {
  it('0 with the result on stdout and nothing on stderr', () => {
    const r = ferry(['inspect', '--json', FIXTURE]);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toHaveProperty('format', 'docker-archive');
  });

  it('2 for an unknown flag', () => {
    expectCleanError(ferry(['inspect', '--no-such-flag', FIXTURE]), 2, '--no-such-flag');
  });

  it('2 for a missing argument', () => {
    expectCleanError(ferry(['inspect']), 2, 'source');
  });

  it('2 for an extra argument', () => {
    expectCleanError(ferry(['inspect', FIXTURE, 'extra']), 2, 'extra');
  });

  it('2 for a transport ferry does not read', () => {
    expectCleanError(ferry(['inspect', 'containers-storage:busybox']), 2, 'containers-storage:');
  });

  it('1 for a missing file, naming it', () => {
    const missing = path.join(tmp, 'no-such.tar');
    expectCleanError(ferry(['inspect', missing]), 1, missing, 'no such file');
  });

  it('1 for a file that is no archive, naming what was tried', () => {
    const junk = path.join(tmp, 'junk.bin');
    fs.writeFileSync(junk, Buffer.from('this is not a tar archive, not even close. '.repeat(50)));
    expectCleanError(ferry(['inspect', junk]), 1, junk, 'docker-archive', 'oci-archive', 'rootfs');
  });

  it('1 for a transport that does not fit the input', () => {
    expectCleanError(ferry(['inspect', `oci:${FIXTURE}`]), 1, FIXTURE, 'oci-archive:');
  });

  it('--image selection: flag before or after the source', () => {
    for (const args of [
      ['inspect', '--json', '--image', 'ferry-fixture/edge:1', FIXTURE],
      ['inspect', '--json', FIXTURE, '--image', 'ferry-fixture/edge:1'],
    ]) {
      const r = ferry(args);
      expect(r.status, args.join(' ')).toBe(0);
      expect((JSON.parse(r.stdout) as {images: unknown[]}).images).toHaveLength(1);
    }
  });
});

describe('FERRY_DEBUG', () => {
  it('=1 adds the stack trace after the one-line message', () => {
    const missing = path.join(tmp, 'no-such.tar');
    const r = ferry(['inspect', missing], {env: {FERRY_DEBUG: '1'}});
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toBe(`ferry: ${missing}: no such file or directory`);
    expect(r.stderr).toMatch(/^\s+at .*openInput/m);
  });
});

describe('temp files', () => {
  it('stdin and compressed input are spooled under FERRY_TMPDIR and removed, also on error', () => {
    const spool = path.join(tmp, 'spool');
    fs.mkdirSync(spool);
    const ok = ferry(['inspect', '--json', '-'], {input: fs.readFileSync(path.join(FIXTURES, 'edge.docker-save.tar.gz')), env: {FERRY_TMPDIR: spool}});
    expect(ok.status).toBe(0);
    expect(fs.readdirSync(spool)).toEqual([]);
    const gz = fs.readFileSync(path.join(FIXTURES, 'edge.docker-save.tar.gz'));
    const corrupt = Buffer.concat([gz.subarray(0, 2000), Buffer.alloc(100, 0x55), gz.subarray(2100)]);
    const bad = ferry(['inspect', '-'], {input: corrupt, env: {FERRY_TMPDIR: spool}});
    expectCleanError(bad, 1, 'stdin', 'gzip');
    expect(fs.readdirSync(spool)).toEqual([]);
  });
});
