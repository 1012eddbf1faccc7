import {FerryError} from '../errors.js';

export const BLOCK = 512;

export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo' | 'other';

/** One decoded 512-byte header block, before PAX/GNU overrides are applied. */
export interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  checksum: number;
  typeflag: string;
  linkname: string;
  magic: 'ustar' | 'gnu' | 'v7';
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** GNU sparse header: real size of the expanded file. */
  gnuRealSize?: number;
  gnuIsExtended?: boolean;
}

export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** Reads a NUL-terminated field as bytes → string. Names are kept as UTF-8 (latin1 fallback keeps bytes). */
function readString(block: Uint8Array, offset: number, length: number): string {
  let end = offset;
  const limit = offset + length;
  while (end < limit && block[end] !== 0) end++;
  return decodeName(block.subarray(offset, end));
}

export function decodeName(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = buf.toString('utf8');
  // Invalid UTF-8 would map to U+FFFD and lose bytes; keep them as latin1 so they round-trip.
  return text.includes('\uFFFD') && !Buffer.from(text, 'utf8').equals(buf) ? buf.toString('latin1') : text;
}

/** Octal (NUL/space padded) or GNU base-256 (high bit of the first byte set, two's complement). */
export function readNumber(block: Uint8Array, offset: number, length: number, field: string, at: number): number {
  const first = block[offset]!;
  if (first & 0x80) {
    const negative = (first & 0x40) !== 0;
    let value = 0n;
    for (let i = 0; i < length; i++) {
      let byte = block[offset + i]!;
      // Invert first, then drop the marker bit (Go's parseNumeric does the same).
      if (negative) byte ^= 0xff;
      if (i === 0) byte &= 0x7f;
      value = (value << 8n) | BigInt(byte);
    }
    if (negative) value = -(value + 1n);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new FerryError('BAD_TAR', `tar header at offset ${at}: ${field} out of range`);
    }
    return Number(value);
  }
  let text = '';
  for (let i = offset; i < offset + length; i++) {
    const c = block[i]!;
    if (c === 0) break;
    text += String.fromCharCode(c);
  }
  text = text.trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new FerryError('BAD_TAR', `tar header at offset ${at}: invalid ${field} field ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

export function computeChecksum(block: Uint8Array): {unsigned: number; signed: number} {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return {unsigned, signed};
}

export function decodeHeader(block: Uint8Array, at: number): RawHeader {
  const checksum = readNumber(block, 148, 8, 'checksum', at);
  const sums = computeChecksum(block);
  if (checksum !== sums.unsigned && checksum !== sums.signed) {
    throw new FerryError('BAD_TAR', `invalid tar header at offset ${at}: checksum mismatch (not a tar, or corrupt)`);
  }
  const magicBytes = Buffer.from(block.buffer, block.byteOffset + 257, 8).toString('latin1');
  const magic = magicBytes === 'ustar  \0' ? 'gnu' : magicBytes.startsWith('ustar\0') ? 'ustar' : 'v7';
  let name = readString(block, 0, 100);
  if (magic === 'ustar') {
    const prefix = readString(block, 345, 155);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  const header: RawHeader = {
    name,
    mode: readNumber(block, 100, 8, 'mode', at),
    uid: readNumber(block, 108, 8, 'uid', at),
    gid: readNumber(block, 116, 8, 'gid', at),
    size: readNumber(block, 124, 12, 'size', at),
    mtime: readNumber(block, 136, 12, 'mtime', at),
    checksum,
    typeflag: String.fromCharCode(block[156]!),
    linkname: readString(block, 157, 100),
    magic,
    uname: magic === 'v7' ? '' : readString(block, 265, 32),
    gname: magic === 'v7' ? '' : readString(block, 297, 32),
    devmajor: magic === 'v7' ? 0 : readNumber(block, 329, 8, 'devmajor', at),
    devminor: magic === 'v7' ? 0 : readNumber(block, 337, 8, 'devminor', at),
  };
  if (header.size < 0) throw new FerryError('BAD_TAR', `tar header at offset ${at}: negative size ${header.size}`);
  if (magic === 'gnu' && header.typeflag === 'S') {
    header.gnuIsExtended = block[482] !== 0;
    header.gnuRealSize = readNumber(block, 483, 12, 'realsize', at);
  }
  return header;
}

export function entryTypeOf(typeflag: string, name: string): EntryType {
  switch (typeflag) {
    case '0':
    case '7':
      return 'file';
    case '\0':
      // Old V7 archives: a trailing slash means directory (Go archive/tar does the same).
      return name.endsWith('/') ? 'dir' : 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '5':
      return 'dir';
    case '6':
      return 'fifo';
    case 'S':
      return 'file';
    default:
      return 'other';
  }
}

/** Types that never carry data blocks, whatever their size field says (docs/formats.md §6). */
export function isHeaderOnly(typeflag: string): boolean {
  return typeflag === '1' || typeflag === '2' || typeflag === '3' || typeflag === '4' || typeflag === '5' || typeflag === '6';
}

export function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}
