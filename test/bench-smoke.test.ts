import {spawnSync} from 'node:child_process';
import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, describe, expect, it} from 'vitest';
import {ROOT} from './helpers/cli.js';
import {hasTool, IN_CI} from './helpers/peers.js';

// The benchmark script keeps working: a reduced run (small images, one run each) end to end.
// Timings are never asserted here; only that every row and target was produced.
describe('npm run bench (smoke scale)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-smoke-'));
  afterAll(() => rmSync(dir, {recursive: true, force: true}));

  it('runs end to end and writes the results table', () => {
    const out = path.join(dir, 'bench.md');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/bench.js')], {
      env: {...process.env, BENCH_SCALE: 'small', BENCH_OUT: out, BENCH_TMPDIR: dir},
      encoding: 'utf8',
      timeout: 600_000,
    });
    expect(r.stderr).toContain('bench: wrote');
    expect(r.status).toBe(0);
    const doc = readFileSync(out, 'utf8');
    for (const task of ['floor: cp', 'docker-archive → oci (keep)', 'docker-archive → oci-archive (gzip)', 'export (flatten)', 'squash (all layers)', 'inspect', 'verify', 'peak RSS: convert gzip', 'bundle create: 10 images, 2 shared bases (vs skopeo sync --dest dir)', 'peak RSS: bundle apply to a registry']) {
      expect(doc).toContain(`| ${task} |`);
    }
    expect(doc).toMatch(/\| peak RSS under 200 MB for every command .* \| (yes|\*\*no\*\*) \|/);
    // The registry rows need docker-registry (in CI it must be there).
    if (IN_CI || hasTool('docker-registry')) {
      for (const task of ['push to registry 2.8.2', 'pull from registry 2.8.2 → docker-archive', 'second push of the 20 images (nothing to upload)', 'peak RSS: push to registry 2.8.2', 'peak RSS: pull from registry 2.8.2']) {
        expect(doc).toContain(`| ${task} |`);
      }
      expect(doc).toMatch(/\| resume: pull killed at \d+% of the blob, run again \|/);
      expect(doc).toMatch(/\| resume: the rerun of a pull killed at 50% .* \| (yes|\*\*no\*\*) \|/);
      expect(doc).toMatch(/\| a second push of 20 images sharing bases: 0 blob uploads, under 2 s \| (yes|\*\*no\*\*) \|/);
    }
  }, 900_000);
});
