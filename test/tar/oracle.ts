import {execFileSync} from 'node:child_process';
import {fileURLToPath} from 'node:url';
import {expect} from 'vitest';
import {FileRange} from '../../src/io/bytes/file-range.js';
import {walkTar, type TarEnd, type TarEntry} from '../../src/tar/walk.js';

const TARCHECK = fileURLToPath(new URL('../helpers/tarcheck.py', import.meta.url));

/** One member as Python's tarfile reports it (test/helpers/tarcheck.py). */
export interface PyMember {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** PAX records, values as hex of the raw bytes. */
  pax: Record<string, string>;
  sparse: boolean;
  offset: number;
  offset_data: number;
}

export function pythonMembers(path: string): {members: PyMember[]; end: number} {
  return JSON.parse(execFileSync('python3', [TARCHECK, path], {encoding: 'utf8', maxBuffer: 1 << 28})) as {members: PyMember[]; end: number};
}

export async function ferryEntries(path: string): Promise<{entries: TarEntry[]; end: TarEnd}> {
  const {reader, close} = await (await FileRange.ofFile(path)).openReader();
  const entries: TarEntry[] = [];
  try {
    const walk = walkTar(reader);
    for (;;) {
      const next = await walk.next();
      if (next.done) return {entries, end: next.value};
      entries.push(next.value);
    }
  } finally {
    await close();
  }
}

function paxHex(entry: TarEntry): Record<string, string> {
  return Object.fromEntries([...entry.pax].map(([k, v]) => [k, v.toString('hex')]));
}

const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);

/**
 * Walks `path` with ferry and with Python's tarfile and asserts every member agrees field by field
 * (headerOffset == offset, dataOffset == offset_data). Returns both listings for further checks.
 */
export async function expectSameAsPython(path: string): Promise<{ferry: TarEntry[]; python: PyMember[]; end: TarEnd}> {
  const py = pythonMembers(path);
  const {entries, end} = await ferryEntries(path);
  expect(entries.map((e) => e.headerOffset)).toEqual(py.members.map((m) => m.offset));
  for (const [i, m] of py.members.entries()) {
    const e = entries[i]!;
    const where = `${path} member ${i} (${m.name})`;
    // tarfile strips the trailing slash of directory names and turns a V7 "name/" file into a dir.
    const name = e.type === 'dir' ? e.name.replace(/\/+$/, '') || '/' : e.name;
    expect(name, where).toBe(m.name === '' ? '/' : m.name);
    expect(e.type === 'dir' && e.typeflag === '\0' ? '5' : e.typeflag, where).toBe(m.type);
    expect(e.mode, where).toBe(m.mode);
    expect(e.uid, where).toBe(m.uid);
    expect(e.gid, where).toBe(m.gid);
    expect(e.mtime, where).toBe(m.mtime);
    expect(e.linkname, where).toBe(m.linkname);
    expect(e.uname, where).toBe(m.uname);
    expect(e.gname, where).toBe(m.gname);
    expect(e.devmajor, where).toBe(m.devmajor);
    expect(e.devminor, where).toBe(m.devminor);
    expect(paxHex(e), where).toEqual(m.pax);
    expect(e.sparse, where).toBe(m.sparse);
    if (m.sparse) {
      // tarfile reports the expanded size and the data after any sparse map; ferry reports the
      // stored bytes (map included), which must end right where the next member's padding ends.
      expect(e.dataOffset, where).toBeLessThanOrEqual(m.offset_data);
      const nextOffset = py.members[i + 1]?.offset ?? end.endOffset;
      expect(e.dataOffset + Math.ceil(e.size / 512) * 512, where).toBe(nextOffset);
    } else {
      expect(e.dataOffset, where).toBe(m.offset_data);
      expect(e.size, where).toBe(HEADER_ONLY.has(m.type) ? 0 : m.size);
    }
    expect(e.headerBytes.length, where).toBe(e.dataOffset - e.headerOffset);
  }
  expect(entries.length).toBe(py.members.length);
  expect(end.endOffset).toBe(py.end);
  return {ferry: entries, python: py.members, end};
}
