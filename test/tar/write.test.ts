import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {END_OF_ARCHIVE, encodeHeader, padding, type HeaderSpec} from '../../src/tar/write.js';
import {peerMissing, runsAsRoot} from '../helpers/peers.js';
import {ferryEntries, pythonMembers} from './oracle.js';

/**
 * encodeHeader output read back by Python's tarfile and GNU tar (list and extract with xattrs), and
 * by ferry's own walker; and the same input always gives the same bytes.
 */

const IS_ROOT = runsAsRoot('restoring security.* xattrs and uids above 2^21');
const D60 = 'd'.repeat(60);
const LONG100 = `${D60}/${D60}/over-100.txt`;
const LONG255 = `${D60}/${D60}/${D60}/${D60}/${D60}/over-255.txt`;
const CAPABILITY = Buffer.from('0100000200040000000000000000000000000000', 'hex');
const ODD = Buffer.from([0xff, 0xfe, 0x0a, 0x3d, 0x00, 0x41]); // not UTF-8, a newline, '=', NUL
const NS_MTIME = '1600000000.123456789';

interface Member {
  spec: HeaderSpec;
  data?: Buffer;
}

const base = {mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1600000000, uname: 'root', gname: 'root'};

/** Members GNU tar can extract anywhere (no devices) — the xattr/mtime/long-name round trip. */
const extractable: Member[] = [
  {spec: {...base, name: 'dir/', type: 'dir', mode: 0o755}},
  {spec: {...base, name: 'dir/plain.txt', type: 'file', size: 6}, data: Buffer.from('plain\n')},
  {spec: {...base, name: LONG100, type: 'file', size: 4}, data: Buffer.from('100\n')},
  {spec: {...base, name: LONG255, type: 'file', size: 4}, data: Buffer.from('255\n')},
  {spec: {...base, name: `${'p'.repeat(150)}/${'n'.repeat(99)}`, type: 'file', size: 0}},
  {spec: {...base, name: 'unicode-ünï-中文-🚢.txt', type: 'file', size: 2}, data: Buffer.from('u\n')},
  {
    spec: {
      ...base,
      name: 'xattrs.bin',
      type: 'file',
      size: 3,
      mtime: Number(NS_MTIME),
      mtimeText: NS_MTIME,
      pax: new Map([
        ['SCHILY.xattr.security.capability', CAPABILITY],
        ['SCHILY.xattr.user.odd', ODD],
        ['SCHILY.xattr.user.text', Buffer.from('hello')],
      ]),
    },
    data: Buffer.from('abc'),
  },
  {spec: {...base, name: 'bigid.txt', type: 'file', uid: 2 ** 22, gid: 2 ** 22 + 1, uname: 'big', gname: 'big'}},
  {spec: {...base, name: 'sym-long', type: 'symlink', mode: 0o777, linkname: `${'t'.repeat(60)}/${'t'.repeat(60)}/target`}},
  {spec: {...base, name: 'hard-long', type: 'hardlink', linkname: LONG255}},
  {spec: {...base, name: 'fifo', type: 'fifo'}},
  {spec: {...base, name: 'kept-atime', type: 'file', pax: new Map([['atime', Buffer.from('1600000001.5')]])}},
];
const devices: Member[] = [
  {spec: {...base, name: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3}},
  {spec: {...base, name: 'dev/loop0', type: 'block', mode: 0o660, devmajor: 7, devminor: 0}},
];

function build(members: Member[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    parts.push(encodeHeader(m.spec));
    if (m.data) parts.push(m.data, padding(m.data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

const TYPEFLAG = {file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6'} as const;

let tmp: string;
let archive: string;
const all = [...extractable, ...devices];

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-write-'));
  archive = path.join(tmp, 'all.tar');
  fs.writeFileSync(archive, build(all));
});

afterAll(() => {
  fs.rmSync(tmp, {recursive: true, force: true});
});

describe.skipIf(peerMissing('python3'))("read back by Python's tarfile", () => {
  it('every field as specified, xattr values byte for byte', () => {
    const py = pythonMembers(archive).members;
    expect(py).toHaveLength(all.length);
    for (const [i, {spec, data}] of all.entries()) {
      const m = py[i]!;
      const where = spec.name;
      expect(m.name, where).toBe(spec.name.replace(/\/$/, ''));
      expect(m.type, where).toBe(TYPEFLAG[spec.type as keyof typeof TYPEFLAG]);
      expect(m.mode, where).toBe(spec.mode);
      expect([m.uid, m.gid, m.uname, m.gname], where).toEqual([spec.uid, spec.gid, spec.uname, spec.gname]);
      expect(m.size, where).toBe(data?.length ?? 0);
      expect(m.mtime, where).toBe(spec.mtime);
      expect(m.linkname, where).toBe(spec.linkname ?? '');
      expect([m.devmajor, m.devminor], where).toEqual([spec.devmajor ?? 0, spec.devminor ?? 0]);
      for (const [k, v] of spec.pax ?? []) expect(m.pax[k], `${where} ${k}`).toBe(v.toString('hex'));
      if (spec.mtimeText) expect(Buffer.from(m.pax.mtime!, 'hex').toString()).toBe(spec.mtimeText);
    }
  });

  it('PAX only where USTAR cannot hold a field (as Go and Docker write)', () => {
    const py = pythonMembers(archive).members;
    const paxKeys = Object.fromEntries(py.map((m) => [m.name, Object.keys(m.pax).sort()]));
    expect(paxKeys['dir/plain.txt']).toEqual([]);
    expect(paxKeys[`${'p'.repeat(150)}/${'n'.repeat(99)}`]).toEqual([]); // prefix + name split
    expect(paxKeys[LONG100]).toEqual([]); // splits at a slash too
    expect(paxKeys[LONG255]).toEqual(['path']);
    expect(paxKeys['unicode-ünï-中文-🚢.txt']).toEqual(['path']);
    expect(paxKeys['bigid.txt']).toEqual(['gid', 'uid']);
    expect(paxKeys['sym-long']).toEqual(['linkpath']);
    expect(paxKeys['xattrs.bin']).toEqual(['SCHILY.xattr.security.capability', 'SCHILY.xattr.user.odd', 'SCHILY.xattr.user.text', 'mtime']);
    expect(paxKeys['dev/null']).toEqual([]);
    expect(py.filter((m) => Object.keys(m.pax).length === 0).every((m) => m.offset_data - m.offset === 512)).toBe(true);
  });
});

describe('read back by ferry', () => {
  it('walkTar returns what was encoded', async () => {
    const {entries, end} = await ferryEntries(archive);
    expect(end.hasEndMarker).toBe(true);
    expect(entries.map((e) => e.name)).toEqual(all.map((m) => m.spec.name));
    for (const [i, {spec, data}] of all.entries()) {
      const e = entries[i]!;
      expect(e, spec.name).toMatchObject({type: spec.type, mode: spec.mode, uid: spec.uid, gid: spec.gid, size: data?.length ?? 0, mtime: spec.mtime, linkname: spec.linkname ?? ''});
      for (const [k, v] of spec.pax ?? []) expect(e.pax.get(k)).toEqual(v);
      if (spec.mtimeText) expect(e.mtimeText).toBe(spec.mtimeText);
    }
  });
});

describe.skipIf(peerMissing('tar', 'python3'))('read back by GNU tar', () => {
  it('tar -tvf lists every member with its name, owner and link', () => {
    const out = execFileSync('tar', ['--quoting-style=literal', '--numeric-owner', '-tvf', archive], {encoding: 'utf8'});
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(all.length);
    for (const [i, {spec}] of all.entries()) {
      expect(lines[i], spec.name).toContain(spec.type === 'hardlink' ? `${spec.name} link to ${spec.linkname}` : spec.type === 'symlink' ? `${spec.name} -> ${spec.linkname}` : spec.name);
      expect(lines[i], spec.name).toContain(`${spec.uid}/${spec.gid}`);
    }
    expect(lines.find((l) => l.includes('dev/null'))).toMatch(/^c.* 1,\s*3 /);
  });

  it('tar --xattrs -xf restores binary xattrs, nanosecond mtimes, long names and links', () => {
    const file = path.join(tmp, 'extractable.tar');
    fs.writeFileSync(file, build(extractable));
    const dest = path.join(tmp, 'x');
    fs.mkdirSync(dest);
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xf', file, '-C', dest]);
    const xattr = (name: string): string =>
      execFileSync('python3', ['-c', 'import os,sys; print(os.getxattr(sys.argv[1], sys.argv[2]).hex())', path.join(dest, 'xattrs.bin'), name], {encoding: 'utf8'}).trim();
    expect(xattr('user.odd')).toBe(ODD.toString('hex'));
    expect(xattr('user.text')).toBe(Buffer.from('hello').toString('hex'));
    if (IS_ROOT) expect(xattr('security.capability')).toBe(CAPABILITY.toString('hex'));
    expect(fs.statSync(path.join(dest, 'xattrs.bin'), {bigint: true}).mtimeNs).toBe(1600000000123456789n);
    expect(fs.readFileSync(path.join(dest, LONG255), 'utf8')).toBe('255\n');
    expect(fs.statSync(path.join(dest, 'hard-long')).ino).toBe(fs.statSync(path.join(dest, LONG255)).ino);
    expect(fs.readlinkSync(path.join(dest, 'sym-long'))).toBe(`${'t'.repeat(60)}/${'t'.repeat(60)}/target`);
    expect(fs.readFileSync(path.join(dest, 'unicode-ünï-中文-🚢.txt'), 'utf8')).toBe('u\n');
    if (IS_ROOT) expect(fs.statSync(path.join(dest, 'bigid.txt')).uid).toBe(2 ** 22);
  });
});

describe('determinism', () => {
  it('the same spec always encodes to the same bytes', () => {
    for (const {spec} of all) expect(encodeHeader(spec)).toEqual(encodeHeader(structuredClone(spec)));
  });

  it('PAX records are written in one order, whatever the input order', () => {
    const records: Array<[string, Buffer]> = [
      ['SCHILY.xattr.user.b', Buffer.from('2')],
      ['SCHILY.xattr.user.a', Buffer.from('1')],
      ['atime', Buffer.from('5')],
    ];
    const spec = {...base, name: 'f', type: 'file' as const};
    const forward = encodeHeader({...spec, pax: new Map(records)});
    const backward = encodeHeader({...spec, pax: new Map([...records].reverse())});
    expect(forward).toEqual(backward);
  });

  it('stale derived PAX records from a source entry do not override the fields', async () => {
    const spec: HeaderSpec = {...base, name: 'real-name', type: 'file', pax: new Map([['path', Buffer.from('stale-name')], ['uid', Buffer.from('99')], ['size', Buffer.from('12345')]])};
    const file = path.join(tmp, 'stale.tar');
    fs.writeFileSync(file, Buffer.concat([encodeHeader(spec), END_OF_ARCHIVE]));
    const {entries} = await ferryEntries(file);
    expect(entries.map((e) => [e.name, e.uid, e.size])).toEqual([['real-name', 0, 0]]);
  });
});
