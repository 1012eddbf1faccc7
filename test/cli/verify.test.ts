import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FIXTURES, ferry} from '../helpers/cli.js';
import {blobFile, copyFixture, craftLayer, firstManifest, flipByte, flipByteInMember, makeOciLayout, sha256} from '../helpers/corrupt.js';
import {peerMissing} from '../helpers/peers.js';

/** `ferry verify` as a user runs it: the ok line, --json, and exit 1 with one stderr line per problem. */

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-cli-verify-'));
});
afterAll(() => {
  fs.rmSync(tmp, {recursive: true, force: true});
});

function expectFailure(r: ReturnType<typeof ferry>, lines: number): string[] {
  expect(r.status).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr).not.toMatch(/^\s+at /m);
  const out = r.stderr.trimEnd().split('\n');
  expect(out).toHaveLength(lines);
  for (const l of out) expect(l).toMatch(/^ferry: \S/);
  return out;
}

describe('verify', () => {
  it('ok: exit 0, one summary line on stdout, stderr empty', () => {
    const r = ferry(['verify', path.join(FIXTURES, 'edge-multi.docker-save.tar')]);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^ok: 2 image\(s\), 5 layer\(s\), .* verified\n$/);
  });

  it('--json: the result object', () => {
    const r = ferry(['verify', '--json', path.join(FIXTURES, 'edge.podman.oci')]);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const result = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(result).toMatchObject({format: 'oci', ok: true, images: 1, layers: 4, problems: []});
    const sizes = firstManifest(path.join(FIXTURES, 'edge.podman.oci')).manifest.layers.reduce((n, l) => n + l.size, 0);
    expect(result.bytes).toBe(sizes);
  });

  it('usage errors exit 2', () => {
    for (const args of [['verify'], ['verify', '--bogus', path.join(FIXTURES, 'edge.podman.oci')]]) {
      const r = ferry(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^ferry: /);
    }
  });

  it('a missing file exits 1', () => {
    const missing = path.join(tmp, 'nothing-here.tar');
    expect(expectFailure(ferry(['verify', missing]), 1)[0]).toBe(`ferry: ${missing}: no such file or directory`);
  });
});

describe.skipIf(peerMissing('python3', 'tar'))('corruption through the CLI', () => {
  it('a flipped layer byte: exit 1, one line naming the member and both digests', () => {
    const dir = path.join(tmp, 'layer');
    fs.mkdirSync(dir);
    const file = copyFixture('edge.docker-save.tar', dir);
    const layer = 'e49bb875a99e606a09cfeeb16cb53a3ad522c55f8138b1a6dbf4097ec2cd7e2d/layer.tar';
    flipByteInMember(file, layer, 100_000);
    const [line] = expectFailure(ferry(['verify', file]), 1);
    expect(line).toContain(`${file}:${layer}`);
    expect(line).toMatch(/digest mismatch: expected sha256:[a-f0-9]{64}, got sha256:[a-f0-9]{64}$/);
  });

  it('a flipped config byte in an OCI layout: exit 1, one line naming the config blob; with --json also a JSON report on stdout (issue 10)', () => {
    const dir = copyFixture('edge.podman.oci', path.join(tmp));
    const cfg = firstManifest(dir).manifest.config;
    flipByte(blobFile(dir, cfg.digest), 10);
    const [line] = expectFailure(ferry(['verify', dir]), 1);
    expect(line).toContain(cfg.digest);
    const json = ferry(['verify', '--json', dir]);
    expect(json.status).toBe(1);
    expect(json.stderr.trimEnd().split('\n')).toEqual([line]);
    const report = JSON.parse(json.stdout) as {ok: boolean; problems: string[]};
    expect(report.ok).toBe(false);
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]).toContain(cfg.digest);
  });

  it('several problems: one line each; --json puts them in the result instead', () => {
    const layout = path.join(tmp, 'evil');
    const layer = craftLayer([{name: '../up', data: 'x'}, {name: '/abs', data: 'y'}]);
    makeOciLayout(layout, [layer]);
    const lines = expectFailure(ferry(['verify', layout]), 2);
    expect(lines.join('\n')).toContain('"../up"');
    expect(lines.join('\n')).toContain('"/abs"');
    for (const l of lines) expect(l).toContain(sha256(layer));
    const json = ferry(['verify', '--json', layout]);
    expect(json.status).toBe(1);
    expect(json.stderr).toBe('');
    const result = JSON.parse(json.stdout) as {ok: boolean; problems: string[]};
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual(lines.map((l) => l.replace(/^ferry: /, '')));
  });
});
