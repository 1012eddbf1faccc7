import {createReadStream, createWriteStream, type WriteStream} from 'node:fs';
import {stat} from 'node:fs/promises';
import path from 'node:path';
import {Readable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {FerryError, ioError, UsageError} from '../../errors.js';
import type {Compression} from '../../model/media-types.js';
import type {Settings} from '../../settings.js';
import {FileRange} from '../bytes/file-range.js';
import {decompressionStages} from '../compress/decompress.js';
import {sniffCompression, SNIFF_BYTES} from '../compress/sniff.js';
import {disposeTemp, makeTempDir} from './temp.js';

const STDIN_PATHS = new Set(['/dev/stdin', '/dev/fd/0', '/proc/self/fd/0']);

export type OpenedInput =
  | {kind: 'dir'; path: string; dispose(): Promise<void>}
  | {kind: 'file'; range: FileRange; outerCompression: Compression; spooled: boolean; dispose(): Promise<void>};

export interface InputOptions {
  /** What `-` reads (the CLI passes process.stdin; the library has no default). */
  stdin?: NodeJS.ReadableStream | undefined;
  settings: Settings;
}

/**
 * Opens what the user named: a directory in place; a plain file in place (read by offset); a
 * compressed file, a pipe (FIFO, /dev/stdin) or stdin (`-`) decompressed/spooled once into a temp
 * file, removed on dispose, on error and on exit (docs/formats.md §8: compression is sniffed, never
 * taken from the extension).
 */
export async function openInput(location: string, options: InputOptions): Promise<OpenedInput> {
  // /dev/stdin is this process's stdin: read through the stream given for it (when stdin is a
  // socket, as under a Node parent, the path cannot even be opened).
  if (STDIN_PATHS.has(location) && options.stdin) return spool(Readable.from(options.stdin as AsyncIterable<Buffer>), location, options.settings);
  if (location === '-') {
    const stdin = options.stdin;
    if (!stdin) throw new UsageError('"-" reads stdin, but no stdin stream was given');
    if ((stdin as NodeJS.ReadStream).isTTY) throw new UsageError('refusing to read an archive from a terminal: pipe one into stdin or name a file');
    return spool(Readable.from(stdin as AsyncIterable<Buffer>), 'stdin', options.settings);
  }
  let s;
  try {
    s = await stat(location);
  } catch (e) {
    throw ioError(e, location);
  }
  if (s.isDirectory()) return {kind: 'dir', path: location, dispose: async () => {}};
  // A pipe (`<(cat x.tar)`, /dev/stdin, a FIFO) cannot be read by offset: read once, in order, like `-`.
  if (s.isFIFO() || s.isCharacterDevice() || s.isSocket()) return spool(createReadStream(location), location, options.settings);
  if (!s.isFile()) throw new FerryError('BAD_ARCHIVE', `${location}: not a regular file or directory`);
  if (s.size === 0) throw new FerryError('BAD_ARCHIVE', `${location}: empty file`);
  const range = await FileRange.ofFile(location);
  const compression = sniffCompression(await range.read(0, SNIFF_BYTES));
  if (compression === 'none') return {kind: 'file', range, outerCompression: 'none', spooled: false, dispose: async () => {}};
  return spool(range.stream(), location, options.settings, compression);
}

/** A stream (a daemon's `docker save` answer) spooled into a temp file once, to be read by offset. */
export function spoolStream(source: Readable, label: string, settings: Settings): Promise<OpenedInput> {
  return spool(source, label, settings);
}

/** Copies a stream into a temp file, decompressing it when its first bytes say so. */
async function spool(source: Readable, label: string, settings: Settings, known?: Compression): Promise<OpenedInput> {
  const dir = await makeTempDir(settings.tempDir, 'ferry-in-');
  const dispose = async (): Promise<void> => disposeTemp(dir);
  let out: WriteStream | undefined;
  try {
    const file = path.join(dir, 'input.tar');
    // Peek the first bytes to pick the decompressor, then put them back in front of the stream.
    const iterator = source[Symbol.asyncIterator]();
    let head = Buffer.alloc(0);
    const buffered: Buffer[] = [];
    while (head.length < SNIFF_BYTES) {
      const next = await iterator.next();
      if (next.done) break;
      const chunk = Buffer.from(next.value as Buffer);
      buffered.push(chunk);
      head = Buffer.concat([head, chunk]);
    }
    if (head.length === 0) throw new FerryError('BAD_ARCHIVE', `${label}: empty input`);
    const compression = known ?? sniffCompression(head);
    const stages = decompressionStages(compression, label, settings.limits);
    const rest = Readable.from(
      (async function* () {
        yield* buffered;
        for (let n = await iterator.next(); !n.done; n = await iterator.next()) yield n.value as Buffer;
      })(),
    );
    out = createWriteStream(file);
    await pipeline([rest, ...stages, out]);
    const size = (await stat(file)).size;
    if (size === 0) throw new FerryError('BAD_ARCHIVE', `${label}: empty after decompression`);
    return {kind: 'file', range: new FileRange(file, 0, size, label), outerCompression: compression, spooled: true, dispose};
  } catch (e) {
    source.destroy();
    // A write stream destroyed while its file was still opening finishes opening (and closing)
    // later: removing the directory before then would surface as an unhandled ENOENT 'error'.
    if (out && !out.closed) {
      out.on('error', () => {});
      const closed = new Promise<void>((resolve) => out!.once('close', () => resolve()));
      out.destroy();
      await closed;
    }
    await dispose();
    throw ioError(e, label);
  }
}
