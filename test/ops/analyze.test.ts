import {execFileSync} from 'node:child_process';
import {rmSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {analyzeArchive, type AnalyzeResult} from '../../src/ops/analyze/analyze.js';
import {squashToArchive} from '../../src/ops/squash.js';
import {openArchive} from '../../src/transports/table.js';
import {
  buildChmodFixture,
  buildDuplicateFixture,
  buildOpaqueDirFixture,
  buildRemovedDirFixture,
  CHMOD_BYTES,
  fixtureDir,
  type AnalyzeFixture,
} from '../helpers/analyze-fixtures.js';
import {peerMissing} from '../helpers/peers.js';

/**
 * `analyze` against images built with buildah whose answers are known by construction
 * (test/helpers/analyze-fixtures.ts derives them from the bytes written into the build context),
 * and its squash predictions against what `ferry squash` then writes, measured with the fixtures'
 * own tar reader (not ferry's).
 */

async function analyze(archive: string): Promise<AnalyzeResult> {
  const a = await openArchive(archive);
  try {
    return await analyzeArchive(a, {top: 0});
  } finally {
    await a.close();
  }
}

/** What the answer calls waste, as {path, bytes, layer, hiddenBy, cause}, sorted. */
function expectedCopies(f: AnalyzeFixture): string[] {
  return f.expected.wasted.map((w) => JSON.stringify([w.path, w.bytes, w.layer, w.hiddenBy, w.cause])).sort();
}

function reportedCopies(r: AnalyzeResult): string[] {
  return r.reclaimable.paths.flatMap((p) => p.copies.map((c) => JSON.stringify([p.path, c.bytes, c.layer, c.hiddenBy, c.cause]))).sort();
}

/** Checks every figure of the answer, and the totals against the bodies the archive really stores. */
function expectAnswer(f: AnalyzeFixture, r: AnalyzeResult): void {
  const stored = f.observed.layers.reduce((n, l) => n + l.bodyBytes, 0);
  expect(r.layers).toHaveLength(f.expected.layerCount);
  expect(r.totals.reclaimableBytes).toBe(f.expected.wastedBytes);
  expect(reportedCopies(r)).toEqual(expectedCopies(f));
  expect(r.totals.storedBytes).toBe(stored);
  expect(r.totals.finalBytes).toBe(stored - f.expected.wastedBytes);
  expect(r.totals.efficiency).toBeCloseTo((stored - f.expected.wastedBytes) / stored, 12);
  for (const [i, layer] of f.observed.layers.entries()) {
    expect(r.layers[i]!.storedBytes).toBe(layer.bodyBytes);
    expect(r.layers[i]!.diffId).toBe(layer.diffId);
    expect(r.layers[i]!.createdBy).toBe(layer.createdBy);
  }
  expect(r.totals.duplicateBytes).toBe(f.expected.duplicateBytes);
  expect(r.duplicates.groups.map((g) => ({sha256: g.sha256, bytesEach: g.bytesEach, paths: g.paths, reclaimableBytes: g.reclaimableBytes}))).toEqual(f.expected.duplicates);
  // The kept copies are never waste, and are what the final image shows.
  for (const k of f.expected.kept) {
    expect(reportedCopies(r).some((c) => c.startsWith(JSON.stringify([k.path, k.bytes, k.layer]).slice(0, -1)))).toBe(false);
    const p = r.reclaimable.paths.find((x) => x.path === k.path);
    if (p) expect(p.final).toEqual({layer: k.layer, bytes: k.bytes, mode: k.mode});
  }
}

/** Sizes of an archive's layer tars, from GNU tar's listing of the members manifest.json names. */
function layerTarSizes(archive: string): number[] {
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', archive, 'manifest.json'], {encoding: 'utf8'})) as Array<{Layers: string[]}>;
  return manifest[0]!.Layers.map((member) => Number(execFileSync('tar', ['-tvf', archive, member], {encoding: 'utf8'}).trim().split(/\s+/)[2]));
}

/**
 * Squashes from every N with `ferry squash`'s op and measures, with GNU tar, the layer bytes before
 * and after: the predicted saving must be the measured one (the issue allows the tar-header overhead;
 * the prediction replays planEmission, so it is exact).
 */
async function expectSquashPredictions(f: AnalyzeFixture, r: AnalyzeResult, dir: string): Promise<void> {
  const before = layerTarSizes(f.archive);
  for (const option of r.squash.options) {
    const out = path.join(dir, `${f.id}-squash-${option.fromLayer}.tar`);
    const a = await openArchive(f.archive);
    try {
      await squashToArchive(a, `docker-archive:${out}`, {fromLayer: option.fromLayer, compress: 'keep', force: true});
    } finally {
      await a.close();
    }
    const after = layerTarSizes(out);
    rmSync(out, {force: true});
    expect(after).toHaveLength(option.fromLayer + 1);
    expect(after.slice(0, option.fromLayer)).toEqual(before.slice(0, option.fromLayer));
    const measured = before.reduce((n, b) => n + b, 0) - after.reduce((n, b) => n + b, 0);
    const what = `${f.id} --from-layer ${option.fromLayer}: predicted ${option.savedBytes}, measured ${measured}`;
    expect(Math.abs(option.savedBytes - measured), what).toBeLessThanOrEqual(512);
    expect(option.savedBytes, what).toBe(measured);
    expect(option.beforeBytes).toBe(before.slice(option.fromLayer).reduce((n, b) => n + b, 0));
  }
}

describe.skipIf(peerMissing('buildah'))('ferry analyze: known answers of images built with buildah', () => {
  let dir: string;
  const fixtures: Record<string, AnalyzeFixture> = {};
  const results: Record<string, AnalyzeResult> = {};
  beforeAll(async () => {
    dir = fixtureDir();
    for (const build of [buildChmodFixture, buildRemovedDirFixture, buildOpaqueDirFixture, buildDuplicateFixture]) {
      const f = await build(dir);
      fixtures[f.id] = f;
      results[f.id] = await analyze(f.archive);
    }
  });
  afterAll(() => rmSync(dir, {recursive: true, force: true}));

  it('a 37 MB file chmod-ed in a later layer: 37,000,000 bytes reclaimable (the lower copy only, not 74 MB), an attribute-only rewrite told by content hashes', async () => {
    const f = fixtures['chmod-copy']!;
    const r = results['chmod-copy']!;
    expectAnswer(f, r);
    expect(r.totals.reclaimableBytes).toBe(CHMOD_BYTES);
    const copy = r.reclaimable.paths[0]!.copies[0]!;
    expect(copy.rewrite).toBe('attributes');
    expect(copy.changed).toContain('mode');
    expect(copy.sha256).toBe(f.expected.wasted[0]!.sha256);
    expect(r.reclaimable.byRewrite.attributes).toBe(CHMOD_BYTES);
    expect(r.layers[2]!.files).toMatchObject({changed: 1, removed: 0});
    expect(r.layers[2]!.hidesBytes).toBe(CHMOD_BYTES);
    // The two copies of the file were hashed (to tell the rewrite apart), nothing else.
    expect(r.hashing).toMatchObject({files: 2, bytes: 2 * CHMOD_BYTES, rewrites: 1});
    await expectSquashPredictions(f, r, dir);
  });

  it('a 50 MB directory removed with rm -rf (one .wh.blob): 50,000,000 bytes, one hiding entry, from headers only', async () => {
    const f = fixtures['removed-dir']!;
    const r = results['removed-dir']!;
    expectAnswer(f, r);
    expect(r.reclaimable.hidingEntries).toEqual([{layer: 2, path: '/blob', cause: 'removed', files: 5, bytes: 50_000_000}]);
    expect(r.layers[2]!.files.removed).toBe(5);
    expect(r.reclaimable.paths.every((p) => p.final === null)).toBe(true);
    expect(r.hashing.files).toBe(0);
    await expectSquashPredictions(f, r, dir);
  });

  it('an opaque directory replacing 10 MB: 10,000,000 bytes, the new file kept, from headers only', async () => {
    const f = fixtures['opaque-dir']!;
    const r = results['opaque-dir']!;
    expectAnswer(f, r);
    expect(r.reclaimable.byCause).toEqual({overwritten: 0, removed: 0, opaque: 10_000_000});
    expect(r.reclaimable.hidingEntries).toEqual([{layer: 2, path: '/opq', cause: 'opaque', files: 4, bytes: 10_000_000}]);
    expect(r.layers[2]!.files.removed).toBe(4);
    expect(r.layers[2]!.keptBytes).toBe(f.observed.layers[2]!.bodyBytes);
    expect(r.hashing.files).toBe(0);
    await expectSquashPredictions(f, r, dir);
  });

  it('a file written twice with the same content: the lower copy reclaimable, and the same content at two final paths reported apart', async () => {
    const f = fixtures.duplicate!;
    const r = results.duplicate!;
    expectAnswer(f, r);
    const copy = r.reclaimable.paths[0]!.copies[0]!;
    expect(copy.rewrite).toBe('attributes');
    expect(copy.sha256).toBe(f.expected.wasted[0]!.sha256);
    // Empty files (buildah's etc/hostname, hosts, resolv.conf in every RUN layer) are never duplicates.
    expect(r.duplicates.groups.every((g) => g.bytesEach > 0)).toBe(true);
    expect(r.duplicates.count).toBe(1);
    // Duplicates are not reclaimable bytes: the CI rule compares reclaimable bytes only.
    expect(r.totals.reclaimableBytes).toBe(f.expected.wastedBytes);
    await expectSquashPredictions(f, r, dir);
  });

  it('--no-hash: the same totals from headers alone; rewrites stay unclassified, duplicates unsought', async () => {
    const f = fixtures['chmod-copy']!;
    const a = await openArchive(f.archive);
    try {
      const r = await analyzeArchive(a, {hash: false});
      expect(r.totals.reclaimableBytes).toBe(f.expected.wastedBytes);
      expect(r.hashing).toEqual({enabled: false, files: 0, bytes: 0, rewrites: 0, duplicateCandidates: 0});
      expect(r.reclaimable.paths[0]!.copies[0]!.rewrite).toBe('same-size');
    } finally {
      await a.close();
    }
  });
});
