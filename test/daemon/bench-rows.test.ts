import {spawnSync} from 'node:child_process';
import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, describe, expect, it} from 'vitest';
import {ROOT} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';

// The daemon rows of the benchmark run alone (`node scripts/bench.js --only daemon`) at smoke scale:
// every row and its peers are produced. Timings are never asserted here.
describe.skipIf(peerMissing('dockerd'))('bench --only daemon (smoke scale)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-daemon-'));
  afterAll(() => rmSync(dir, {recursive: true, force: true}));

  it('measures ferry load, save and squash against docker load, save and save | load', () => {
    const out = path.join(dir, 'bench-daemon.md');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/bench.js'), '--only', 'daemon'], {
      env: {...process.env, BENCH_SCALE: 'small', BENCH_OUT: out, BENCH_TMPDIR: dir},
      encoding: 'utf8',
      timeout: 170_000,
    });
    expect(r.stderr).toContain('bench: wrote');
    expect(r.status, r.stderr).toBe(0);
    const doc = readFileSync(out, 'utf8');
    expect(doc).toMatch(/\| large \| ferry load vs docker load \(\w+\) \| [\d.]+ s \|.*\| docker load -i \| [\d.]+ s \|/);
    expect(doc).toMatch(/\| large \| ferry save vs docker save \(\w+\) \| [\d.]+ s \|.*\| docker save -o \| [\d.]+ s \|/);
    expect(doc).toMatch(/\| large \| squash docker-daemon: → docker-daemon: \(\w+\) \| [\d.]+ s \|.*\| ×[\d.]+ docker save \\\| docker load \|/);
    // Only the daemon rows: nothing else of the benchmark ran.
    expect(doc).not.toContain('| floor: cp |');
  }, 180_000);
});
