import {createCipheriv, createHash} from 'node:crypto';
import {chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {makeBuildah, runRaw, type RunResult, type Sandbox} from './daemons.js';

/**
 * Images for testing "wasted bytes" analysis and image diffs, built at test time with the real buildah
 * (busybox is GPL: it is copied in while building and never committed). Every expected number below is
 * derived from the bytes this module writes into the build context, never from ferry itself; the
 * archive as the tool wrote it is read back (readDockerArchive) so a test can also check that the
 * tool produced the layers the answer assumes.
 *
 * Sizes are decimal megabytes and deliberately not multiples of 512: an analyser that counts padded
 * tar blocks, or header bytes, instead of member bodies gets a different number.
 *
 * What buildah 1.28 (vfs) was seen to write, which the answers rely on:
 * - a chmod-only RUN stores the whole file again in the new layer, with the new mode (no metadata-only
 *   entry exists in the layer format);
 * - `rm -rf DIR` becomes one `.wh.DIR` entry in the parent, not one whiteout per file;
 * - deleting and recreating a directory becomes per-file `.wh.NAME` entries: vfs diffs never write
 *   `.wh..wh..opq`. buildah with the overlay storage driver does (the kernel marks the recreated upper
 *   directory opaque and the diff turns that into the marker), so the opaque case is built that way;
 * - every RUN layer also carries dev/, proc/, sys/, run/ and empty etc/hostname, etc/hosts,
 *   etc/resolv.conf (the first RUN only; later ones if they differ). They are 0-byte members, so they
 *   add nothing to wasted bytes, but a duplicate finder must not group empty files;
 * - `buildah push … docker-archive:FILE:NAME` records two RepoTags: docker.io/NAME and the local name.
 */

export const MB = 1_000_000;

/** The base every fixture builds FROM, inside the fixture's own buildah storage. */
const BASE_IMAGE = 'localhost/ferry-analyze-base:1';
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'cat', 'ls', 'rm', 'mkdir', 'chmod', 'cp', 'mv', 'stat', 'sha256sum'];

// ---------------------------------------------------------------------------------------------------
// Answers

/** One tar member body that no longer contributes to the image's final filesystem. */
export interface WastedItem {
  /** Absolute path in the image filesystem. */
  path: string;
  /** Body bytes of the hidden member (its tar `size`). */
  bytes: number;
  /** 0-based index (base first) into the manifest's Layers of the layer that holds the hidden copy. */
  layer: number;
  /** Index of the layer that hides it. */
  hiddenBy: number;
  /**
   * overwritten: the same path appears again in an upper layer;
   * removed: an upper layer has a whiteout for it or for one of its parent directories;
   * opaque: an upper layer marks a parent directory opaque (`.wh..wh..opq`).
   */
  cause: 'overwritten' | 'removed' | 'opaque';
  /** sha256 hex of the hidden body. */
  sha256: string;
}

/** The same non-empty content at two or more paths of the final filesystem. */
export interface DuplicateGroup {
  sha256: string;
  /** Size of one copy. */
  bytesEach: number;
  /** Final paths, sorted. */
  paths: string[];
  /** What keeping one copy would save: bytesEach * (paths.length - 1). */
  reclaimableBytes: number;
}

/** A member that is visible in the final filesystem and must not be counted as waste. */
export interface KeptFile {
  path: string;
  layer: number;
  bytes: number;
  /** Permission bits (e.g. 0o600). */
  mode: number;
  sha256: string;
}

export interface WasteAnswer {
  /** Entries of manifest Layers (= rootfs.diff_ids). */
  layerCount: number;
  /** Sum of wasted[].bytes: bodies stored in some layer but not visible in the final filesystem. */
  wastedBytes: number;
  wasted: WastedItem[];
  /** Sum of duplicates[].reclaimableBytes; reported apart from wastedBytes. */
  duplicateBytes: number;
  duplicates: DuplicateGroup[];
  /** Final copies that look related to the waste but are not waste themselves. */
  kept: KeptFile[];
}

export interface ChangedFile {
  path: string;
  change: 'added' | 'removed' | 'modified';
  before?: {bytes: number; sha256: string};
  after?: {bytes: number; sha256: string};
}

export interface ChangedValue {
  name: string;
  before: string | undefined;
  after: string | undefined;
}

export interface DiffAnswer {
  /** Content changes only: paths whose type, mode, size, body or link target differ (not mtimes). */
  files: ChangedFile[];
  /** Config.Env entries, split at the first '='. */
  env: ChangedValue[];
  /** Config.Labels. */
  labels: ChangedValue[];
}

// ---------------------------------------------------------------------------------------------------
// Reading what the tool wrote (an oracle independent of ferry's own tar code)

export interface TarMember {
  /** Cleaned path: no leading './' or '/', no trailing '/'. */
  path: string;
  /** 'file' | 'dir' | 'symlink' | 'hardlink' | 'other' (char/block/fifo). */
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';
  mode: number;
  size: number;
  mtime: number;
  linkname: string;
  /** sha256 hex of the body (files only, '' otherwise). */
  sha256: string;
}

function cleanPath(p: string): string {
  let s = p;
  while (s.startsWith('./')) s = s.slice(2);
  s = s.replace(/^\/+/, '').replace(/\/+$/, '');
  return s;
}

function readOctal(buf: Buffer): number {
  // GNU base-256 for large values: high bit of the first byte set.
  if (buf.length > 0 && (buf[0]! & 0x80) !== 0) {
    let n = 0;
    for (let i = 1; i < buf.length; i++) n = n * 256 + buf[i]!;
    return n;
  }
  const s = buf.toString('latin1').replace(/\0.*$/s, '').trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function parsePax(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let off = 0;
  while (off < body.length) {
    const sp = body.indexOf(0x20, off);
    if (sp < 0) break;
    const len = parseInt(body.subarray(off, sp).toString('latin1'), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const rec = body.subarray(sp + 1, off + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    off += len;
  }
  return out;
}

/** Members of an uncompressed tar held in memory; `bodies` keeps each file body (by cleaned path). */
export function readTar(buf: Buffer, keepBodies = false): {members: TarMember[]; bodies: Map<string, Buffer>} {
  const members: TarMember[] = [];
  const bodies = new Map<string, Buffer>();
  let off = 0;
  let pax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const size = readOctal(h.subarray(124, 136));
    const flag = String.fromCharCode(h[156]!);
    const body = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (flag === 'x') {
      pax = parsePax(body);
      continue;
    }
    if (flag === 'g') continue;
    if (flag === 'L') {
      longName = body.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    if (flag === 'K') {
      longLink = body.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const magic = h.subarray(257, 263).toString('latin1');
    const prefix = magic.startsWith('ustar') ? h.subarray(345, 500).toString('utf8').replace(/\0.*$/s, '') : '';
    const full = pax.get('path') ?? longName ?? (prefix ? `${prefix}/${name}` : name);
    const link = pax.get('linkpath') ?? longLink ?? h.subarray(157, 257).toString('utf8').replace(/\0.*$/s, '');
    const realSize = pax.has('size') ? Number(pax.get('size')) : size;
    const type: TarMember['type'] = flag === '0' || flag === '\0' || flag === '7' ? 'file' : flag === '5' ? 'dir' : flag === '2' ? 'symlink' : flag === '1' ? 'hardlink' : 'other';
    const member: TarMember = {
      path: cleanPath(full),
      type,
      mode: readOctal(h.subarray(100, 108)) & 0o7777,
      size: realSize,
      mtime: pax.has('mtime') ? Number(pax.get('mtime')) : readOctal(h.subarray(136, 148)),
      linkname: link,
      sha256: type === 'file' ? createHash('sha256').update(body).digest('hex') : '',
    };
    members.push(member);
    if (keepBodies && type === 'file') bodies.set(member.path, body);
    pax = new Map();
    longName = undefined;
    longLink = undefined;
  }
  return {members, bodies};
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ObservedLayer {
  /** 0-based, base first. */
  index: number;
  /** sha256:… of the uncompressed layer tar, as in rootfs.diff_ids. */
  diffId: string;
  /** created_by of the non-empty history entry that produced this layer. */
  createdBy: string;
  members: TarMember[];
  /** Sum of the file members' sizes. */
  bodyBytes: number;
}

export interface ObservedImage {
  archive: string;
  repoTags: string[];
  /** sha256:… of the config bytes (the image ID). */
  configDigest: string;
  config: {config?: {Env?: string[]; Labels?: Record<string, string>; Cmd?: string[]}; history?: HistoryEntry[]; rootfs?: {diff_ids?: string[]}};
  history: HistoryEntry[];
  layers: ObservedLayer[];
}

/** Reads a legacy docker-archive holding one image (what buildah push and docker save write). */
export function readDockerArchive(archive: string): ObservedImage {
  const outer = readTar(readFileSync(archive), true);
  const file = (name: string): Buffer => {
    const b = outer.bodies.get(cleanPath(name));
    if (b === undefined) throw new Error(`${archive}: no member ${name}`);
    return b;
  };
  const manifest = JSON.parse(file('manifest.json').toString('utf8')) as {Config: string; RepoTags: string[] | null; Layers: string[]}[];
  if (manifest.length !== 1) throw new Error(`${archive}: expected one image, found ${manifest.length}`);
  const item = manifest[0]!;
  const configBytes = file(item.Config);
  const config = JSON.parse(configBytes.toString('utf8')) as ObservedImage['config'];
  const history = config.history ?? [];
  const producing = history.filter((h) => h.empty_layer !== true);
  const layers = item.Layers.map((name, index): ObservedLayer => {
    const body = file(name);
    const {members} = readTar(body);
    return {
      index,
      diffId: `sha256:${createHash('sha256').update(body).digest('hex')}`,
      createdBy: producing[index]?.created_by ?? '',
      members,
      bodyBytes: members.filter((m) => m.type === 'file').reduce((a, m) => a + m.size, 0),
    };
  });
  return {
    archive,
    repoTags: item.RepoTags ?? [],
    configDigest: `sha256:${createHash('sha256').update(configBytes).digest('hex')}`,
    config,
    history,
    layers,
  };
}

/**
 * The final filesystem by the OCI layer rules (whiteouts, opaque directories, later entries win):
 * a small model of what a runtime unpacks, to compare with `docker export`.
 */
export function finalTree(image: ObservedImage): Map<string, TarMember & {layer: number}> {
  const tree = new Map<string, TarMember & {layer: number}>();
  const dropUnder = (dir: string): void => {
    for (const p of [...tree.keys()]) if (dir === '' || p.startsWith(`${dir}/`)) tree.delete(p);
  };
  for (const layer of image.layers) {
    // Whiteouts apply to lower layers only, so handle them before this layer's own entries.
    for (const m of layer.members) {
      const base = path.posix.basename(m.path);
      const dir = path.posix.dirname(m.path) === '.' ? '' : path.posix.dirname(m.path);
      if (base === '.wh..wh..opq') dropUnder(dir);
      else if (base.startsWith('.wh.')) {
        const target = dir === '' ? base.slice(4) : `${dir}/${base.slice(4)}`;
        tree.delete(target);
        dropUnder(target);
      }
    }
    for (const m of layer.members) {
      if (path.posix.basename(m.path).startsWith('.wh.')) continue;
      const prev = tree.get(m.path);
      // A directory over a directory keeps its children; anything else replaces the subtree.
      if (prev !== undefined && !(prev.type === 'dir' && m.type === 'dir')) dropUnder(m.path);
      tree.set(m.path, {...m, layer: layer.index});
    }
  }
  return tree;
}

// ---------------------------------------------------------------------------------------------------
// Building

/**
 * Deterministic bytes that gzip cannot shrink: an AES-256-CTR keystream keyed by sha256(seed). The
 * same seed always gives the same bytes, so digests in the answers are stable between runs.
 */
export function pseudoRandomBytes(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(`ferry-analyze:${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A fixed mtime for context files: buildah COPY keeps the source mtime, so layers compare across builds. */
const FIXED_MTIME = new Date('2020-01-02T03:04:05Z');

interface ContextFile {
  rel: string;
  bytes: Buffer;
  mtime?: Date;
}

function writeContext(dir: string, dockerfile: string, files: ContextFile[]): void {
  mkdirSync(dir, {recursive: true});
  writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
  for (const f of files) {
    const p = path.join(dir, f.rel);
    mkdirSync(path.dirname(p), {recursive: true});
    writeFileSync(p, f.bytes);
    chmodSync(p, 0o644);
    utimesSync(p, f.mtime ?? FIXED_MTIME, f.mtime ?? FIXED_MTIME);
  }
}

interface Builder {
  sandbox: Sandbox;
  work: string;
  run(args: string[]): string;
  cleanup(): Promise<void>;
}

/** The overlay storage driver mounts layers; unmount anything left below root before deleting it. */
function unmountUnder(root: string): void {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const points = lines
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === root || p.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length);
  for (const p of points) runRaw('umount', ['-l', p]);
}

/**
 * A buildah with private storage. vfs is the default (makeBuildah from daemons.ts); overlay is only
 * for the opaque-directory fixture, since only its diffs carry `.wh..wh..opq`.
 */
function makeBuilder(driver: 'vfs' | 'overlay'): Builder {
  let sandbox: Sandbox;
  if (driver === 'vfs') sandbox = makeBuildah();
  else {
    const root = mkdtempSync(path.join('/tmp', 'fbo-'));
    const base = ['--root', path.join(root, 'root'), '--runroot', path.join(root, 'run'), '--storage-driver', 'overlay'];
    const env = {...process.env, TMPDIR: root, XDG_RUNTIME_DIR: path.join(root, 'xdg'), XDG_CONFIG_HOME: path.join(root, 'cfg'), XDG_DATA_HOME: path.join(root, 'data')};
    mkdirSync(env.XDG_RUNTIME_DIR, {recursive: true});
    const raw = (args: string[], opts: {input?: Buffer | string} = {}): RunResult => runRaw('buildah', [...base, ...args], {...opts, env});
    sandbox = {
      root,
      runRaw: raw,
      run: (args, opts = {}) => {
        const r = raw(args, opts);
        if (r.status !== 0) throw new Error(`buildah ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
        return r.stdout;
      },
      cleanup: async () => {
        raw(['rm', '--all']);
        unmountUnder(root);
        rmSync(root, {recursive: true, force: true});
      },
    };
  }
  const work = path.join(sandbox.root, 'ctx');
  mkdirSync(work, {recursive: true});
  const builder: Builder = {
    sandbox,
    work,
    run: (args) => sandbox.run(args),
    cleanup: () => sandbox.cleanup(),
  };
  try {
    buildBase(builder);
  } catch (e) {
    void sandbox.cleanup();
    throw e;
  }
  return builder;
}

/** FROM scratch + /bin/busybox and applet links: one layer whose only body is busybox. */
function buildBase(b: Builder): void {
  const dir = path.join(b.work, 'base');
  mkdirSync(path.join(dir, 'bin'), {recursive: true});
  copyFileSync(BUSYBOX, path.join(dir, 'bin', 'busybox'));
  chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  for (const applet of APPLETS) symlinkSync('busybox', path.join(dir, 'bin', applet));
  const ctr = b.run(['from', 'scratch']).trim();
  b.run(['add', ctr, dir, '/']);
  b.run(['config', '--cmd', '["/bin/sh"]', '--env', 'PATH=/bin', ctr]);
  b.run(['commit', '-q', ctr, BASE_IMAGE]);
  b.run(['rm', ctr]);
}

function bud(b: Builder, ctx: string, tag: string, buildArgs: Record<string, string> = {}): void {
  const args = ['bud', '--layers', '--isolation', 'chroot', ...Object.entries(buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]), '-t', tag, ctx];
  b.run(args);
}

function push(b: Builder, tag: string, out: string, name: string): ObservedImage {
  rmSync(out, {force: true});
  b.run(['push', '-q', tag, `docker-archive:${out}:${name}`]);
  return readDockerArchive(out);
}

export interface AnalyzeFixture<A = WasteAnswer> {
  id: string;
  description: string;
  /** The docker-archive the tool wrote. */
  archive: string;
  /** The name given to buildah push (RepoTags also holds docker.io/<name> and the local tag). */
  name: string;
  expected: A;
  /** Read back from the archive: real layer list, history, members. */
  observed: ObservedImage;
}

async function withBuilder<T>(driver: 'vfs' | 'overlay', fn: (b: Builder) => T): Promise<T> {
  const b = makeBuilder(driver);
  try {
    return fn(b);
  } finally {
    await b.cleanup();
  }
}

function wasteAnswer(layerCount: number, wasted: WastedItem[], duplicates: DuplicateGroup[], kept: KeptFile[]): WasteAnswer {
  return {
    layerCount,
    wastedBytes: wasted.reduce((a, w) => a + w.bytes, 0),
    wasted,
    duplicateBytes: duplicates.reduce((a, d) => a + d.reclaimableBytes, 0),
    duplicates,
    kept,
  };
}

export const CHMOD_BYTES = 37 * MB;

/**
 * (a) A 37 MB file added, then `chmod 600` in a RUN: the layer format has no metadata-only change, so
 * the RUN layer stores the whole file again. Layers: busybox, COPY, RUN. Waste = the lower copy only.
 * Seen from buildah 1.28.2: 3 layers, 3 history entries (none empty): `/bin/sh` (the base commit),
 * `/bin/sh -c #(nop) COPY file:<sha> in /data/big.bin `, `/bin/sh -c chmod 600 /data/big.bin`; the RUN
 * layer holds data/ and data/big.bin (0600, 37000000 bytes) plus dev/ etc/{hostname,hosts,resolv.conf}
 * proc/ run/ sys/.
 */
export async function buildChmodFixture(outDir: string): Promise<AnalyzeFixture> {
  const big = pseudoRandomBytes('chmod/big.bin', CHMOD_BYTES);
  const name = 'ferry-analyze/chmod:1';
  return withBuilder('vfs', (b) => {
    const ctx = path.join(b.work, 'chmod');
    writeContext(ctx, ['FROM ' + BASE_IMAGE, 'COPY big.bin /data/big.bin', 'RUN chmod 600 /data/big.bin', ''].join('\n'), [{rel: 'big.bin', bytes: big}]);
    bud(b, ctx, 'localhost/chmod:1');
    const observed = push(b, 'localhost/chmod:1', path.join(outDir, 'chmod.tar'), name);
    const digest = sha256(big);
    return {
      id: 'chmod-copy',
      description: 'a 37 MB file added, then chmod 600 in a later RUN layer: the file body is stored twice; the lower 37 MB copy is reclaimable, the 0600 copy is the one kept',
      archive: observed.archive,
      name,
      expected: wasteAnswer(
        3,
        [{path: '/data/big.bin', bytes: CHMOD_BYTES, layer: 1, hiddenBy: 2, cause: 'overwritten', sha256: digest}],
        [],
        [{path: '/data/big.bin', layer: 2, bytes: CHMOD_BYTES, mode: 0o600, sha256: digest}],
      ),
      observed,
    };
  });
}

/** Odd sizes summing to exactly 50 MB, so per-file and total figures are both checkable. */
export const REMOVED_DIR_SIZES = [17_000_001, 13_000_003, 10_000_005, 6_999_993, 2_999_998] as const;

/**
 * (b) A 50 MB directory of five files added, then `rm -rf` in a later RUN: buildah writes one
 * `.wh.blob` whiteout at the root. Layers: busybox, COPY, RUN. Waste = all five bodies.
 * Seen from buildah 1.28.2: 3 layers, history `/bin/sh`, `… COPY dir:<sha> in /blob/ `,
 * `/bin/sh -c rm -rf /blob`; the RUN layer is `.wh.blob` (mode 0) plus the RUN scaffolding, 0 body bytes.
 */
export async function buildRemovedDirFixture(outDir: string): Promise<AnalyzeFixture> {
  const files = REMOVED_DIR_SIZES.map((size, i) => ({rel: `blob/part-${i}.bin`, bytes: pseudoRandomBytes(`removed/${i}`, size)}));
  const name = 'ferry-analyze/removed-dir:1';
  return withBuilder('vfs', (b) => {
    const ctx = path.join(b.work, 'removed');
    writeContext(ctx, ['FROM ' + BASE_IMAGE, 'COPY blob/ /blob/', 'RUN rm -rf /blob', ''].join('\n'), files);
    bud(b, ctx, 'localhost/removed:1');
    const observed = push(b, 'localhost/removed:1', path.join(outDir, 'removed-dir.tar'), name);
    return {
      id: 'removed-dir',
      description: 'a 50 MB directory (/blob, five files) added, then rm -rf /blob in a later RUN layer (one .wh.blob whiteout): all 50 MB reclaimable',
      archive: observed.archive,
      name,
      expected: wasteAnswer(
        3,
        files.map((f) => ({path: `/${f.rel}`, bytes: f.bytes.length, layer: 1, hiddenBy: 2, cause: 'removed' as const, sha256: sha256(f.bytes)})),
        [],
        [],
      ),
      observed,
    };
  });
}

export const OPAQUE_SIZES = [4_000_001, 3_000_002, 2_000_003, 999_994] as const;
export const OPAQUE_NEW_CONTENT = 'replacement\n';

/**
 * (c) /opq with 10 MB in four files, then a RUN that deletes and recreates /opq with one small file.
 * Built with buildah's overlay storage driver: its diff writes `opq/.wh..wh..opq` (vfs would write
 * per-file whiteouts). Layers: busybox, COPY, RUN. Waste = the four lower bodies; new.txt is kept.
 * Seen from buildah 1.28.2 (overlay, native diff): 3 layers; the RUN layer lists `opq/` then
 * `opq/.wh..wh..opq` (a regular 0-byte file, mode 0755, mtime 0) then `opq/new.txt` (12 bytes), plus
 * the RUN scaffolding. (umoci 0.4.7's `insert --opaque` also writes the marker, but before the
 * directory entry and in a tar with no end-of-archive blocks, which GNU tar and Python reject.)
 */
export async function buildOpaqueDirFixture(outDir: string): Promise<AnalyzeFixture> {
  const files = OPAQUE_SIZES.map((size, i) => ({rel: `opq/old-${i}.bin`, bytes: pseudoRandomBytes(`opaque/${i}`, size)}));
  const name = 'ferry-analyze/opaque-dir:1';
  return withBuilder('overlay', (b) => {
    const ctx = path.join(b.work, 'opaque');
    // printf, not echo: the byte count of new.txt is part of the answer.
    const recreate = `RUN rm -rf /opq && mkdir /opq && printf '${OPAQUE_NEW_CONTENT.replace('\n', '\\n')}' > /opq/new.txt`;
    writeContext(ctx, ['FROM ' + BASE_IMAGE, 'COPY opq/ /opq/', recreate, ''].join('\n'), files);
    bud(b, ctx, 'localhost/opaque:1');
    const observed = push(b, 'localhost/opaque:1', path.join(outDir, 'opaque-dir.tar'), name);
    const fresh = Buffer.from(OPAQUE_NEW_CONTENT);
    return {
      id: 'opaque-dir',
      description: 'a 10 MB directory (/opq, four files) replaced wholesale by an opaque directory (opq/.wh..wh..opq, written by buildah on overlay storage) holding one new file: all 10 MB reclaimable',
      archive: observed.archive,
      name,
      expected: wasteAnswer(
        3,
        files.map((f) => ({path: `/${f.rel}`, bytes: f.bytes.length, layer: 1, hiddenBy: 2, cause: 'opaque' as const, sha256: sha256(f.bytes)})),
        [],
        [{path: '/opq/new.txt', layer: 2, bytes: fresh.length, mode: 0o644, sha256: sha256(fresh)}],
      ),
      observed,
    };
  });
}

export const DUPLICATE_BYTES = 3_000_017;

/**
 * (d) The same bytes COPY'd to /dup/same.bin twice (second source has another mtime, so the vfs diff
 * cannot call it unchanged), then once more to /copy/elsewhere.bin. Layers: busybox, COPY, COPY, COPY.
 * Waste = the layer-1 copy of /dup/same.bin (identical to the one that hides it); duplicates = the two
 * final paths, reported apart from waste.
 * Seen from buildah 1.28.2: 4 layers, 4 history entries; the two COPYs to /dup/same.bin have the very
 * same created_by (`COPY file:<sha> in /dup/same.bin `: buildah hashes content, not mtime), yet they
 * are two layers with distinct diff IDs (the mtimes differ).
 */
export async function buildDuplicateFixture(outDir: string): Promise<AnalyzeFixture> {
  const bytes = pseudoRandomBytes('duplicate', DUPLICATE_BYTES);
  const name = 'ferry-analyze/duplicate:1';
  return withBuilder('vfs', (b) => {
    const ctx = path.join(b.work, 'dup');
    writeContext(
      ctx,
      ['FROM ' + BASE_IMAGE, 'COPY same.bin /dup/same.bin', 'COPY same-again.bin /dup/same.bin', 'COPY same.bin /copy/elsewhere.bin', ''].join('\n'),
      [
        {rel: 'same.bin', bytes},
        {rel: 'same-again.bin', bytes, mtime: new Date('2021-06-07T08:09:10Z')},
      ],
    );
    bud(b, ctx, 'localhost/dup:1');
    const observed = push(b, 'localhost/dup:1', path.join(outDir, 'duplicate.tar'), name);
    const digest = sha256(bytes);
    return {
      id: 'duplicate',
      description: 'identical bytes written twice at /dup/same.bin (layers 1 and 2: the lower copy is reclaimable) and once more at /copy/elsewhere.bin (layer 3): the two final paths are duplicate content, reported apart from waste',
      archive: observed.archive,
      name,
      expected: wasteAnswer(
        4,
        [{path: '/dup/same.bin', bytes: DUPLICATE_BYTES, layer: 1, hiddenBy: 2, cause: 'overwritten', sha256: digest}],
        [{sha256: digest, bytesEach: DUPLICATE_BYTES, paths: ['/copy/elsewhere.bin', '/dup/same.bin'], reclaimableBytes: DUPLICATE_BYTES}],
        [
          {path: '/dup/same.bin', layer: 2, bytes: DUPLICATE_BYTES, mode: 0o644, sha256: digest},
          {path: '/copy/elsewhere.bin', layer: 3, bytes: DUPLICATE_BYTES, mode: 0o644, sha256: digest},
        ],
      ),
      observed,
    };
  });
}

export const DIFF_VARIANTS = {before: {variant: 'alpha', file: 'alpha\n'}, after: {variant: 'bravo', file: 'bravo-two\n'}} as const;

export interface DiffFixture {
  id: string;
  description: string;
  before: {archive: string; name: string; observed: ObservedImage};
  after: {archive: string; name: string; observed: ObservedImage};
  expected: DiffAnswer;
}

/**
 * (e) One Dockerfile, two build args: the images differ in /app/variant.txt, ENV FERRY_VARIANT and
 * LABEL org.example.variant, and in nothing else a content diff should report. Built in one buildah
 * store so the base and COPY common/ layers are the same blobs (buildah's layer cache).
 * Seen from buildah 1.28.2: 3 layers each (base and COPY common/ shared, top layer differs), 6 history
 * entries of which ARG, LABEL and ENV are empty_layer. Differences a content diff must NOT report:
 * the top layers' `app/` directory entries carry different mtimes (build time), history `created`
 * times and the `COPY file:<sha>` in created_by differ. The variant files' mtimes are pinned, so
 * /app/variant.txt differs only in size and content.
 */
export async function buildDiffPairFixture(outDir: string): Promise<DiffFixture> {
  const common = Buffer.from('shared by both variants\n');
  return withBuilder('vfs', (b) => {
    const ctx = path.join(b.work, 'diff');
    writeContext(
      ctx,
      ['FROM ' + BASE_IMAGE, 'ARG VARIANT', 'LABEL org.example.variant=$VARIANT', 'ENV FERRY_VARIANT=$VARIANT', 'COPY common/ /app/', 'COPY variant-${VARIANT}.txt /app/variant.txt', ''].join('\n'),
      [
        {rel: 'common/readme.txt', bytes: common},
        {rel: `variant-${DIFF_VARIANTS.before.variant}.txt`, bytes: Buffer.from(DIFF_VARIANTS.before.file)},
        {rel: `variant-${DIFF_VARIANTS.after.variant}.txt`, bytes: Buffer.from(DIFF_VARIANTS.after.file)},
      ],
    );
    const side = (which: 'before' | 'after'): DiffFixture['before'] => {
      const v = DIFF_VARIANTS[which].variant;
      bud(b, ctx, `localhost/diff:${v}`, {VARIANT: v});
      const name = `ferry-analyze/diff:${v}`;
      return {archive: path.join(outDir, `diff-${v}.tar`), name, observed: push(b, `localhost/diff:${v}`, path.join(outDir, `diff-${v}.tar`), name)};
    };
    const before = side('before');
    const after = side('after');
    const fb = Buffer.from(DIFF_VARIANTS.before.file);
    const fa = Buffer.from(DIFF_VARIANTS.after.file);
    return {
      id: 'diff-pair',
      description: 'two builds of one Dockerfile (ARG VARIANT=alpha|bravo) differing in exactly /app/variant.txt, ENV FERRY_VARIANT and LABEL org.example.variant',
      before,
      after,
      expected: {
        files: [{path: '/app/variant.txt', change: 'modified', before: {bytes: fb.length, sha256: sha256(fb)}, after: {bytes: fa.length, sha256: sha256(fa)}}],
        env: [{name: 'FERRY_VARIANT', before: DIFF_VARIANTS.before.variant, after: DIFF_VARIANTS.after.variant}],
        labels: [{name: 'org.example.variant', before: DIFF_VARIANTS.before.variant, after: DIFF_VARIANTS.after.variant}],
      },
    };
  });
}

/** Size of the base layer's only body, for tests that total all bodies of an image. */
export function busyboxBytes(): number {
  return statSync(BUSYBOX).size;
}

/** A scratch directory for fixture archives (callers remove it). */
export function fixtureDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'ferry-analyze-'));
}
