import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {Readable} from 'node:stream';
import fc from 'fast-check';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FerryError} from '../../../src/errors.js';
import {parseConfig} from '../../../src/model/config.js';
import {sha256Of} from '../../../src/model/digest.js';
import type {Image, Layer} from '../../../src/model/image.js';
import {MediaType} from '../../../src/model/media-types.js';
import {flattenImage} from '../../../src/ops/flatten.js';
import {peerMissing} from '../../helpers/peers.js';
import {canonFromTar, diffCanon, encodeLayer, LayerModel, ModelError, parseTar, T0, type Canon, type CanonEntry, type CraftEntry, type CraftLayer} from '../../helpers/tree-model.js';

/**
 * Property tests of the layer engine. Random stacks of layers (adds, overwrites, deletes, opaque
 * directories, type changes, hard links, symlinks) go through ferry's export; the result must equal
 * the in-test model (test/helpers/tree-model.ts) for every case, and what `umoci unpack` makes of
 * the same layers for a sampled few. Layers are built with node-tar and read back with node-tar, so
 * ferry's own tar code judges nothing here.
 */
const RUNS = Number(process.env.FERRY_PROPERTY_RUNS ?? 300);

/** A layer held in memory (streamed, never seekable: the engine's compressed-layer path). */
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

async function engineCanon(layers: CraftLayer[]): Promise<Canon | 'error'> {
  const image: Image = {
    manifest: null,
    config: parseConfig(Buffer.from('{"rootfs":{"type":"layers","diff_ids":[]}}'), MediaType.ociConfig, 'test'),
    layers: layers.map((l, i) => memoryLayer(encodeLayer(l), i)),
    platform: {os: 'linux', architecture: 'amd64'},
  };
  let flat;
  try {
    flat = await flattenImage(image);
  } catch (e) {
    if (e instanceof FerryError && (e.code === 'BAD_ARCHIVE' || e.code === 'UNSAFE_PATH')) return 'error';
    throw e;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of flat.stream()) chunks.push(chunk);
  return canonFromTar(await parseTar(Buffer.concat(chunks)));
}

function modelCanon(layers: CraftLayer[]): Canon | 'error' {
  try {
    return new LayerModel().applyLayers(layers).canon();
  } catch (e) {
    if (e instanceof ModelError) return 'error';
    throw e;
  }
}

const outcomes = {errors: 0, trees: 0, paths: 0};
let lastErrors = 0;

async function expectEngineMatchesModel(layers: CraftLayer[]): Promise<void> {
  const expected = modelCanon(layers);
  const actual = await engineCanon(layers);
  if (expected === 'error' || actual === 'error') {
    expect(actual).toBe(expected);
    outcomes.errors++;
    return;
  }
  expect(diffCanon(expected, actual, {mtime: true})).toEqual([]);
  outcomes.trees++;
  outcomes.paths += actual.size;
}

/** Guards against a generator that only ever produces trivial or failing cases. */
function expectVariety(runs: number, maxErrorShare: number): void {
  expect(outcomes.errors + outcomes.trees).toBeGreaterThanOrEqual(runs);
  expect(outcomes.errors).toBeLessThanOrEqual(runs * maxErrorShare);
  expect(outcomes.paths / Math.max(1, outcomes.trees)).toBeGreaterThan(2);
  lastErrors = outcomes.errors;
  Object.assign(outcomes, {errors: 0, trees: 0, paths: 0});
}

// ---- Raw stacks: any entry anywhere (adversarial: same-layer whiteouts, writes through symlinks, links to nothing…) ----

const NAMES = ['a', 'b', 'c'];
const pathArb = fc.array(fc.constantFrom(...NAMES), {minLength: 1, maxLength: 3}).map((p) => p.join('/'));
/** Mostly the deepest level (files in RAW_BASE), so that files rarely land on directories. */
const leafArb = fc.oneof({weight: 3, arbitrary: fc.array(fc.constantFrom(...NAMES), {minLength: 3, maxLength: 3}).map((p) => p.join('/'))}, {weight: 1, arbitrary: pathArb});
const attrs = {mode: fc.constantFrom(0o644, 0o600, 0o4755), uid: fc.constantFrom(0, 1000), mtime: fc.constantFrom(T0, T0 + 7)};
const withBase = (p: string, base: string): string => (p.includes('/') ? `${p.slice(0, p.lastIndexOf('/'))}/${base}` : base);
const rawEntry: fc.Arbitrary<CraftEntry> = fc.oneof(
  {weight: 4, arbitrary: fc.record({path: leafArb, content: fc.constantFrom('x', 'yy', ''), ...attrs}).map((r): CraftEntry => ({...r, type: 'file'}))},
  {weight: 3, arbitrary: fc.record({path: pathArb, mode: fc.constantFrom(0o755, 0o700), uid: fc.constantFrom(0, 1000)}).map((r): CraftEntry => ({...r, path: `${r.path}/`, type: 'dir'}))},
  {weight: 1, arbitrary: fc.record({path: pathArb, linkname: fc.oneof(pathArb, pathArb.map((p) => `/${p}`), pathArb.map((p) => `../${p}`), fc.constant('/'))}).map((r): CraftEntry => ({...r, type: 'symlink'}))},
  {weight: 2, arbitrary: fc.record({path: leafArb, linkname: fc.oneof({weight: 4, arbitrary: leafArb}, {weight: 1, arbitrary: pathArb}), ...attrs}).map((r): CraftEntry => ({...r, type: 'hardlink'}))},
  {weight: 2, arbitrary: pathArb.map((p): CraftEntry => ({path: withBase(p, `.wh.${p.split('/').pop()}`)}))},
  {weight: 1, arbitrary: fc.oneof(pathArb.map((p) => `${p}/.wh..wh..opq`), fc.constant('.wh..wh..opq')).map((p): CraftEntry => ({path: p}))},
  {weight: 1, arbitrary: leafArb.map((p): CraftEntry => ({path: p, type: 'fifo'}))},
);
/** A full tree under the random layers, so that random entries mostly land on something. */
const RAW_BASE: CraftLayer = NAMES.flatMap((x) => [
  {path: `${x}/`},
  ...NAMES.flatMap((y) => [{path: `${x}/${y}/`}, ...NAMES.map((z): CraftEntry => ({path: `${x}/${y}/${z}`, content: `${x}${y}${z}`}))]),
]);
const rawStack = fc.array(fc.array(rawEntry, {minLength: 1, maxLength: 5}), {minLength: 1, maxLength: 3}).map((layers) => [RAW_BASE, ...layers]);

// ---- Well-formed stacks: what docker/buildah/umoci write (parents listed, whiteouts of lower paths only, opaque after its directory) ----

interface Intent {
  op: 'file' | 'dir' | 'delete' | 'opaque' | 'link' | 'symlink';
  pick: number;
  name: string;
  content: string;
  mode: number;
  uid: number;
}

const intentArb: fc.Arbitrary<Intent> = fc.record({
  op: fc.constantFrom('file', 'file', 'dir', 'delete', 'opaque', 'link', 'symlink'),
  pick: fc.nat(),
  name: fc.constantFrom('a', 'b', 'c', 'd'),
  content: fc.constantFrom('x', 'yy', 'zzz', ''),
  mode: fc.constantFrom(0o644, 0o600, 0o755, 0o4755),
  uid: fc.constantFrom(0, 1000),
});

/** Interprets intents against the current file system (tracked with the model) into docker-style layers. */
function buildWellFormed(intentLayers: Intent[][]): CraftLayer[] {
  const model = new LayerModel();
  const layers: CraftLayer[] = [];
  for (const [index, intents] of intentLayers.entries()) {
    const layer: CraftLayer = [];
    const written = new Set<string>();
    const emit = (e: CraftEntry): void => {
      layer.push(e);
      written.add(e.path.replace(/\/$/, ''));
      model.applyLayer(index, [e]);
    };
    const paths = (): string[] => [...model.nodes.keys()].filter((p) => p !== '').sort();
    const dirs = (): string[] => ['', ...paths().filter((p) => model.nodes.get(p)!.inode.type === 'dir')];
    const emitParent = (dir: string): void => {
      if (dir === '' || written.has(dir)) return;
      const inode = model.nodes.get(dir)!.inode;
      emit({path: `${dir}/`, type: 'dir', mode: inode.mode, uid: inode.uid, gid: inode.gid, mtime: inode.mtime ?? T0});
    };
    const join = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);
    for (const intent of intents) {
      const at = <T>(list: T[]): T | undefined => (list.length === 0 ? undefined : list[intent.pick % list.length]);
      if (intent.op === 'file' || intent.op === 'dir' || intent.op === 'symlink' || intent.op === 'link') {
        const parent = at(dirs().filter((d) => d.split('/').length < 3))!;
        const target = join(parent, intent.name);
        // Never replace what this layer already wrote (or wrote below): docker's diffs cannot say that.
        if ([...written].some((w) => w === target || w.startsWith(`${target}/`))) continue;
        let entry: CraftEntry;
        if (intent.op === 'file') entry = {path: target, type: 'file', content: intent.content, mode: intent.mode, uid: intent.uid};
        else if (intent.op === 'dir') entry = {path: `${target}/`, type: 'dir', mode: intent.mode | 0o700, uid: intent.uid};
        else if (intent.op === 'symlink') entry = {path: target, type: 'symlink', linkname: at(paths()) ?? 'nowhere'};
        else {
          const file = at(paths().filter((p) => model.nodes.get(p)!.inode.type === 'file' && p !== target && !p.startsWith(`${target}/`)));
          if (!file) continue;
          // Real producers write a link's header from the file's own inode (docker, buildah, tar).
          const inode = model.nodes.get(file)!.inode;
          entry = {path: target, type: 'hardlink', linkname: file, mode: inode.mode, uid: inode.uid, gid: inode.gid, mtime: inode.mtime ?? T0};
        }
        emitParent(parent);
        emit(entry);
      } else if (intent.op === 'delete') {
        const victim = at(paths().filter((p) => ![...written].some((w) => w === p || w.startsWith(`${p}/`))));
        if (!victim) continue;
        const parent = victim.includes('/') ? victim.slice(0, victim.lastIndexOf('/')) : '';
        emitParent(parent);
        emit({path: join(parent, `.wh.${victim.split('/').pop()}`)});
      } else {
        const dir = at(dirs().filter((d) => d !== '' && ![...written].some((w) => w === d || w.startsWith(`${d}/`))));
        if (!dir) continue;
        emitParent(dir);
        emit({path: `${dir}/.wh..wh..opq`});
      }
    }
    if (layer.length === 0) emit({path: `filler${index}`, content: String(index)});
    layers.push(layer);
  }
  return layers;
}

const wellFormedStack = fc.array(fc.array(intentArb, {minLength: 1, maxLength: 8}), {minLength: 1, maxLength: 4}).map(buildWellFormed);

describe('layer engine == in-test model (fast-check)', () => {
  it(`well-formed stacks: adds, overwrites, deletes, opaque dirs, type changes, hard links (${RUNS} runs)`, async () => {
    await fc.assert(fc.asyncProperty(wellFormedStack, expectEngineMatchesModel), {numRuns: RUNS});
    expectVariety(RUNS, 0);
  });

  it(`raw stacks: any entry anywhere, errors included (${RUNS} runs)`, async () => {
    await fc.assert(fc.asyncProperty(rawStack, expectEngineMatchesModel), {numRuns: RUNS});
    expectVariety(RUNS, 0.55);
    console.info(`raw stacks: ${lastErrors} of ${RUNS} refused by both`);
  });
});

// ---- A real tool: umoci unpack of an OCI layout holding the same layers ----

function writeOciLayout(dir: string, layers: Buffer[]): void {
  mkdirSync(path.join(dir, 'blobs', 'sha256'), {recursive: true});
  const blob = (data: Buffer): {digest: string; size: number} => {
    const hex = createHash('sha256').update(data).digest('hex');
    writeFileSync(path.join(dir, 'blobs', 'sha256', hex), data);
    return {digest: `sha256:${hex}`, size: data.length};
  };
  const diffIds = layers.map((l) => `sha256:${createHash('sha256').update(l).digest('hex')}`);
  const config = blob(Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', rootfs: {type: 'layers', diff_ids: diffIds}})));
  const manifest = blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: {mediaType: 'application/vnd.oci.image.config.v1+json', ...config},
        layers: layers.map((l) => ({mediaType: 'application/vnd.oci.image.layer.v1.tar', ...blob(l)})),
      }),
    ),
  );
  writeFileSync(path.join(dir, 'index.json'), JSON.stringify({schemaVersion: 2, manifests: [{mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: {'org.opencontainers.image.ref.name': 'case'}}]}));
  writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
}

/** The unpacked rootfs, read from disk: hard links found by inode number. */
function canonFromDir(root: string): Canon {
  const canon: Canon = new Map();
  const byInode = new Map<number, string[]>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(root, rel)).sort()) {
      const p = rel === '' ? name : `${rel}/${name}`;
      const full = path.join(root, p);
      const st = lstatSync(full);
      const e: CanonEntry = {type: 'file', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0};
      if (st.isDirectory()) e.type = 'dir';
      else if (st.isSymbolicLink()) Object.assign(e, {type: 'symlink', linkname: readlinkSync(full)});
      else if (st.isFIFO()) e.type = 'fifo';
      else if (st.isFile()) {
        Object.assign(e, {size: st.size, sha256: createHash('sha256').update(readFileSync(full)).digest('hex')});
        byInode.set(st.ino, [...(byInode.get(st.ino) ?? []), p]);
      } else throw new Error(`${p}: unexpected file type`);
      canon.set(p, e);
      if (st.isDirectory()) walk(p);
    }
  };
  walk('');
  for (const group of byInode.values()) if (group.length > 1) for (const p of group) canon.get(p)!.links = group.filter((x) => x !== p).sort();
  return canon;
}

describe.skipIf(peerMissing('umoci'))('layer engine == umoci unpack (sampled)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-umoci-'));
  });
  afterAll(() => rmSync(dir, {recursive: true, force: true}));

  it('for a few random well-formed stacks (umoci is slow)', async () => {
    let n = 0;
    const samples = fc.sample(wellFormedStack, {numRuns: 5, seed: Number(process.env.FERRY_UMOCI_SEED ?? 4242)});
    for (const layers of samples) {
      const caseDir = path.join(dir, `case${++n}`);
      const layout = path.join(caseDir, 'layout');
      writeOciLayout(layout, layers.map(encodeLayer));
      execFileSync('umoci', ['unpack', '--image', `${layout}:case`, path.join(caseDir, 'bundle')], {stdio: 'pipe'});
      const umoci = canonFromDir(path.join(caseDir, 'bundle', 'rootfs'));
      const ours = await engineCanon(layers);
      expect(ours).not.toBe('error');
      expect(diffCanon(umoci, ours as Canon), JSON.stringify(layers)).toEqual([]);
      rmSync(caseDir, {recursive: true, force: true});
    }
    expect(n).toBe(5);
  });
});
