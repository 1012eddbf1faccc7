/**
 * Fuzzing every reader with mutated copies of the fixtures (fast-check): bit flips, truncations,
 * inserted and overwritten bytes, biased toward tar headers and JSON members where they do the most
 * damage. Each case is opened, inspected, verified, listed and flattened by the layer engine, and
 * (a tenth of them) converted, in-process. The only outcomes allowed: success, or a FerryError — no
 * other exception, no hang (each case is bounded in time), no unhandled rejection, and no temp file
 * left behind.
 *
 * CI runs 2,400 cases by default (FERRY_FUZZ_RUNS, spread over 8 properties); `npm run fuzz` raises it.
 */
import {mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FerryError} from '../../src/errors.js';
import {flattenImage} from '../../src/ops/flatten.js';
import {convertArchive} from '../../src/ops/convert.js';
import {inspectArchive} from '../../src/ops/inspect.js';
import {listImage} from '../../src/ops/ls.js';
import {verifyArchive} from '../../src/ops/verify.js';
import {listImages} from '../../src/model/image.js';
import {openArchive} from '../../src/transports/table.js';
import {FIXTURES} from '../helpers/cli.js';
import {buildLayout, buildLegacy, loadDockerSave, memberOffsets, packTar, readTarMembers, replaceLayer, withDiffIds, type ImageParts, type Member} from '../hostile/kit.js';

const TOTAL_RUNS = Number(process.env.FERRY_FUZZ_RUNS ?? 2400);
const CASE_TIMEOUT_MS = 20_000;

interface Base {
  name: string;
  /** The file a case is written to (its extension does not matter: ferry sniffs). */
  fileName: string;
  bytes: Buffer;
  /** Offsets worth hitting: tar headers and JSON members. */
  hotspots: number[];
  /** The archive's members, to damage one while the tar around it stays valid. */
  members?: Member[];
  /** The image inside, to damage a layer or the config and rebuild with every digest recomputed. */
  parts?: ImageParts;
  build?: (parts: ImageParts) => Buffer;
}

/** The edge image with zeros.bin cut to 1 KiB, so a case is tens of kilobytes, not hundreds. */
async function shrunkEdge(): Promise<ImageParts> {
  const [edge] = await loadDockerSave(path.join(FIXTURES, 'edge.docker-save.tar'));
  const first = await readTarMembers(edge!.layers[0]!);
  const small = first.map((m) => (m.name.endsWith('zeros.bin') ? {...m, data: Buffer.alloc(1024)} : m));
  return replaceLayer(edge!, 0, packTar(small));
}

async function hotspotsOf(bytes: Buffer): Promise<number[]> {
  try {
    const offsets = await memberOffsets(bytes);
    const out: number[] = [];
    for (const [name, o] of offsets) {
      out.push(o.header);
      if (/\.json$|index\.json|oci-layout|manifest|repositories/.test(name) || o.size < 4096) out.push(o.data);
    }
    return out;
  } catch {
    return [0]; // compressed: everything is a hotspot
  }
}

let root: string;
let tmp: string;
const bases: Base[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
const previousTmp = process.env.FERRY_TMPDIR;

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'ferry-fuzz-'));
  tmp = path.join(root, 'ferry-tmp');
  mkdirSync(tmp);
  process.env.FERRY_TMPDIR = tmp;
  process.on('unhandledRejection', onUnhandled);
  const edge = await shrunkEdge();
  const add = async (name: string, fileName: string, bytes: Buffer, more: Partial<Base> = {}): Promise<void> => {
    bases.push({name, fileName, bytes, hotspots: await hotspotsOf(bytes), ...more});
  };
  const skopeo = readFileSync(path.join(FIXTURES, 'edge.skopeo.oci-archive.tar'));
  await add('oci-archive written by skopeo', 'case.tar', skopeo, {members: await readTarMembers(skopeo)});
  const legacy = (p: ImageParts): Buffer => packTar(buildLegacy([p]));
  await add('legacy docker save', 'case.tar', legacy(edge), {members: await readTarMembers(legacy(edge)), parts: edge, build: legacy});
  const docker25 = (p: ImageParts): Buffer => packTar(buildLayout([p], {docker: true}));
  await add('Docker 25 save (OCI layout + manifest.json)', 'case.tar', docker25(edge), {members: await readTarMembers(docker25(edge)), parts: edge, build: docker25});
  const gzipLayers = (p: ImageParts): Buffer => packTar(buildLayout([p], {compress: 'gzip'}));
  await add('oci-archive with gzip layers', 'case.tar', gzipLayers(edge), {parts: edge, build: gzipLayers});
  await add('gzip docker save (gzip 1.12)', 'case.tar.gz', readFileSync(path.join(FIXTURES, 'edge.docker-save.tar.gz')));
  await add('zstd docker save (zstd 1.5.4)', 'case.tar.zst', readFileSync(path.join(FIXTURES, 'edge.docker-save.tar.zst')));
  const exported = await readTarMembers(readFileSync(path.join(FIXTURES, 'edge.docker-export.tar')));
  const rootfs = packTar(exported.map((m) => (m.name.endsWith('zeros.bin') ? {...m, data: Buffer.alloc(1024)} : m)));
  await add('rootfs (docker export)', 'case.tar', rootfs, {members: await readTarMembers(rootfs)});
}, 120_000);

afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  if (previousTmp === undefined) delete process.env.FERRY_TMPDIR;
  else process.env.FERRY_TMPDIR = previousTmp;
  rmSync(root, {recursive: true, force: true});
});

type Mutation =
  | {kind: 'flip'; at: number; bit: number} | {kind: 'truncate'; at: number} | {kind: 'insert'; at: number; bytes: Uint8Array} | {kind: 'overwrite'; at: number; bytes: Uint8Array};

/** An offset: anywhere, or within a block of a hotspot (headers and JSON are where parsers live). */
const offset = (base: Base): fc.Arbitrary<number> =>
  fc.oneof(
    fc.nat({max: base.bytes.length - 1}),
    fc.tuple(fc.constantFrom(...base.hotspots), fc.nat({max: 511})).map(([h, d]) => Math.min(base.bytes.length - 1, h + d)),
  );

/** An offset into a buffer not known yet (taken modulo its length), often in a header's fields. */
const anyOffset: fc.Arbitrary<number> = fc.oneof(fc.nat({max: 1 << 20}), fc.tuple(fc.nat({max: 2048}), fc.nat({max: 156})).map(([block, field]) => block * 512 + field));

const mutationAt = (at: fc.Arbitrary<number>): fc.Arbitrary<Mutation> =>
  fc.oneof(
    {weight: 4, arbitrary: fc.record({kind: fc.constant('flip' as const), at, bit: fc.nat({max: 7})})},
    {weight: 1, arbitrary: fc.record({kind: fc.constant('truncate' as const), at})},
    {weight: 1, arbitrary: fc.record({kind: fc.constant('insert' as const), at, bytes: fc.uint8Array({minLength: 1, maxLength: 600})})},
    {weight: 2, arbitrary: fc.record({kind: fc.constant('overwrite' as const), at, bytes: fc.uint8Array({minLength: 1, maxLength: 24})})},
  );

const mutations = (at: fc.Arbitrary<number>): fc.Arbitrary<Mutation[]> => fc.array(mutationAt(at), {minLength: 1, maxLength: 3});

function apply(bytes: Buffer, list: readonly Mutation[]): Buffer {
  let out = Buffer.from(bytes);
  for (const m of list) {
    const at = out.length === 0 ? 0 : m.at % out.length;
    if (m.kind === 'flip') {
      if (out.length > 0) out[at] = out[at]! ^ (1 << m.bit);
    } else if (m.kind === 'truncate') out = out.subarray(0, at);
    else if (m.kind === 'insert') out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
    else {
      out = Buffer.from(out);
      Buffer.from(m.bytes).copy(out, at);
    }
  }
  return out;
}

interface Damage {
  input: Buffer;
  /** What was damaged, for the failure report. */
  what: string;
}

/**
 * A damaged copy of a base: its raw bytes; or one member's data, the tar around it kept valid; or a
 * layer's tar (or the config) with every digest recomputed, so the damage reaches the layer engine.
 */
function damage(base: Base): fc.Arbitrary<Damage> {
  const describe = (list: readonly Mutation[]): string => JSON.stringify(list.map((m) => ({...m, bytes: 'bytes' in m ? m.bytes.length : undefined})));
  const options: Array<fc.Arbitrary<Damage>> = [mutations(offset(base)).map((list) => ({input: apply(base.bytes, list), what: `raw ${describe(list)}`}))];
  const members = base.members?.filter((m) => m.type === 'file');
  if (members && members.length > 0) {
    options.push(
      fc.tuple(fc.nat({max: members.length - 1}), mutations(anyOffset)).map(([i, list]) => ({
        input: packTar(base.members!.map((m) => (m === members[i] ? {...m, data: apply(m.data ?? Buffer.alloc(0), list)} : m))),
        what: `member ${members[i]!.name} ${describe(list)}`,
      })),
    );
  }
  const {parts, build} = base;
  if (parts && build) {
    options.push(
      fc.tuple(fc.nat({max: parts.layers.length}), mutations(anyOffset)).map(([i, list]) => {
        if (i === parts.layers.length) return {input: build({...parts, rawConfig: apply(Buffer.from(JSON.stringify(parts.config)), list)}), what: `config ${describe(list)}`};
        const layers = [...parts.layers];
        layers[i] = apply(layers[i]!, list);
        return {input: build(withDiffIds({...parts, layers})), what: `layer ${i} (digests recomputed) ${describe(list)}`};
      }),
    );
  }
  return fc.oneof(...options);
}

/** Runs `work`; a FerryError is an allowed outcome, anything else is rethrown. */
async function allowed(what: string, work: () => Promise<unknown>): Promise<boolean> {
  try {
    await work();
    return true;
  } catch (e) {
    if (e instanceof FerryError) return false;
    throw new Error(`${what} threw ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`);
  }
}

function withTimeout<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${CASE_TIMEOUT_MS} ms (hang)`)), CASE_TIMEOUT_MS);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

let caseNo = 0;
/** How far cases got, per base: a fuzzer whose inputs all die at the first parser tests little. */
const reached = new Map<string, {cases: number; opened: number; verified: number; flattened: number; converted: number}>();
const stage = (base: string, key: 'cases' | 'opened' | 'verified' | 'flattened' | 'converted'): void => {
  const s = reached.get(base) ?? {cases: 0, opened: 0, verified: 0, flattened: 0, converted: 0};
  s[key]++;
  reached.set(base, s);
};

/** Every reader on one mutated input. */
async function exercise(base: Base, input: Buffer, convert: boolean): Promise<void> {
  const dir = path.join(root, `case-${caseNo++}`);
  mkdirSync(dir);
  const file = path.join(dir, base.fileName);
  writeFileSync(file, input);
  stage(base.name, 'cases');
  try {
    await allowed('openArchive', async () => {
      const archive = await openArchive(file);
      stage(base.name, 'opened');
      try {
        await allowed('inspect', async () => await inspectArchive(archive));
        await allowed('verify', async () => {
          if ((await verifyArchive(archive, {settings: {workers: 2}})).ok) stage(base.name, 'verified');
        });
        const first = listImages(archive)[0];
        if (first) {
          await allowed('ls', async () => listImage(archive, undefined, first.names[0] ? {images: [first.names[0]]} : {}));
          await allowed('flatten', async () => {
            const flat = await flattenImage(first.image);
            for await (const chunk of flat.stream()) void chunk;
            stage(base.name, 'flattened');
          });
        }
      } finally {
        await archive.close();
      }
    });
    if (convert) {
      await allowed('convert', async () => {
        await convertArchive(file, `oci-archive:${path.join(dir, 'out.tar')}`);
        stage(base.name, 'converted');
      });
    }
  } finally {
    rmSync(dir, {recursive: true, force: true});
  }
  expect(readdirSync(tmp), 'temp files left in FERRY_TMPDIR').toEqual([]);
  expect(unhandled, 'unhandled rejections').toEqual([]);
}

describe('fuzzing the readers with mutated fixtures', () => {
  it('has its bases', () => {
    expect(bases.length).toBe(7);
  });

  const perBase = Math.ceil(TOTAL_RUNS / 8);
  for (const index of [0, 1, 2, 3, 4, 5, 6]) {
    it(`base ${index}: only success or FerryError, no hang, nothing left (${perBase} cases)`, async () => {
      const base = bases[index]!;
      await fc.assert(
        fc.asyncProperty(damage(base), fc.nat({max: 9}), async ({input, what}, dice) => {
          await withTimeout(exercise(base, input, dice === 0), `${base.name}: ${what}`);
        }),
        {numRuns: perBase},
      );
    }, Math.max(120_000, perBase * 2_000));
  }

  it('reaches past the first parser: many mutated inputs still open, some still verify', () => {
    if (process.env.FERRY_FUZZ_STATS === '1') console.log(reached);
    for (const [name, s] of reached) {
      if (/gzip docker save|zstd docker save/.test(name)) continue; // compressed whole: any change is a corrupt stream
      expect(s.opened, `${name}: ${JSON.stringify(s)}`).toBeGreaterThan(s.cases * 0.1);
      expect(s.verified + s.flattened, `${name}: ${JSON.stringify(s)}`).toBeGreaterThan(0);
    }
  });

  it(`an OCI layout directory with one file mutated (${Math.ceil(TOTAL_RUNS / 8)} cases)`, async () => {
    const members = (await readTarMembers(bases[0]!.bytes)).filter((m) => m.type === 'file');
    await fc.assert(
      fc.asyncProperty(fc.nat({max: members.length - 1}), fc.array(fc.record({kind: fc.constant('flip' as const), at: fc.nat({max: 4096}), bit: fc.nat({max: 7})}), {minLength: 1, maxLength: 3}), fc.boolean(), async (which, flips, truncate) => {
        const dir = path.join(root, `layout-${caseNo++}`);
        for (const [i, m] of members.entries()) {
          const target = path.join(dir, m.name);
          mkdirSync(path.dirname(target), {recursive: true});
          let data = m.data ?? Buffer.alloc(0);
          if (i === which) data = truncate ? data.subarray(0, flips[0]!.at % Math.max(1, data.length)) : apply(data, flips.map((f) => ({...f, at: f.at % Math.max(1, data.length)})));
          writeFileSync(target, data);
        }
        try {
          await withTimeout(
            allowed('layout', async () => {
              const archive = await openArchive(`oci:${dir}`);
              try {
                await inspectArchive(archive);
                await allowed('verify', async () => verifyArchive(archive, {settings: {workers: 2}}));
                const first = listImages(archive)[0];
                if (first) await allowed('flatten', async () => {
                  const flat = await flattenImage(first.image);
                  for await (const chunk of flat.stream()) void chunk;
                });
              } finally {
                await archive.close();
              }
            }),
            `layout ${members[which]!.name}`,
          );
        } finally {
          rmSync(dir, {recursive: true, force: true});
        }
        expect(unhandled).toEqual([]);
      }),
      {numRuns: Math.ceil(TOTAL_RUNS / 8)},
    );
  }, Math.max(120_000, Math.ceil(TOTAL_RUNS / 8) * 2_000));
});
