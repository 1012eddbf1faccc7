import {createWriteStream, type WriteStream} from 'node:fs';
import {randomBytes} from 'node:crypto';
import {mkdir, open, stat} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {Readable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {FerryError, ioError} from '../errors.js';
import type {Compression} from '../model/media-types.js';
import {FileRange} from './byte-source.js';
import {disposeTemp, registerTemp, releaseTemp} from './cleanup.js';
import {guardedDecompressor, sniffCompression} from './compression.js';

/** Where ferry puts temp files: $FERRY_TMPDIR, else the OS temp dir. */
export function tempRoot(): string {
  return process.env.FERRY_TMPDIR || os.tmpdir();
}

export async function makeTempDir(prefix = 'ferry-'): Promise<string> {
  // Registered before it exists: a signal between creating and registering would leave it behind.
  for (;;) {
    const dir = path.join(tempRoot(), `${prefix}${randomBytes(6).toString('hex')}`);
    registerTemp(dir);
    try {
      await mkdir(dir, {mode: 0o700});
      return dir;
    } catch (e) {
      releaseTemp(dir);
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(e, `temp dir in ${tempRoot()}`);
    }
  }
}

export type OpenedInput =
  | {kind: 'dir'; path: string; dispose(): Promise<void>}
  | {kind: 'file'; range: FileRange; outerCompression: Compression; spooled: boolean; dispose(): Promise<void>};

/**
 * Opens what the user named: a directory in place; a plain file in place (read by offset); a
 * compressed file or stdin (`-`) decompressed/spooled once into a temp file, removed on dispose, on
 * error and on Ctrl-C (FORMATS.md §8: compression sniffed, never taken from the extension).
 */
export async function openInput(location: string, stdin: NodeJS.ReadableStream = process.stdin): Promise<OpenedInput> {
  if (location === '-') {
    if ((stdin as NodeJS.ReadStream).isTTY) throw new FerryError('USAGE', 'refusing to read an archive from a terminal: pipe one into stdin or name a file');
    return spool(Readable.from(stdin as AsyncIterable<Buffer>), 'stdin', async (head) => sniffCompression(head));
  }
  let s;
  try {
    s = await stat(location);
  } catch (e) {
    throw ioError(e, location);
  }
  if (s.isDirectory()) return {kind: 'dir', path: location, dispose: async () => {}};
  if (!s.isFile()) throw new FerryError('BAD_ARCHIVE', `${location}: not a regular file or directory`);
  if (s.size === 0) throw new FerryError('BAD_ARCHIVE', `${location}: empty file`);
  const range = await FileRange.ofFile(location);
  const compression = sniffCompression(await range.read(0, 6));
  if (compression === 'none') return {kind: 'file', range, outerCompression: 'none', spooled: false, dispose: async () => {}};
  return spool(range.stream(), location, async () => compression);
}

async function spool(source: Readable, label: string, detect: (head: Buffer) => Promise<Compression>): Promise<OpenedInput> {
  const dir = await makeTempDir('ferry-in-');
  const dispose = async (): Promise<void> => disposeTemp(dir);
  let out: WriteStream | undefined;
  try {
    const file = path.join(dir, 'input.tar');
    // Peek the first bytes to pick the decompressor, then put them back in front of the stream.
    const iterator = source[Symbol.asyncIterator]();
    let head = Buffer.alloc(0);
    const buffered: Buffer[] = [];
    while (head.length < 6) {
      const next = await iterator.next();
      if (next.done) break;
      const chunk = Buffer.from(next.value as Buffer);
      buffered.push(chunk);
      head = Buffer.concat([head, chunk]);
    }
    if (head.length === 0) throw new FerryError('BAD_ARCHIVE', `${label}: empty input`);
    const compression = await detect(head);
    const rest = Readable.from(
      (async function* () {
        yield* buffered;
        for (let n = await iterator.next(); !n.done; n = await iterator.next()) yield n.value as Buffer;
      })(),
    );
    out = createWriteStream(file);
    if (compression === 'none') await pipeline(rest, out);
    else {
      const {counter, decompress, guard} = guardedDecompressor(compression, label);
      await pipeline(rest, counter, decompress, guard, out);
    }
    const handle = await open(file, 'r');
    const size = (await handle.stat()).size;
    await handle.close();
    if (size === 0) throw new FerryError('BAD_ARCHIVE', `${label}: empty after decompression`);
    return {kind: 'file', range: new FileRange(file, 0, size, label), outerCompression: compression, spooled: true, dispose};
  } catch (e) {
    // A stream destroyed while its file was still opening finishes opening (and closing) later:
    // removing the directory before then would surface as an unhandled ENOENT 'error' event.
    if (out && !out.closed) {
      out.on('error', () => {});
      await new Promise<void>((resolve) => out!.once('close', () => resolve()));
    }
    await dispose();
    throw ioError(e, label);
  }
}
