import {FerryError} from '../errors.js';
import type {ByteReader} from './reader.js';
import {BLOCK, decodeHeader, decodeName, entryTypeOf, isHeaderOnly, isZeroBlock, paddedSize, type EntryType} from './header.js';
import {parsePax, paxNumber, paxString, paxTime, type PaxRecords} from './pax.js';

/** A tar member as stored: decoded fields, PAX records as raw bytes, and where its bytes are. */
export interface TarEntry {
  /** Path as written in the archive (after PAX/GNU long-name overrides), not cleaned. */
  name: string;
  type: EntryType;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow the header (0 for header-only types). */
  size: number;
  /** Seconds since the epoch; `mtimeText` keeps PAX's exact decimal when there was one. */
  mtime: number;
  mtimeText?: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** Records of this entry's own `x` header (global `g` records are merged underneath). */
  pax: PaxRecords;
  /** GNU sparse member (typeflag S or PAX GNU.sparse.*): recognised, its data is a sparse map. */
  sparse: boolean;
  /** Offset of the first header block of this entry (its `x`/`L`/`K` pseudo-entries included; a
   * preceding global `g` header is not part of any entry). */
  headerOffset: number;
  /** Offset of the entry's data. headerBytes = bytes [headerOffset, dataOffset). */
  dataOffset: number;
  headerBytes: Buffer;
}

export interface WalkLimits {
  /** Largest PAX or GNU long-name pseudo-entry accepted (bombs: a 10 GB "path"). */
  maxMetaSize: number;
}

export const DEFAULT_WALK_LIMITS: WalkLimits = {maxMetaSize: 1 << 20};

export interface TarEnd {
  /** Offset of the end-of-archive marker (or of EOF when the marker is missing). */
  endOffset: number;
  /** Whether the two-zero-block marker was present. */
  hasEndMarker: boolean;
}

/**
 * Walks a tar by headers. After each yielded entry the consumer may read the body through
 * `reader.chunks(entry.size)`; whatever it leaves unread is skipped (seeked on files). Returns the
 * end-of-archive position. Go's rules (docs/formats.md §6): EOF at a block boundary or after one zero
 * block ends the archive; nothing past the marker is read.
 */
export async function* walkTar(reader: ByteReader, limits: WalkLimits = DEFAULT_WALK_LIMITS): AsyncGenerator<TarEntry, TarEnd> {
  let global: PaxRecords = new Map();
  for (;;) {
    let headerOffset = reader.position;
    const metaBlocks: Buffer[] = [];
    let pax: PaxRecords = new Map();
    let longName: string | undefined;
    let longLink: string | undefined;
    let block: Buffer;
    for (;;) {
      const at = reader.position;
      block = await reader.readUpTo(BLOCK);
      if (block.length === 0 && metaBlocks.length === 0) return {endOffset: at, hasEndMarker: false};
      if (block.length < BLOCK) throw new FerryError('BAD_TAR', `${reader.label}: truncated tar header at offset ${at}`);
      if (isZeroBlock(block)) {
        if (metaBlocks.length > 0) throw new FerryError('BAD_TAR', `${reader.label}: extended header at offset ${headerOffset} is not followed by an entry`);
        const second = await reader.readUpTo(BLOCK);
        if (second.length === 0 || isZeroBlock(second)) return {endOffset: at, hasEndMarker: second.length === BLOCK};
        throw new FerryError('BAD_TAR', `${reader.label}: invalid tar: zero block followed by data at offset ${at}`);
      }
      const raw = named(reader.label, () => decodeHeader(block, at));
      const flag = raw.typeflag;
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        if (raw.size > limits.maxMetaSize) {
          throw new FerryError('LIMIT_EXCEEDED', `${reader.label}: ${flag === 'L' || flag === 'K' ? 'GNU long name' : 'PAX header'} at offset ${at} is ${raw.size} bytes (limit ${limits.maxMetaSize})`);
        }
        const data = await readExact(reader, raw.size, `extended header at offset ${at}`);
        await reader.skip(paddedSize(raw.size) - raw.size);
        if (flag === 'g') {
          // A global header belongs to no entry (its records are merged into every later entry's
          // pax); the next entry starts after it, as Python's tarfile and Go's archive/tar see it.
          global = new Map([...global, ...named(reader.label, () => parsePax(data, at))]);
          if (metaBlocks.length === 0) headerOffset = reader.position;
          continue;
        }
        metaBlocks.push(block, data, Buffer.alloc(paddedSize(raw.size) - raw.size));
        if (flag === 'x') pax = new Map([...pax, ...named(reader.label, () => parsePax(data, at))]);
        else if (flag === 'L') longName = cString(data);
        else longLink = cString(data);
        continue;
      }
      // Old GNU sparse: more sparse-map blocks follow the header when isextended is set; they belong
      // to the header, and the data starts after them.
      if (flag === 'S' && raw.gnuIsExtended) {
        for (let extended = true; extended; ) {
          const ext = await readExact(reader, BLOCK, `GNU sparse header of the member at offset ${at}`);
          metaBlocks.push(block);
          block = ext;
          extended = ext[504] !== 0;
        }
      }
      const merged: PaxRecords = global.size > 0 ? new Map([...global, ...pax]) : pax;
      // GNU sparse 0.1/1.0 keep the real name in GNU.sparse.name (the header holds GNUSparseFile.N/…).
      const name = paxString(merged, 'GNU.sparse.name') ?? paxString(merged, 'path') ?? longName ?? raw.name;
      const linkname = paxString(merged, 'linkpath') ?? longLink ?? raw.linkname;
      const fields = named(reader.label, () => ({size: paxNumber(merged, 'size', at), mtime: paxTime(merged, 'mtime', at), uid: paxNumber(merged, 'uid', at), gid: paxNumber(merged, 'gid', at)}));
      const paxSize = fields.size;
      const sparse = flag === 'S' || merged.has('GNU.sparse.major') || merged.has('GNU.sparse.map') || merged.has('GNU.sparse.size');
      const storedSize = isHeaderOnly(flag) ? 0 : (paxSize ?? raw.size);
      if (storedSize < 0) throw new FerryError('BAD_TAR', `${reader.label}: negative size in tar header at offset ${at}`);
      const mtime = fields.mtime;
      const entry: TarEntry = {
        name,
        type: entryTypeOf(flag, name),
        typeflag: flag,
        mode: raw.mode,
        uid: fields.uid ?? raw.uid,
        gid: fields.gid ?? raw.gid,
        size: storedSize,
        mtime: mtime?.seconds ?? raw.mtime,
        linkname,
        uname: paxString(merged, 'uname') ?? raw.uname,
        gname: paxString(merged, 'gname') ?? raw.gname,
        devmajor: raw.devmajor,
        devminor: raw.devminor,
        pax: merged,
        sparse,
        headerOffset,
        dataOffset: reader.position,
        headerBytes: metaBlocks.length === 0 ? block : Buffer.concat([...metaBlocks, block]),
      };
      if (mtime) entry.mtimeText = mtime.text;
      yield entry;
      const consumed = reader.position - entry.dataOffset;
      const rest = paddedSize(entry.size) - consumed;
      if (rest > 0) {
        const skipped = await reader.skip(rest);
        // A short final padding block is tolerated only if every data byte was present.
        if (skipped < rest && consumed + skipped < entry.size) {
          throw new FerryError('BAD_TAR', `${reader.label}: tar member "${entry.name}" at offset ${headerOffset} is truncated (${entry.size} bytes declared)`);
        }
      }
      break;
    }
  }
}

/** Runs a header decoder, naming the tar (the layer, the archive) in any error it throws. */
function named<T>(label: string, decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof FerryError && !e.message.startsWith(`${label}:`)) throw new FerryError(e.code, `${label}: ${e.message}`, {cause: e});
    throw e;
  }
}

async function readExact(reader: ByteReader, n: number, what: string): Promise<Buffer> {
  const buf = await reader.readUpTo(n);
  if (buf.length < n) throw new FerryError('BAD_TAR', `${reader.label}: truncated tar: ${what}`);
  return buf;
}

function cString(data: Buffer): string {
  const nul = data.indexOf(0);
  return decodeName(nul >= 0 ? data.subarray(0, nul) : data);
}

/** Lexical clean of a member path: strips `./`, leading `/`, collapses `.`; `..` is kept for callers to judge. */
export function cleanPath(name: string): string {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out.at(-1) !== '..') out.pop();
      else out.push('..');
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

/** True when a member name would land outside the root when extracted (absolute or `..` escapes). */
export function escapesRoot(name: string): boolean {
  if (name.startsWith('/')) return true;
  let depth = 0;
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    depth += part === '..' ? -1 : 1;
    if (depth < 0) return true;
  }
  return false;
}

/**
 * Why an entry would reach outside the image root, or undefined (verify reports it, writers refuse
 * it). Docker's layer applier (pkg/archive createTarFile/UnpackLayer) is the reference, and ferry is
 * at least as strict:
 * - a name whose cleaned form climbs out (`../x`, `a/../../x`): docker refuses ("is outside of"),
 *   ferry too; an absolute name: docker joins it under the root, ferry refuses it;
 * - a hardlink target, taken from the image root: docker refuses one that climbs out ("invalid
 *   hardlink"), ferry too (an absolute target is read from the root, as docker does);
 * - symlink targets are not judged: pkg/archive's "invalid symlink" check never fires in docker's
 *   chrooted layer applier, and docker 20.10 loads and exports `usr/lib/x -> ../../../../lib/x` and
 *   `up -> ../../..` unchanged (checked against a private dockerd). ferry never follows a symlink while
 *   applying layers, and `cat` resolves targets inside the image root, so such links are kept as docker
 *   keeps them; refusing them would refuse real images docker accepts.
 */
export function entryPathProblem(entry: Pick<TarEntry, 'name' | 'type' | 'linkname'>): string | undefined {
  if (entry.name.startsWith('/')) return `entry "${entry.name}" has an absolute path`;
  if (escapesRoot(entry.name)) return `entry "${entry.name}" escapes the image root`;
  if (entry.name.includes('\0')) return `entry "${entry.name}" contains a NUL byte`;
  if (entry.type === 'hardlink' && (entry.linkname.startsWith('/') ? escapesRoot(entry.linkname.slice(1)) : escapesRoot(entry.linkname))) {
    return `hardlink "${entry.name}" points outside the image root ("${entry.linkname}")`;
  }
  return undefined;
}

/**
 * What verify reports about one entry of a layer, or undefined: a path that reaches outside the
 * root (entryPathProblem in src/tar/walk.ts), or a second entry for one path (docker load rejects
 * those). `seen` carries the cleaned names of the entries before it.
 */
export function entryProblem(entry: Pick<TarEntry, 'name' | 'type' | 'linkname'>, seen: Set<string>): string | undefined {
  const unsafe = entryPathProblem(entry);
  if (unsafe) return unsafe;
  const key = entry.name.replace(/^(\.\/)+|\/+$/g, '');
  const duplicate = seen.has(key) && entry.type !== 'dir';
  seen.add(key);
  return duplicate ? `duplicate entry "${entry.name}" (docker load rejects duplicate paths)` : undefined;
}

/** Walks a layer's entries and throws on the first entryProblem (UNSAFE_PATH, or BAD_TAR for a duplicate). */
export async function refuseEntryProblems(reader: ByteReader, label: string): Promise<void> {
  const seen = new Set<string>();
  for await (const entry of walkTar(reader)) {
    const problem = entryProblem(entry, seen);
    if (problem) throw new FerryError(problem.startsWith('duplicate') ? 'BAD_TAR' : 'UNSAFE_PATH', `${label}: ${problem}`);
  }
}
