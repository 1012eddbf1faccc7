import {readFileSync, rmSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {
  CHMOD_BYTES,
  DUPLICATE_BYTES,
  MB,
  buildChmodFixture,
  buildDiffPairFixture,
  buildDuplicateFixture,
  buildOpaqueDirFixture,
  buildRemovedDirFixture,
  busyboxBytes,
  finalTree,
  fixtureDir,
  readTar,
  type AnalyzeFixture,
  type ChangedFile,
  type ChangedValue,
  type DuplicateGroup,
  type ObservedImage,
} from './analyze-fixtures.js';
import {startDockerd, type Dockerd} from './daemons.js';
import {peerMissing} from './peers.js';

// The answers in analyze-fixtures.ts are derived from the bytes written into the build context. These
// tests check that the images the real tools produced really have those answers: every number is
// recomputed from the archive with the plain layer rules (finalTree), and the final filesystem is
// compared with what docker itself unpacks (load + create + export).

/** Bodies stored in a layer but not visible in the final filesystem. */
function hiddenBodies(image: ObservedImage): {path: string; layer: number; bytes: number}[] {
  const tree = finalTree(image);
  const out: {path: string; layer: number; bytes: number}[] = [];
  for (const layer of image.layers) {
    for (const m of layer.members) {
      if (m.type !== 'file' || path.posix.basename(m.path).startsWith('.wh.')) continue;
      if (tree.get(m.path)?.layer !== layer.index) out.push({path: `/${m.path}`, layer: layer.index, bytes: m.size});
    }
  }
  return out;
}

/** Non-empty content present at two or more final paths. */
function duplicateGroups(image: ObservedImage): DuplicateGroup[] {
  const bySha = new Map<string, {bytes: number; paths: string[]}>();
  for (const [p, m] of finalTree(image)) {
    if (m.type !== 'file' || m.size === 0) continue;
    const g = bySha.get(m.sha256) ?? {bytes: m.size, paths: []};
    g.paths.push(`/${p}`);
    bySha.set(m.sha256, g);
  }
  return [...bySha]
    .filter(([, g]) => g.paths.length > 1)
    .map(([sha256, g]) => ({sha256, bytesEach: g.bytes, paths: g.paths.sort(), reclaimableBytes: g.bytes * (g.paths.length - 1)}));
}

// Entries docker's container init adds (or whose content it owns); not part of the image's answer.
const DOCKER_INIT = new Set(['.dockerenv', 'dev/console', 'etc/mtab', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf']);

function comparable(entries: Iterable<{path: string; type: string; size: number; sha256: string; mode: number; linkname: string}>): string[] {
  const out: string[] = [];
  for (const e of entries) {
    if ((e.type !== 'file' && e.type !== 'symlink') || DOCKER_INIT.has(e.path)) continue;
    out.push(`${e.path} ${e.type} ${e.mode.toString(8)} ${e.size} ${e.sha256}${e.type === 'symlink' ? ` -> ${e.linkname}` : ''}`);
  }
  return out.sort();
}

function checkWaste(f: AnalyzeFixture): void {
  const obs = f.observed;
  expect(obs.layers).toHaveLength(f.expected.layerCount);
  expect(obs.config.rootfs?.diff_ids).toEqual(obs.layers.map((l) => l.diffId));
  // Base layer: busybox is its only body.
  expect(obs.layers[0]!.bodyBytes).toBe(busyboxBytes());

  const hidden = hiddenBodies(obs);
  expect(hidden.map((h) => ({path: h.path, layer: h.layer, bytes: h.bytes}))).toEqual(f.expected.wasted.map((w) => ({path: w.path, layer: w.layer, bytes: w.bytes})));
  expect(hidden.reduce((a, h) => a + h.bytes, 0)).toBe(f.expected.wastedBytes);
  for (const w of f.expected.wasted) {
    const m = obs.layers[w.layer]!.members.find((x) => `/${x.path}` === w.path);
    expect(m?.sha256).toBe(w.sha256);
  }
  expect(duplicateGroups(obs)).toEqual(f.expected.duplicates);
  const tree = finalTree(obs);
  for (const k of f.expected.kept) {
    const m = tree.get(k.path.slice(1));
    expect({layer: m?.layer, bytes: m?.size, mode: m?.mode, sha256: m?.sha256}).toEqual({layer: k.layer, bytes: k.bytes, mode: k.mode, sha256: k.sha256});
  }
}

function changedFiles(a: ObservedImage, b: ObservedImage): ChangedFile[] {
  const ta = finalTree(a);
  const tb = finalTree(b);
  const key = (m: {type: string; mode: number; size: number; sha256: string; linkname: string}): string => `${m.type} ${m.mode} ${m.size} ${m.sha256} ${m.linkname}`;
  const out: ChangedFile[] = [];
  for (const p of [...new Set([...ta.keys(), ...tb.keys()])].sort()) {
    const x = ta.get(p);
    const y = tb.get(p);
    if (x && y && key(x) === key(y)) continue;
    const side = (m: typeof x): {bytes: number; sha256: string} | undefined => (m ? {bytes: m.size, sha256: m.sha256} : undefined);
    const change: ChangedFile['change'] = !x ? 'added' : !y ? 'removed' : 'modified';
    out.push({path: `/${p}`, change, ...(x ? {before: side(x)!} : {}), ...(y ? {after: side(y)!} : {})});
  }
  return out;
}

function changedValues(a: Record<string, string>, b: Record<string, string>): ChangedValue[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .sort()
    .filter((k) => a[k] !== b[k])
    .map((name) => ({name, before: a[name], after: b[name]}));
}

const envMap = (env: string[] | undefined): Record<string, string> => Object.fromEntries((env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));

describe.skipIf(peerMissing('buildah', 'dockerd'))('analyze fixtures (buildah-built, checked against docker)', () => {
  let dir: string;
  let dockerd: Dockerd;
  beforeAll(async () => {
    dir = fixtureDir();
    dockerd = await startDockerd();
  });
  afterAll(async () => {
    await dockerd?.stop();
    if (dir) rmSync(dir, {recursive: true, force: true});
  });

  /** docker's view of the final filesystem: load, create (no start), export. */
  function dockerFinalFiles(f: {archive: string; name: string}): string[] {
    dockerd.docker(['load', '-i', f.archive]);
    const id = dockerd.docker(['create', f.name]).trim();
    const exported = path.join(dir, `${id}.export.tar`);
    dockerd.docker(['export', '-o', exported, id]);
    dockerd.docker(['rm', id]);
    const members = readTar(readFileSync(exported)).members;
    rmSync(exported);
    return comparable(members);
  }

  it('(a) chmod after add: the 37 MB body is stored twice and only the lower copy is waste', async () => {
    const f = await buildChmodFixture(dir);
    checkWaste(f);
    expect(f.expected.wastedBytes).toBe(37 * MB);
    // buildah's chmod-only RUN layer: the full body again, with the new mode.
    const top = f.observed.layers[2]!;
    expect(top.members.find((m) => m.path === 'data/big.bin')).toMatchObject({type: 'file', size: CHMOD_BYTES, mode: 0o600});
    expect(f.observed.layers[1]!.members.find((m) => m.path === 'data/big.bin')).toMatchObject({size: CHMOD_BYTES, mode: 0o644});
    expect(f.observed.layers.map((l) => l.createdBy)).toEqual([
      '/bin/sh',
      expect.stringMatching(/^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \/data\/big\.bin $/),
      '/bin/sh -c chmod 600 /data/big.bin',
    ]);
    expect(dockerFinalFiles(f)).toEqual(comparable(finalTree(f.observed).values()));
  });

  it('(b) rm -rf of a 50 MB directory: one whiteout hides all five bodies', async () => {
    const f = await buildRemovedDirFixture(dir);
    checkWaste(f);
    expect(f.expected.wastedBytes).toBe(50 * MB);
    const top = f.observed.layers[2]!;
    expect(top.members.filter((m) => m.path.includes('.wh.')).map((m) => m.path)).toEqual(['.wh.blob']);
    expect(top.members.some((m) => m.path.startsWith('blob/'))).toBe(false);
    const files = dockerFinalFiles(f);
    expect(files.some((l) => l.startsWith('blob/'))).toBe(false);
    expect(files).toEqual(comparable(finalTree(f.observed).values()));
  });

  it('(c) opaque directory written by buildah on overlay storage hides 10 MB', async () => {
    const f = await buildOpaqueDirFixture(dir);
    checkWaste(f);
    expect(f.expected.wastedBytes).toBe(10 * MB);
    const top = f.observed.layers[2]!;
    // The real marker, and no per-file whiteouts next to it.
    expect(top.members.filter((m) => m.path.includes('.wh.')).map((m) => m.path)).toEqual(['opq/.wh..wh..opq']);
    // docker applies the marker: only the new file is left under /opq.
    const files = dockerFinalFiles(f);
    expect(files.filter((l) => l.startsWith('opq/')).map((l) => l.split(' ')[0])).toEqual(['opq/new.txt']);
    expect(files).toEqual(comparable(finalTree(f.observed).values()));
  });

  it('(d) identical rewrite is waste; the same content at two final paths is a duplicate', async () => {
    const f = await buildDuplicateFixture(dir);
    checkWaste(f);
    expect(f.expected.wastedBytes).toBe(DUPLICATE_BYTES);
    expect(f.expected.duplicateBytes).toBe(DUPLICATE_BYTES);
    // Layers 1 and 2 hold byte-identical bodies at the same path.
    const at = (i: number): string | undefined => f.observed.layers[i]!.members.find((m) => m.path === 'dup/same.bin')?.sha256;
    expect(at(1)).toBe(at(2));
    expect(dockerFinalFiles(f)).toEqual(comparable(finalTree(f.observed).values()));
  });

  it('(e) two builds of one Dockerfile differ in exactly one file, one env var and one label', async () => {
    const f = await buildDiffPairFixture(dir);
    const a = f.before.observed;
    const b = f.after.observed;
    expect(changedFiles(a, b)).toEqual(f.expected.files);
    expect(changedValues(envMap(a.config.config?.Env), envMap(b.config.config?.Env))).toEqual(f.expected.env);
    expect(changedValues(a.config.config?.Labels ?? {}, b.config.config?.Labels ?? {})).toEqual(f.expected.labels);
    // What buildah produced: 3 layers each, base and COPY common/ shared, 6 history entries (3 empty).
    expect(a.layers).toHaveLength(3);
    expect(b.layers.map((l) => l.diffId).slice(0, 2)).toEqual(a.layers.map((l) => l.diffId).slice(0, 2));
    expect(a.layers[2]!.diffId).not.toBe(b.layers[2]!.diffId);
    expect(a.history.map((h) => h.empty_layer === true)).toEqual([false, true, true, true, false, false]);
    // docker agrees on the config side.
    for (const side of [f.before, f.after]) dockerd.docker(['load', '-i', side.archive]);
    const inspect = (name: string): {Env: string[]; Labels: Record<string, string>} => JSON.parse(dockerd.docker(['image', 'inspect', '--format', '{{json .Config}}', name])) as {Env: string[]; Labels: Record<string, string>};
    const ia = inspect(f.before.name);
    const ib = inspect(f.after.name);
    expect(changedValues(envMap(ia.Env), envMap(ib.Env))).toEqual(f.expected.env);
    expect(changedValues(ia.Labels, ib.Labels)).toEqual(f.expected.labels);
  });
});
