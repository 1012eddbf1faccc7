import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import type {FileHandle} from 'node:fs/promises';
import {open} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {Readable} from 'node:stream';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FerryError} from '../../src/errors.js';
import {RegionReader, StreamReader, type ByteReader} from '../../src/io/bytes/readers.js';
import {cleanPath, escapesRoot, walkTar, type TarEnd, type TarEntry} from '../../src/tar/walk.js';
import {peerMissing} from '../helpers/peers.js';
import {pythonMembers} from './oracle.js';

/**
 * walkTar's framing rules: end of archive (docs/formats.md §6: EOF at a block boundary or after one zero
 * block ends it, a zero block followed by data is an error, nothing past the marker is read),
 * truncation, and skipping bodies by offset. The tars come from GNU tar and Python's tarfile.
 */

let tmp: string;
let base: Buffer; // GNU tar, ustar: a.txt (1000 bytes), b.txt (3 bytes), padded to a 10240-byte record
let offsets: {a: number; aData: number; b: number; bData: number; end: number};

async function walkAll(reader: ByteReader): Promise<{entries: TarEntry[]; end: TarEnd}> {
  const entries: TarEntry[] = [];
  const walk = walkTar(reader);
  for (;;) {
    const next = await walk.next();
    if (next.done) return {entries, end: next.value};
    entries.push(next.value);
  }
}

async function walkBuffer(bytes: Buffer): Promise<{entries: TarEntry[]; end: TarEnd; position: number}> {
  const file = path.join(tmp, `case-${Math.random().toString(36).slice(2)}.tar`);
  fs.writeFileSync(file, bytes);
  const handle = await open(file, 'r');
  try {
    const reader = new RegionReader(handle, {path: file, offset: 0, size: bytes.length, label: file});
    const result = await walkAll(reader);
    return {...result, position: reader.position};
  } finally {
    await handle.close();
  }
}

async function walkStream(bytes: Buffer): Promise<{entries: TarEntry[]; end: TarEnd}> {
  // 700-byte chunks: headers and bodies straddle chunk boundaries
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 700) chunks.push(bytes.subarray(i, i + 700));
  return walkAll(new StreamReader(Readable.from(chunks), 'stream'));
}

async function expectBadTar(bytes: Buffer, message: RegExp): Promise<void> {
  for (const run of [walkBuffer, walkStream]) {
    const error = await run(bytes).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error, run.name).toBeInstanceOf(FerryError);
    expect((error as FerryError).code, run.name).toBe('BAD_TAR');
    expect((error as FerryError).message, run.name).toMatch(message);
  }
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-walk-'));
  const src = path.join(tmp, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'a.txt'), Buffer.alloc(1000, 'a'));
  fs.writeFileSync(path.join(src, 'b.txt'), 'bbb');
  const file = path.join(tmp, 'base.tar');
  execFileSync('tar', ['--format=ustar', '-cf', file, '-C', src, 'a.txt', 'b.txt']);
  base = fs.readFileSync(file);
  const py = pythonMembers(file);
  offsets = {a: py.members[0]!.offset, aData: py.members[0]!.offset_data, b: py.members[1]!.offset, bData: py.members[1]!.offset_data, end: py.end};
});

afterAll(() => {
  fs.rmSync(tmp, {recursive: true, force: true});
});

describe.skipIf(peerMissing('tar', 'python3'))('end of archive (docs/formats.md §6)', () => {
  it('GNU tar output: two zero blocks, then record padding that is never read', async () => {
    expect(base.length).toBe(10240);
    const {entries, end, position} = await walkBuffer(base);
    expect(entries.map((e) => e.name)).toEqual(['a.txt', 'b.txt']);
    expect(end).toEqual({endOffset: offsets.end, hasEndMarker: true});
    expect(position).toBe(offsets.end + 1024);
    expect(await walkStream(base)).toMatchObject({end: {endOffset: offsets.end, hasEndMarker: true}});
  });

  it('garbage after the two-block marker is ignored', async () => {
    const bytes = Buffer.concat([base.subarray(0, offsets.end + 1024), Buffer.from('not a tar header at all'.repeat(40))]);
    const {entries, end, position} = await walkBuffer(bytes);
    expect(entries).toHaveLength(2);
    expect(end).toEqual({endOffset: offsets.end, hasEndMarker: true});
    expect(position).toBe(offsets.end + 1024);
  });

  it('EOF at a block boundary ends the archive, without a marker', async () => {
    const {entries, end} = await walkBuffer(base.subarray(0, offsets.end));
    expect(entries).toHaveLength(2);
    expect(end).toEqual({endOffset: offsets.end, hasEndMarker: false});
    expect((await walkStream(base.subarray(0, offsets.end))).end).toEqual({endOffset: offsets.end, hasEndMarker: false});
  });

  it('EOF after one zero block ends the archive', async () => {
    const {entries, end} = await walkBuffer(base.subarray(0, offsets.end + 512));
    expect(entries).toHaveLength(2);
    expect(end).toEqual({endOffset: offsets.end, hasEndMarker: false});
  });

  it('a zero block followed by a non-zero block is an error', async () => {
    const bytes = Buffer.concat([base.subarray(0, offsets.end + 512), base.subarray(offsets.b, offsets.b + 512)]);
    await expectBadTar(bytes, new RegExp(`zero block followed by data at offset ${offsets.end}`));
  });

  it('an empty input is an archive with no entries', async () => {
    expect((await walkBuffer(Buffer.alloc(0))).entries).toEqual([]);
  });
});

describe.skipIf(peerMissing('tar', 'python3'))('truncation and corruption raise BAD_TAR', () => {
  it('a truncated header', async () => {
    await expectBadTar(base.subarray(0, offsets.b + 300), new RegExp(`truncated tar header at offset ${offsets.b}`));
  });

  it('a truncated body', async () => {
    await expectBadTar(base.subarray(0, offsets.aData + 600), /"a\.txt".*truncated/);
  });

  it('a body cut inside its padding is accepted only when every data byte is there', async () => {
    // a.txt's 1000 data bytes end at aData+1000; cut 10 bytes later, inside the padding
    const {entries} = await walkBuffer(base.subarray(0, offsets.aData + 1010));
    expect(entries.map((e) => e.name)).toEqual(['a.txt']);
  });

  it('a header with a bad checksum', async () => {
    const bytes = Buffer.from(base);
    bytes[offsets.b + 10] = bytes[offsets.b + 10]! ^ 0x01; // inside b.txt's name field
    await expectBadTar(bytes, new RegExp(`offset ${offsets.b}: checksum mismatch`));
  });

  it('a truncated PAX header', async () => {
    const file = path.join(tmp, 'pax.tar');
    execFileSync('python3', ['-c', "import tarfile,io,sys\nwith tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT) as t:\n i=tarfile.TarInfo('x'*300); i.size=1; t.addfile(i, io.BytesIO(b'1'))", file]);
    const bytes = fs.readFileSync(file);
    const py = pythonMembers(file).members[0]!;
    expect(py.offset_data).toBeGreaterThan(1024); // x header + its data + the entry's header
    await expectBadTar(bytes.subarray(0, 512 + 100), /truncated tar/);
  });
});

describe.skipIf(peerMissing('tar', 'python3'))('reading', () => {
  it('a walk over a RegionReader reads the headers only, never the bodies', async () => {
    const src = path.join(tmp, 'big');
    fs.mkdirSync(src);
    for (const n of ['one', 'two', 'three']) fs.writeFileSync(path.join(src, n), Buffer.alloc(3 << 20, n));
    const file = path.join(tmp, 'big.tar');
    execFileSync('tar', ['--format=pax', '-cf', file, '-C', src, 'one', 'two', 'three']);
    const py = pythonMembers(file);
    const headerBytes = py.members.reduce((n, m) => n + (m.offset_data - m.offset), 0);
    const handle = await open(file, 'r');
    let bytesRead = 0;
    // a FileHandle that counts what is read through it
    const counting = {
      read: async (...args: Parameters<FileHandle['read']>) => {
        const r = await (handle.read as (...a: unknown[]) => ReturnType<FileHandle['read']>)(...args);
        bytesRead += r.bytesRead;
        return r;
      },
    } as unknown as FileHandle;
    try {
      const reader = new RegionReader(counting, {path: file, offset: 0, size: fs.statSync(file).size, label: file});
      const {entries, end} = await walkAll(reader);
      expect(entries.map((e) => e.name)).toEqual(['one', 'two', 'three']);
      expect(end.hasEndMarker).toBe(true);
      // Header blocks and PAX records only (their padding is skipped too); the bodies are 9 MiB.
      expect(bytesRead).toBeGreaterThanOrEqual(3 * 512 + 1024);
      expect(bytesRead).toBeLessThanOrEqual(headerBytes + 1024);
    } finally {
      await handle.close();
    }
  });

  it('a consumer reads bodies through reader.chunks(), on files and on streams', async () => {
    const handle = await open(path.join(tmp, 'base.tar'), 'r');
    for (const [label, reader] of [
      ['file', new RegionReader(handle, {path: 'base', offset: 0, size: base.length, label: 'base'})],
      ['stream', new StreamReader(Readable.from([base.subarray(0, 333), base.subarray(333)]), 'stream')],
    ] as const) {
      const bodies: Record<string, string> = {};
      const walk = walkTar(reader);
      for (;;) {
        const next = await walk.next();
        if (next.done) break;
        // b.txt is read only partly: the walk must still skip the rest and its padding
        const want = next.value.name === 'b.txt' ? 2 : next.value.size;
        const parts: Buffer[] = [];
        for await (const c of reader.chunks(want, next.value.name)) parts.push(c);
        bodies[next.value.name] = Buffer.concat(parts).toString();
      }
      expect(bodies, label).toEqual({'a.txt': 'a'.repeat(1000), 'b.txt': 'bb'});
      expect(reader.position, label).toBe(offsets.end + 1024);
    }
    await handle.close();
  });

  it('the body of a member is its byte range in the file', async () => {
    const {entries} = await walkBuffer(base);
    expect(base.subarray(entries[1]!.dataOffset, entries[1]!.dataOffset + entries[1]!.size).toString()).toBe('bbb');
    expect(entries[1]!.headerBytes).toEqual(base.subarray(offsets.b, offsets.bData));
  });
});

describe('path helpers', () => {
  it('cleanPath strips ./ and leading /, collapses . and inner ..', () => {
    expect(cleanPath('./a/./b/')).toBe('a/b');
    expect(cleanPath('/etc/passwd')).toBe('etc/passwd');
    expect(cleanPath('a/../b')).toBe('b');
    expect(cleanPath('../x')).toBe('../x');
    expect(cleanPath('./')).toBe('');
  });

  it('escapesRoot flags absolute names and .. escapes only', () => {
    expect(escapesRoot('/etc/passwd')).toBe(true);
    expect(escapesRoot('../x')).toBe(true);
    expect(escapesRoot('a/../../x')).toBe(true);
    expect(escapesRoot('a/../b')).toBe(false);
    expect(escapesRoot('./a/b')).toBe(false);
    expect(escapesRoot('a..b/..c')).toBe(false);
  });
});
