import {createHash} from 'node:crypto';
import {Readable} from 'node:stream';
import fc from 'fast-check';
import {describe, expect, it} from 'vitest';
import {FerryError} from '../../src/errors.js';
import {parseConfig} from '../../src/model/config.js';
import {sha256Of} from '../../src/model/digest.js';
import type {Image, Layer} from '../../src/model/image.js';
import {MediaType} from '../../src/model/media-types.js';
import {analyzeImage} from '../../src/ops/analyze/analyze.js';
import {squashImage} from '../../src/ops/squash.js';
import {encodeLayer, LayerModel, ModelError, T0, type CraftEntry, type CraftLayer} from '../helpers/tree-model.js';

/**
 * Property tests of `analyze` on random layer stacks (adds, same-size and other overwrites, chmods,
 * whiteouts of files and directories, opaque directories, hard links, symlinks, fifos):
 *
 * - reclaimable bytes equal what the in-test model of Docker's applier (test/helpers/tree-model.ts,
 *   written apart from src/ops/overlay) says: every file body stored minus the bodies of the files
 *   the final tree holds, each once however many names it has;
 * - duplicate bytes equal the model's (final files grouped by content, empty ones left out);
 * - the predicted size of `squash --from-layer N` equals, for every N, the size of the layer the
 *   real squash writes.
 * Layers are encoded with node-tar and streamed (the engine's compressed-layer path).
 */
const RUNS = Math.max(20, Math.floor(Number(process.env.FERRY_PROPERTY_RUNS ?? 300) / 2));

function memoryLayer(tar: Buffer, index: number): Layer {
  const digest = sha256Of(tar);
  return {
    descriptor: {mediaType: MediaType.ociLayer, digest, size: tar.length},
    diffId: digest,
    label: `layer[${index}]`,
    compression: async () => 'none',
    openCompressed: () => Readable.from([tar]),
    openUncompressed: () => Readable.from([tar]),
  };
}

function imageOf(layers: CraftLayer[]): Image {
  const tars = layers.map((l) => encodeLayer(l));
  const config = {architecture: 'amd64', os: 'linux', rootfs: {type: 'layers', diff_ids: tars.map((t) => sha256Of(t))}};
  return {
    manifest: null,
    config: parseConfig(Buffer.from(JSON.stringify(config)), MediaType.ociConfig, 'test'),
    layers: tars.map((t, i) => memoryLayer(t, i)),
    platform: {os: 'linux', architecture: 'amd64'},
  };
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/** The model's answer: bytes stored as file bodies, shown by the final tree, and duplicated in it. */
function modelAnswer(layers: CraftLayer[]): {stored: number; final: number; duplicate: number} | 'error' {
  const model = new LayerModel();
  let stored = 0;
  try {
    for (const [i, layer] of layers.entries()) {
      for (const e of layer) {
        const base = e.path.replace(/\/+$/, '').split('/').pop()!;
        const type = e.type ?? (e.path.endsWith('/') ? 'dir' : 'file');
        model.applyLayer(i, [e]);
        if (type === 'file' && !base.startsWith('.wh.')) stored += Buffer.byteLength(typeof e.content === 'string' ? e.content : '');
      }
    }
  } catch (e) {
    if (e instanceof ModelError) return 'error';
    throw e;
  }
  const finals = new Set([...model.nodes.values()].map((n) => n.inode).filter((i) => i.type === 'file'));
  const final = [...finals].reduce((n, i) => n + i.size, 0);
  const byContent = new Map<string, number[]>();
  for (const i of finals) if (i.size > 0) byContent.set(i.sha256!, [...(byContent.get(i.sha256!) ?? []), i.size]);
  const duplicate = [...byContent.values()].reduce((n, sizes) => n + sizes[0]! * (sizes.length - 1), 0);
  return {stored, final, duplicate};
}

const outcomes = {checked: 0, errors: 0, reclaimable: 0, duplicates: 0, squashes: 0};

async function check(layers: CraftLayer[]): Promise<void> {
  const expected = modelAnswer(layers);
  const image = imageOf(layers);
  let result;
  try {
    result = await analyzeImage(image, [], {top: 0, settings: {workers: 0}});
  } catch (e) {
    if (!(e instanceof FerryError)) throw e;
    expect(expected).toBe('error');
    outcomes.errors++;
    return;
  }
  expect(expected).not.toBe('error');
  if (expected === 'error') return;
  const t = result.totals;
  expect(t.storedBytes).toBe(expected.stored);
  expect(t.finalBytes).toBe(expected.final);
  expect(t.reclaimableBytes).toBe(expected.stored - expected.final);
  expect(t.duplicateBytes).toBe(expected.duplicate);
  expect(result.reclaimable.paths.reduce((n, p) => n + p.bytes, 0)).toBe(t.reclaimableBytes);
  for (const option of result.squash.options) {
    const squashed = await squashImage(image, option.fromLayer, {settings: {workers: 0}});
    try {
      expect({n: option.fromLayer, before: option.beforeBytes, after: option.afterBytes}).toEqual({n: option.fromLayer, before: squashed.beforeBytes, after: squashed.afterBytes});
    } finally {
      squashed.dispose();
    }
    outcomes.squashes++;
  }
  outcomes.checked++;
  if (t.reclaimableBytes > 0) outcomes.reclaimable++;
  if (t.duplicateBytes > 0) outcomes.duplicates++;
}

const NAMES = ['a', 'b', 'c'];
const pathArb = fc.array(fc.constantFrom(...NAMES), {minLength: 1, maxLength: 3}).map((p) => p.join('/'));
const leafArb = fc.oneof({weight: 3, arbitrary: fc.array(fc.constantFrom(...NAMES), {minLength: 3, maxLength: 3}).map((p) => p.join('/'))}, {weight: 1, arbitrary: pathArb});
const attrs = {mode: fc.constantFrom(0o644, 0o600), uid: fc.constantFrom(0, 1000), mtime: fc.constantFrom(T0, T0 + 7)};
const withBase = (p: string, base: string): string => (p.includes('/') ? `${p.slice(0, p.lastIndexOf('/'))}/${base}` : base);
/** 'yy' and 'zz': same size, other content (a rewrite hashes can tell apart); 'abc' as in the base (a chmod-like rewrite). */
const entryArb: fc.Arbitrary<CraftEntry> = fc.oneof(
  {weight: 5, arbitrary: fc.record({path: leafArb, content: fc.constantFrom('x', 'yy', 'zz', '', 'aaa', 'abc'), ...attrs}).map((r): CraftEntry => ({...r, type: 'file'}))},
  {weight: 2, arbitrary: fc.record({path: pathArb, mode: fc.constantFrom(0o755, 0o700)}).map((r): CraftEntry => ({...r, path: `${r.path}/`, type: 'dir'}))},
  {weight: 1, arbitrary: fc.record({path: pathArb, linkname: fc.oneof(pathArb, pathArb.map((p) => `/${p}`))}).map((r): CraftEntry => ({...r, type: 'symlink'}))},
  {weight: 2, arbitrary: fc.record({path: leafArb, linkname: leafArb, ...attrs}).map((r): CraftEntry => ({...r, type: 'hardlink'}))},
  {weight: 3, arbitrary: pathArb.map((p): CraftEntry => ({path: withBase(p, `.wh.${p.split('/').pop()}`)}))},
  {weight: 1, arbitrary: fc.oneof(pathArb.map((p) => `${p}/.wh..wh..opq`), fc.constant('.wh..wh..opq')).map((p): CraftEntry => ({path: p}))},
  {weight: 1, arbitrary: leafArb.map((p): CraftEntry => ({path: p, type: 'fifo'}))},
);
/** A full tree of 3-byte files under the random layers, so random entries mostly land on something. */
const BASE: CraftLayer = NAMES.flatMap((x) => [
  {path: `${x}/`},
  ...NAMES.flatMap((y) => [{path: `${x}/${y}/`}, ...NAMES.map((z): CraftEntry => ({path: `${x}/${y}/${z}`, content: `${x}${y}${z}`}))]),
]);
const stackArb = fc.array(fc.array(entryArb, {minLength: 1, maxLength: 6}), {minLength: 1, maxLength: 4}).map((layers) => [BASE, ...layers]);

describe('analyze == in-test model; squash predictions == real squashes (fast-check)', () => {
  it(`random stacks (${RUNS} runs)`, async () => {
    await fc.assert(fc.asyncProperty(stackArb, check), {numRuns: RUNS});
    // The generator must actually exercise waste, duplicates and several layers.
    expect(outcomes.checked).toBeGreaterThan(RUNS / 3);
    expect(outcomes.reclaimable).toBeGreaterThan(RUNS / 5);
    expect(outcomes.duplicates).toBeGreaterThan(RUNS / 20);
    console.info(`analyze model: ${outcomes.checked} stacks checked (${outcomes.reclaimable} with reclaimable bytes, ${outcomes.duplicates} with duplicates, ${outcomes.squashes} squashes), ${outcomes.errors} refused by both`);
  });

  it('hard links: one body with several names is stored and kept once; removing one name reclaims nothing', async () => {
    const layers: CraftLayer[] = [
      [{path: 'd/'}, {path: 'd/f', content: 'hello'}, {path: 'd/g', type: 'hardlink', linkname: 'd/f'}],
      [{path: 'd/.wh.f'}],
    ];
    const r = await analyzeImage(imageOf(layers), [], {settings: {workers: 0}});
    expect(r.totals).toMatchObject({storedBytes: 5, finalBytes: 5, reclaimableBytes: 0, duplicateBytes: 0});
    expect(r.layers[1]!.files.removed).toBe(1);
  });

  it('a rewrite with the same size but new content is not an attribute-only rewrite', async () => {
    const layers: CraftLayer[] = [[{path: 'f', content: 'yy'}, {path: 'g', content: 'aa', mode: 0o644}], [{path: 'f', content: 'zz'}, {path: 'g', content: 'aa', mode: 0o600}]];
    const r = await analyzeImage(imageOf(layers), [], {settings: {workers: 0}});
    const rewrite = Object.fromEntries(r.reclaimable.paths.map((p) => [p.path, [p.copies[0]!.rewrite, p.copies[0]!.changed, p.copies[0]!.sha256]]));
    expect(rewrite).toEqual({'/f': ['content', [], sha('yy')], '/g': ['attributes', ['mode'], sha('aa')]});
    expect(r.reclaimable.byRewrite).toMatchObject({attributes: 2, content: 2});
  });
});
