import {FerryError} from '../errors.js';

/**
 * PAX extended header records, values kept as raw bytes: `SCHILY.xattr.security.capability` is binary
 * and must survive byte for byte (docs/architecture.md, "Why a tar codec of our own").
 */
export type PaxRecords = Map<string, Buffer>;

export function parsePax(data: Buffer, at: number): PaxRecords {
  const records: PaxRecords = new Map();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // NUL padding after the last record
    const space = data.indexOf(0x20, pos);
    if (space < 0 || space - pos > 20) throw new FerryError('BAD_TAR', `invalid PAX header at offset ${at}: malformed record length`);
    const lengthText = data.toString('latin1', pos, space);
    if (!/^[0-9]+$/.test(lengthText)) throw new FerryError('BAD_TAR', `invalid PAX header at offset ${at}: malformed record length`);
    const length = Number(lengthText);
    const end = pos + length;
    if (length <= space - pos + 1 || end > data.length || data[end - 1] !== 0x0a) {
      throw new FerryError('BAD_TAR', `invalid PAX header at offset ${at}: record overruns header`);
    }
    const eq = data.indexOf(0x3d, space + 1);
    if (eq < 0 || eq >= end) throw new FerryError('BAD_TAR', `invalid PAX header at offset ${at}: record without '='`);
    const key = data.toString('utf8', space + 1, eq);
    const value = Buffer.from(data.subarray(eq + 1, end - 1));
    records.set(key, value);
    pos = end;
  }
  return records;
}

/** Encodes records sorted by key (deterministic; Go sorts them too). Lengths count themselves. */
export function encodePax(records: PaxRecords): Buffer {
  const parts: Buffer[] = [];
  for (const key of [...records.keys()].sort()) {
    const value = records.get(key)!;
    const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
    let length = body.length + 1;
    while (String(length).length + body.length !== length) length = String(length).length + body.length;
    parts.push(Buffer.from(String(length), 'latin1'), body);
  }
  return Buffer.concat(parts);
}

export function paxString(records: PaxRecords, key: string): string | undefined {
  const value = records.get(key);
  return value === undefined ? undefined : value.toString('utf8');
}

export function paxNumber(records: PaxRecords, key: string, at: number): number | undefined {
  const text = paxString(records, key);
  if (text === undefined) return undefined;
  if (!/^-?[0-9]+$/.test(text)) throw new FerryError('BAD_TAR', `invalid PAX ${key} ${JSON.stringify(text)} at offset ${at}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new FerryError('BAD_TAR', `PAX ${key} out of range at offset ${at}`);
  return n;
}

/** PAX time: seconds with an optional fraction; returned as the exact decimal text and a number. */
export function paxTime(records: PaxRecords, key: string, at: number): {text: string; seconds: number} | undefined {
  const text = paxString(records, key);
  if (text === undefined) return undefined;
  if (!/^-?[0-9]+(\.[0-9]+)?$/.test(text)) throw new FerryError('BAD_TAR', `invalid PAX ${key} ${JSON.stringify(text)} at offset ${at}`);
  return {text, seconds: Number(text)};
}

export const XATTR_PREFIX = 'SCHILY.xattr.';

export function xattrsOf(records: PaxRecords): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [k, v] of records) if (k.startsWith(XATTR_PREFIX)) out.set(k.slice(XATTR_PREFIX.length), v);
  return out;
}
