import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FileRange} from '../../src/io/bytes/file-range.js';
import type {TarEntry} from '../../src/tar/walk.js';
import {FIXTURES} from '../helpers/cli.js';
import {peerMissing, runsAsRoot} from '../helpers/peers.js';
import {expectSameAsPython, pythonMembers} from './oracle.js';

/**
 * ferry's tar codec against tars written by GNU tar, Python's tarfile and docker. Python's tarfile is
 * the oracle (test/helpers/tarcheck.py): every member must agree field by field, offsets included.
 * Expected values beyond that come from what the test itself put into the tars.
 */

const TARMAKE = fileURLToPath(new URL('../helpers/tarmake.py', import.meta.url));
const IS_ROOT = runsAsRoot('restoring security.* xattrs and uids above 2^21');
const MTIME_TEXT = '1612325106.123456789'; // 2021-02-03 04:05:06.123456789 UTC
const D60 = 'd'.repeat(60);
const DEEP = `${D60}/${D60}/${D60}/${D60}/${D60}`; // a 304-byte directory path
const LONG_TARGET = `${D60}/${D60}/${D60}/target-over-100`;
const XATTR_BIN = Buffer.from([0, 255, 10, 61, 32, 1]);
const CAPABILITY = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const UNICODE = 'ünï-中文-🚢.txt';

let tmp: string;
/** What the source tree for GNU tar really holds (devices and xattrs need privileges). */
const made = {devices: false, bigOwner: false, userXattr: false, capability: false};

function sh(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, {encoding: 'utf8', cwd, stdio: ['ignore', 'pipe', 'pipe']});
}

function setXattr(file: string, name: string, value: Buffer): boolean {
  try {
    sh('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]))', file, name, value.toString('hex')]);
    return true;
  } catch {
    return false;
  }
}

function byName(entries: TarEntry[], name: string): TarEntry {
  const hit = entries.find((e) => e.name === name);
  if (!hit) throw new Error(`no member ${name} in ${entries.map((e) => e.name).join(', ')}`);
  return hit;
}

async function body(file: string, entry: TarEntry): Promise<Buffer> {
  return (await FileRange.ofFile(file)).sub(entry.dataOffset, entry.size, entry.name).readAll(1 << 20);
}

/** The tree GNU tar archives: long names/links, hardlinks, devices, fifo, xattrs, big ids, ns mtimes. */
function makeSourceTree(root: string): void {
  fs.mkdirSync(path.join(root, DEEP), {recursive: true});
  fs.writeFileSync(path.join(root, DEEP, 'file.txt'), 'deep\n');
  fs.writeFileSync(path.join(root, 'short.txt'), 'hi\n');
  fs.writeFileSync(path.join(root, UNICODE), 'u\n');
  fs.writeFileSync(path.join(root, 'bigid'), 'big\n');
  fs.linkSync(path.join(root, 'short.txt'), path.join(root, 'hard'));
  fs.linkSync(path.join(root, DEEP, 'file.txt'), path.join(root, 'hardlong'));
  fs.symlinkSync(LONG_TARGET, path.join(root, 'symlong'));
  fs.symlinkSync('short.txt', path.join(root, 'sym'));
  sh('mkfifo', [path.join(root, 'fifo')]);
  if (IS_ROOT) {
    sh('mknod', [path.join(root, 'chr'), 'c', '1', '3']);
    sh('mknod', [path.join(root, 'blk'), 'b', '7', '0']);
    made.devices = true;
    fs.chownSync(path.join(root, 'bigid'), 3000000, 4000000);
    made.bigOwner = true;
  }
  made.userXattr = setXattr(path.join(root, 'short.txt'), 'user.bin', XATTR_BIN);
  made.capability = setXattr(path.join(root, 'short.txt'), 'security.capability', CAPABILITY);
  sh('find', [root, '-exec', 'touch', '-h', '-d', '2021-02-03 04:05:06.123456789 UTC', '{}', '+']);
}

/** A 1 MiB file with ten 5-byte data islands: GNU old-format sparse needs extension headers for it. */
function makeSparseTree(root: string): void {
  fs.mkdirSync(root);
  const fd = fs.openSync(path.join(root, 'sp'), 'w');
  for (let i = 0; i < 10; i++) fs.writeSync(fd, `data${i}`, i * 100_000);
  fs.ftruncateSync(fd, 1 << 20);
  fs.closeSync(fd);
  fs.writeFileSync(path.join(root, 'after.txt'), 'after\n');
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-tar-interop-'));
  makeSourceTree(path.join(tmp, 'src'));
  makeSparseTree(path.join(tmp, 'sparse'));
});

afterAll(() => {
  fs.rmSync(tmp, {recursive: true, force: true});
});

describe.skipIf(peerMissing('tar', 'python3'))('GNU tar', () => {
  it('--format=pax: PAX records (xattrs as raw bytes, global and per-file --pax-option), long names and links, ns mtimes, big ids, devices', async () => {
    const out = path.join(tmp, 'gnu-pax.tar');
    // keyword=value goes into one global header, keyword:=value into every entry's own header.
    sh('tar', ['--format=pax', '--xattrs', '--xattrs-include=*', '--pax-option=org.ferry.global=hello world,comment:=per entry', '-cf', out, '-C', path.join(tmp, 'src'), '.']);
    const {ferry} = await expectSameAsPython(out);
    for (const e of ferry) {
      expect(e.pax.get('org.ferry.global')?.toString()).toBe('hello world');
      expect(e.pax.get('comment')?.toString()).toBe('per entry');
      expect(e.mtimeText).toBe(MTIME_TEXT);
      expect(e.mtime).toBe(Number(MTIME_TEXT));
    }
    const short = byName(ferry, './short.txt');
    expect(await body(out, short)).toEqual(Buffer.from('hi\n'));
    if (made.userXattr) expect(short.pax.get('SCHILY.xattr.user.bin')).toEqual(XATTR_BIN);
    if (made.capability) expect(short.pax.get('SCHILY.xattr.security.capability')).toEqual(CAPABILITY);
    expect(made.userXattr || made.capability).toBe(true);
    expect(byName(ferry, `./${DEEP}/file.txt`).type).toBe('hardlink');
    expect(byName(ferry, './hardlong').type).toBe('file');
    expect(byName(ferry, `./${DEEP}/file.txt`).linkname).toBe('./hardlong');
    expect(byName(ferry, './symlong').linkname).toBe(LONG_TARGET);
    expect(byName(ferry, `./${UNICODE}`).size).toBe(2);
    expect(byName(ferry, './fifo').type).toBe('fifo');
    if (made.devices) {
      expect(byName(ferry, './chr')).toMatchObject({type: 'char', devmajor: 1, devminor: 3});
      expect(byName(ferry, './blk')).toMatchObject({type: 'block', devmajor: 7, devminor: 0});
    }
    if (made.bigOwner) expect(byName(ferry, './bigid')).toMatchObject({uid: 3000000, gid: 4000000});
  });

  it('--format=gnu: L/K long names and links, base-256 uid/gid', async () => {
    const out = path.join(tmp, 'gnu-gnu.tar');
    sh('tar', ['--format=gnu', '--owner=alice:5000000', '--group=staff:6000000', '-cf', out, '-C', path.join(tmp, 'src'), '.']);
    const {ferry} = await expectSameAsPython(out);
    for (const e of ferry) expect(e).toMatchObject({uid: 5000000, gid: 6000000, uname: 'alice', gname: 'staff', mtime: 1612325106});
    // The long names came from ././@LongLink pseudo-entries: their blocks belong to the entry.
    const deep = byName(ferry, `./${DEEP}/file.txt`);
    expect(deep.headerBytes.length).toBeGreaterThan(512);
    expect(deep.linkname).toBe('./hardlong');
    expect(byName(ferry, './symlong').linkname).toBe(LONG_TARGET);
    // base-256: the uid field's first byte has its high bit set
    expect(deep.headerBytes[deep.headerBytes.length - 512 + 108]! & 0x80).toBe(0x80);
  });

  it('--format=gnu with a pre-1970 mtime: negative base-256', async () => {
    const out = path.join(tmp, 'gnu-negative.tar');
    sh('tar', ['--format=gnu', '--mtime=1901-06-01 00:00:00 UTC', '-cf', out, '-C', path.join(tmp, 'src'), 'short.txt']);
    const {ferry} = await expectSameAsPython(out);
    expect(ferry[0]!.mtime).toBe(Date.UTC(1901, 5, 1) / 1000);
  });

  for (const [label, args] of [
    ['gnu (old sparse, extension headers)', ['--format=gnu']],
    ['pax sparse 0.0', ['--format=pax', '--sparse-version=0.0']],
    ['pax sparse 0.1', ['--format=pax', '--sparse-version=0.1']],
    ['pax sparse 1.0', ['--format=pax', '--sparse-version=1.0']],
  ] as const) {
    it(`--sparse ${label}: recognised, real name kept, the walk stays aligned`, async () => {
      const out = path.join(tmp, `sparse-${label.replace(/\W+/g, '-')}.tar`);
      sh('tar', [...args, '--sparse', '-cf', out, '-C', path.join(tmp, 'sparse'), 'sp', 'after.txt']);
      const {ferry} = await expectSameAsPython(out);
      expect(ferry.map((e) => [e.name, e.sparse])).toEqual([
        ['sp', true],
        ['after.txt', false],
      ]);
      expect(await body(out, ferry[1]!)).toEqual(Buffer.from('after\n'));
    });
  }
});

describe.skipIf(peerMissing('python3'))("Python's tarfile", () => {
  it('PAX: global header, binary SCHILY.xattr values, long names (>100, >255) and links, uid 2**22, devices, fifo, fractional mtime', async () => {
    const out = path.join(tmp, 'py-pax.tar');
    sh('python3', [TARMAKE, 'pax', out]);
    const {ferry} = await expectSameAsPython(out);
    expect(ferry[0]!.headerOffset).toBe(1024); // after the global header, which belongs to no entry
    for (const e of ferry) expect(e.pax.get('comment')?.toString()).toBe('global record');
    const x = byName(ferry, 'xattrs.bin');
    expect(x.pax.get('SCHILY.xattr.security.capability')).toEqual(Buffer.from('0100000200040000000000000000000000000000', 'hex'));
    expect(x.pax.get('SCHILY.xattr.user.odd')).toEqual(Buffer.from([0xff, 0xfe, 0x0a, 0x3d, 0x00, ...Buffer.from('tail')]));
    expect(x.pax.get('SCHILY.xattr.user.text')?.toString()).toBe('hello');
    expect(x.mtime).toBe(1600000000.25);
    expect(await body(out, x)).toEqual(Buffer.from('abc'));
    expect(byName(ferry, 'bigid.txt')).toMatchObject({uid: 2 ** 22, gid: 2 ** 22 + 1});
    expect(byName(ferry, 'dev/null')).toMatchObject({type: 'char', devmajor: 1, devminor: 3});
    expect(byName(ferry, 'dev/loop0')).toMatchObject({type: 'block', devmajor: 7, devminor: 0});
    expect(byName(ferry, 'fifo').type).toBe('fifo');
    expect(byName(ferry, 'hard-long').linkname.length).toBeGreaterThan(255);
    expect(byName(ferry, 'sym-long').linkname.length).toBeGreaterThan(100);
    expect(byName(ferry, 'unicode-ünï-中文-🚢.txt').size).toBe(2);
  });

  it('GNU: the same members through L/K and base-256', async () => {
    const out = path.join(tmp, 'py-gnu.tar');
    sh('python3', [TARMAKE, 'gnu', out]);
    const {ferry} = await expectSameAsPython(out);
    expect(byName(ferry, 'bigid.txt')).toMatchObject({uid: 2 ** 22, gid: 2 ** 22 + 1});
    expect(ferry.every((e) => e.pax.size === 0)).toBe(true);
    expect(byName(ferry, 'hard-long').linkname.length).toBeGreaterThan(255);
  });

  it('USTAR: names split into prefix + name', async () => {
    const out = path.join(tmp, 'py-ustar.tar');
    sh('python3', [TARMAKE, 'ustar', out]);
    const {ferry} = await expectSameAsPython(out);
    expect(ferry[1]!.name).toBe(`${'p'.repeat(150)}/${'n'.repeat(99)}`);
    expect(ferry[1]!.headerBytes.length).toBe(512);
  });

  it('9 GiB members (base-256 size, PAX size record) are walked by offset without reading them', async () => {
    const out = path.join(tmp, 'py-huge.tar');
    sh('python3', [TARMAKE, 'huge', out]);
    const {ferry} = await expectSameAsPython(out);
    expect(ferry.map((e) => [e.name, e.size])).toEqual([
      ['huge-gnu.bin', 9 * 1024 ** 3],
      ['huge-pax.bin', 9 * 1024 ** 3],
      ['after.txt', 0],
    ]);
    expect(ferry[2]!.headerOffset).toBeGreaterThan(2 * 9 * 1024 ** 3);
  });
});

describe.skipIf(peerMissing('tar', 'python3', 'gzip'))('docker-written tars', () => {
  let extracted: string;
  beforeAll(() => {
    extracted = path.join(tmp, 'docker');
    fs.mkdirSync(extracted);
    sh('tar', ['-xf', path.join(FIXTURES, 'edge-multi.docker-save.tar'), '-C', extracted]);
  });

  it('the archives themselves (docker save, docker export, skopeo docker-archive and oci-archive)', async () => {
    for (const name of ['edge.docker-save.tar', 'edge-multi.docker-save.tar', 'edge.docker-export.tar', 'edge.skopeo.docker-archive.tar', 'edge.skopeo.oci-archive.tar']) {
      const {ferry} = await expectSameAsPython(path.join(FIXTURES, name));
      expect(ferry.length, name).toBeGreaterThan(0);
    }
  });

  it('every layer tar inside docker save (buildah, umoci and docker build layers)', async () => {
    const layers = fs
      .readdirSync(extracted)
      .map((d) => path.join(extracted, d, 'layer.tar'))
      .filter((p) => fs.existsSync(p) && fs.lstatSync(p).isFile());
    expect(layers.length).toBe(5);
    const names: string[] = [];
    for (const layer of layers) names.push(...(await expectSameAsPython(layer)).ferry.map((e) => e.name));
    // what fixtures/README.md says the layers hold
    expect(names).toContain('srv/opaque-me/.wh..wh..opq');
    expect(names).toContain('srv/.wh.gone.txt');
    expect(names.some((n) => Buffer.byteLength(n) > 255)).toBe(true);
    expect(names).toContain('srv/unicode/🚢.txt');
  });

  it('the gzip layers of the podman OCI layout, decompressed', async () => {
    const blobs = path.join(FIXTURES, 'edge.podman.oci', 'blobs', 'sha256');
    let count = 0;
    for (const hex of fs.readdirSync(blobs)) {
      const blob = fs.readFileSync(path.join(blobs, hex));
      if (blob[0] !== 0x1f || blob[1] !== 0x8b) continue;
      const out = path.join(tmp, `${hex}.tar`);
      fs.writeFileSync(out, execFileSync('gzip', ['-dc'], {input: blob}));
      await expectSameAsPython(out);
      count++;
    }
    expect(count).toBe(4);
  });

  it('docker export: the PaxHeaders.0 naming docker uses for PAX headers', async () => {
    const file = path.join(FIXTURES, 'edge.docker-export.tar');
    const py = pythonMembers(file).members;
    const {ferry} = await expectSameAsPython(file);
    const withPax = ferry.filter((e) => e.pax.has('path'));
    expect(withPax.length).toBeGreaterThan(0);
    // Go names the x header <dir>/PaxHeaders.0/<base>, cut to 100 bytes (so deep paths lose it).
    const paxNames = withPax.map((e) => e.headerBytes.subarray(0, 100).toString('utf8').replace(/\0+$/, ''));
    expect(paxNames).toContain('srv/unicode/PaxHeaders.0/ncd.txt');
    for (const n of paxNames) expect(n.length).toBeLessThanOrEqual(100);
    expect(ferry.length).toBe(py.length);
  });
});
