/**
 * Progress bars: `ferry convert` (and export, squash, verify) draws one on stderr when stderr is a terminal,
 * and nothing when it is not, or with --quiet or --json. The terminal is a real pseudo-terminal from util-linux's
 * `script`, with stdout redirected to a file inside it, so what script captures is stderr alone.
 * Build first (`npm run build`).
 */
import {spawnSync} from 'node:child_process';
import {readFileSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {requireBuiltCli} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';
import {makeRandomDockerArchive, makeTmp, removeTmp} from '../ops/convert-fixtures.js';

/** The child's environment: progressFor stays silent under CI, which the suite itself may run in. */
function childEnv(): NodeJS.ProcessEnv {
  const env = {...process.env};
  delete env.CI;
  return env;
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs `ferry ARGS > stdoutFile` with a pseudo-terminal as stderr; returns what the terminal got. */
function underTerminal(args: string[], stdoutFile: string): {status: number | null; terminal: string} {
  const command = `${quote(process.execPath)} ${quote(requireBuiltCli())} ${args.map(quote).join(' ')} > ${quote(stdoutFile)}`;
  const r = spawnSync('script', ['-qec', command, '/dev/null'], {env: childEnv(), encoding: 'utf8', timeout: 120_000});
  return {status: r.status, terminal: r.stdout};
}

// What the bar shows: the phase, bytes done/total, rate and ETA (commands/progress.ts).
const BAR = /(→ gzip|writing) .*\d+% \| [\d.]+\/[\d.]+ MiB \| [\d.]+ MiB\/s \| ETA/;

describe.skipIf(peerMissing('script', 'tar', 'sha256sum'))('progress on stderr', () => {
  let tmp: string;
  let source: string;
  beforeAll(() => {
    tmp = makeTmp('ferry-progress-');
    source = makeRandomDockerArchive(tmp, 'ferry-test/progress:1', [12 << 20, 6 << 20]);
  });
  afterAll(() => removeTmp(tmp));

  it('a terminal gets a bar per phase (recompressing, writing) and stdout only the result', () => {
    const stdout = path.join(tmp, 'tty.stdout');
    const r = underTerminal(['convert', source, `oci-archive:${path.join(tmp, 'tty.tar')}`, '--compress', 'gzip'], stdout);
    expect(r.status, r.terminal).toBe(0);
    expect(r.terminal).toMatch(BAR);
    expect(r.terminal).toContain('→ gzip');
    expect(r.terminal).toContain('writing');
    expect(readFileSync(stdout, 'utf8')).toMatch(/^wrote oci-archive:.*tty\.tar: 1 image\(s\), 4 blob\(s\), [\d.]+ MiB\n$/);
  });

  it('nothing is drawn when stderr is not a terminal', () => {
    const r = spawnSync(process.execPath, [requireBuiltCli(), 'convert', source, `oci-archive:${path.join(tmp, 'pipe.tar')}`, '--compress', 'gzip'], {env: childEnv(), encoding: 'utf8'});
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^wrote oci-archive:/);
  });

  it('export and squash draw their bars too, and nothing through a pipe', () => {
    for (const [command, dest, phase] of [
      ['export', path.join(tmp, 'rootfs.tar'), 'exporting'],
      ['squash', `docker-archive:${path.join(tmp, 'squashed.tar')}`, 'squashing'],
    ] as const) {
      const r = underTerminal([command, source, dest], path.join(tmp, `${command}.stdout`));
      expect(r.status, r.terminal).toBe(0);
      expect(r.terminal).toMatch(new RegExp(`${phase} .*\\d+% \\| [\\d.]+/[\\d.]+ MiB \\| [\\d.]+ MiB/s \\| ETA`));
      const piped = spawnSync(process.execPath, [requireBuiltCli(), command, source, `${dest}.2`, '--force'], {env: childEnv(), encoding: 'utf8'});
      expect(piped.status, piped.stderr).toBe(0);
      expect(piped.stderr).not.toContain('MiB/s');
    }
  });

  it('verify draws one while it hashes, and prints only its result on stdout', () => {
    const stdout = path.join(tmp, 'verify.stdout');
    const r = underTerminal(['verify', source], stdout);
    expect(r.status, r.terminal).toBe(0);
    expect(r.terminal).toMatch(/verifying .*\d+% \| [\d.]+\/[\d.]+ MiB \| [\d.]+ MiB\/s \| ETA/);
    expect(readFileSync(stdout, 'utf8')).toMatch(/^ok: 1 image\(s\), 2 layer\(s\), [\d.]+ MiB verified\n$/);
  });

  for (const flag of ['--quiet', '--json']) {
    it(`nothing is drawn on a terminal with ${flag}`, () => {
      const stdout = path.join(tmp, `flag${flag}.stdout`);
      const r = underTerminal(['convert', source, `oci-archive:${path.join(tmp, `flag${flag}.tar`)}`, '--compress', 'gzip', flag], stdout);
      expect(r.status, r.terminal).toBe(0);
      expect(r.terminal).not.toMatch(BAR);
      expect(r.terminal).not.toContain('MiB/s');
      expect(readFileSync(stdout, 'utf8').length).toBeGreaterThan(0);
    });
  }
});
