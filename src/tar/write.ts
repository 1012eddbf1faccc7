import {BLOCK, paddedSize, type EntryType} from './header.js';
import {encodePax, type PaxRecords} from './pax.js';

/** What ferry writes for one member. Unknown PAX records in `pax` (xattrs, atime…) are kept. */
export interface HeaderSpec {
  name: string;
  type: EntryType;
  /** Overrides the flag derived from `type` (e.g. keep '7'). */
  typeflag?: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  /** Exact PAX mtime text (sub-second) to preserve; written only when it is not a whole number. */
  mtimeText?: string | undefined;
  linkname?: string;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: PaxRecords;
}

const TYPEFLAG: Record<EntryType, string> = {file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6', other: '0'};
const MAX_OCTAL_8 = 0o7777777; // 7 digits + NUL
const MAX_OCTAL_12 = 0o77777777777;
/** Keys this encoder recomputes; a stale value from the source must not win over the fields. */
const DERIVED = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname', 'mtime']);

function isAscii(s: string): boolean {
  return /^[\x01-\x7f]*$/.test(s);
}

function putString(block: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  bytes.copy(block, offset, 0, Math.min(bytes.length, length));
}

function putOctal(block: Buffer, offset: number, length: number, value: number): void {
  const text = Math.max(0, Math.trunc(value)).toString(8).padStart(length - 1, '0');
  block.write(text.slice(-(length - 1)), offset, 'latin1');
  block[offset + length - 1] = 0;
}

/** Splits a path into ustar prefix (≤155) + name (≤100) at a slash, or returns undefined. */
function splitUstar(name: string): [prefix: string, base: string] | undefined {
  const bytes = Buffer.byteLength(name);
  if (bytes <= 100) return ['', name];
  if (bytes > 256) return undefined;
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const base = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(base) <= 100 && base !== '') return [prefix, base];
  }
  return undefined;
}

function ustarBlock(spec: HeaderSpec, typeflag: string, prefix: string, name: string, size: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  putString(block, 0, 100, name);
  putOctal(block, 100, 8, spec.mode & 0o7777777); // type bits included when the caller sets them (docker export)
  putOctal(block, 108, 8, spec.uid <= MAX_OCTAL_8 ? spec.uid : 0);
  putOctal(block, 116, 8, spec.gid <= MAX_OCTAL_8 ? spec.gid : 0);
  putOctal(block, 124, 12, size <= MAX_OCTAL_12 ? size : 0);
  putOctal(block, 136, 12, spec.mtime >= 0 && spec.mtime <= MAX_OCTAL_12 ? Math.floor(spec.mtime) : 0);
  block.write(typeflag, 156, 'latin1');
  putString(block, 157, 100, spec.linkname ?? '');
  block.write('ustar\u000000', 257, 'latin1');
  putString(block, 265, 32, spec.uname ?? '');
  putString(block, 297, 32, spec.gname ?? '');
  putOctal(block, 329, 8, spec.devmajor ?? 0);
  putOctal(block, 337, 8, spec.devminor ?? 0);
  putString(block, 345, 155, prefix);
  writeChecksum(block);
  return block;
}

export function writeChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i]!;
  block.write(sum.toString(8).padStart(6, '0'), 148, 'latin1');
  block[154] = 0;
  block[155] = 0x20;
}

/**
 * Encodes a member's header blocks deterministically: plain USTAR when the fields fit, with a PAX
 * `x` header in front only for what does not (what Go's archive/tar and Docker do, docs/formats.md §6).
 */
export function encodeHeader(spec: HeaderSpec): Buffer {
  const typeflag = spec.typeflag ?? TYPEFLAG[spec.type];
  const records: PaxRecords = new Map();
  for (const [k, v] of spec.pax ?? []) if (!DERIVED.has(k)) records.set(k, v);
  let split = isAscii(spec.name) ? splitUstar(spec.name) : undefined;
  if (!split) {
    records.set('path', Buffer.from(spec.name, 'utf8'));
    split = ['', truncateUtf8(spec.name, 100)];
  }
  const linkname = spec.linkname ?? '';
  if (Buffer.byteLength(linkname) > 100 || !isAscii(linkname)) records.set('linkpath', Buffer.from(linkname, 'utf8'));
  if (spec.size > MAX_OCTAL_12) records.set('size', Buffer.from(String(spec.size)));
  if (spec.uid > MAX_OCTAL_8) records.set('uid', Buffer.from(String(spec.uid)));
  if (spec.gid > MAX_OCTAL_8) records.set('gid', Buffer.from(String(spec.gid)));
  if (Buffer.byteLength(spec.uname ?? '') > 32) records.set('uname', Buffer.from(spec.uname ?? '', 'utf8'));
  if (Buffer.byteLength(spec.gname ?? '') > 32) records.set('gname', Buffer.from(spec.gname ?? '', 'utf8'));
  const fractional = spec.mtimeText !== undefined && /\.\d*[1-9]/.test(spec.mtimeText);
  if (fractional || spec.mtime < 0 || spec.mtime > MAX_OCTAL_12) records.set('mtime', Buffer.from(spec.mtimeText ?? String(spec.mtime)));
  const main = ustarBlock(spec, typeflag, split[0], split[1], spec.size);
  if (records.size === 0) return main;
  const body = encodePax(records);
  const slash = spec.name.replace(/\/+$/, '').lastIndexOf('/');
  const dir = slash >= 0 ? spec.name.slice(0, slash) : '.';
  const base = spec.name.replace(/\/+$/, '').slice(slash + 1);
  const paxName = truncateUtf8(`${dir}/PaxHeaders.0/${base}`, 100);
  const paxHeader = ustarBlock({name: paxName, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0}, 'x', '', isAscii(paxName) ? paxName : 'PaxHeaders.0', body.length);
  return Buffer.concat([paxHeader, body, Buffer.alloc(paddedSize(body.length) - body.length), main]);
}

function truncateUtf8(s: string, bytes: number): string {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= bytes) return s;
  let end = bytes;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end).toString('utf8');
}

export function padding(size: number): Buffer {
  return Buffer.alloc(paddedSize(size) - size);
}

/** Two zero blocks, as Go writers emit (no record padding). */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);
