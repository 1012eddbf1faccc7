import {spawn} from 'node:child_process';
import {Duplex, PassThrough, Transform, type TransformCallback} from 'node:stream';
import zlib from 'node:zlib';
import {FerryError, TrailingDataError} from '../../errors.js';
import type {Compression} from '../../model/media-types.js';
import type {Limits} from '../../settings.js';
import {zstdDecompressor} from './zstd.js';

/** Counts the bytes passing through (the compressed side of a decompression). */
export class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

/**
 * Fails the stream when the output outgrows the limits relative to the input counter; at the end,
 * fails it when the decompressor left input unread — bytes after the end of the compressed stream,
 * which Node's gunzip ignores but docker, podman and skopeo refuse ("gzip: invalid header", Go reads
 * them as the next member's header: docs/peers.md).
 */
class BombGuard extends Transform {
  out = 0;
  constructor(
    private readonly input: ByteCounter,
    private readonly limits: Pick<Limits, 'maxRatio' | 'ratioSlackBytes' | 'maxDecompressedBytes'>,
    private readonly label: string,
    private readonly consumed: (() => number) | undefined,
    private readonly kind: string,
  ) {
    super();
  }

  override _flush(done: TransformCallback): void {
    const used = this.consumed?.();
    if (used !== undefined && used < this.input.bytes) {
      done(new TrailingDataError(`${this.label}: ${this.input.bytes - used} byte(s) of data after the end of the ${this.kind} stream (docker, podman and skopeo refuse such a layer; recompress it with --compress ${this.kind})`));
      return;
    }
    done();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.out += chunk.length;
    const allowed = Math.min(this.limits.maxDecompressedBytes, this.input.bytes * this.limits.maxRatio + this.limits.ratioSlackBytes);
    if (this.out > allowed) {
      done(new FerryError('LIMIT_EXCEEDED', `${this.label}: decompressed size exceeds the limit (${this.out} bytes from ${this.input.bytes} compressed; possible decompression bomb; raise FERRY_MAX_RATIO/FERRY_MAX_DECOMPRESSED to allow)`));
      return;
    }
    done(null, chunk);
  }
}

/** bzip2 and xz are decompressed by the system tools (Debian's bzip2, xz-utils). */
function spawnFilter(command: string, args: string[], label: string): Duplex {
  const child = spawn(command, args, {stdio: ['pipe', 'pipe', 'pipe']});
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-500)));
  const duplex = Duplex.from({writable: child.stdin, readable: child.stdout});
  child.on('error', (e: NodeJS.ErrnoException) =>
    duplex.destroy(new FerryError('UNSUPPORTED', e.code === 'ENOENT' ? `${label}: ${command} is needed to read ${command}-compressed data but is not installed` : `${label}: ${e.message}`)),
  );
  child.on('close', (code) => {
    if (code !== 0 && code !== null) duplex.destroy(new FerryError('BAD_ARCHIVE', `${label}: ${command} failed: ${stderr.trim().split('\n').pop() ?? 'corrupt data'}`));
  });
  duplex.on('close', () => child.kill());
  return duplex;
}

/** A decompressor for `compression`; errors name `label`. */
function decompressor(compression: Compression, label: string, allowTrailing: boolean): Duplex {
  switch (compression) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return wrapErrors(zlib.createGunzip({chunkSize: 256 * 1024}), label, 'gzip');
    case 'zstd':
      return wrapErrors(zstdDecompressor(label, {allowTrailing}), label, 'zstd');
    case 'bzip2':
      return spawnFilter('bzip2', ['-dc'], label);
    case 'xz':
      return spawnFilter('xz', ['-dc'], label);
  }
}

/**
 * The stages that decompress a stream behind the bomb guard: put them in a pipeline after the
 * compressed source (none for 'none'). Data after the end of the compressed stream is an error
 * unless `allowTrailing` (a recompression, which is how such a layer is repaired).
 */
export function decompressionStages(compression: Compression, label: string, limits: Limits, options: {allowTrailing?: boolean} = {}): NodeJS.ReadWriteStream[] {
  if (compression === 'none') return [];
  const counter = new ByteCounter();
  const allowTrailing = options.allowTrailing === true;
  const decompress = decompressor(compression, label, allowTrailing);
  // zlib counts the input it consumed (bytesWritten): anything past it was never part of the stream.
  const consumed = compression === 'gzip' && !allowTrailing ? (): number => (decompress as unknown as zlib.Gunzip).bytesWritten : undefined;
  return [counter, decompress, new BombGuard(counter, limits, label, consumed, compression)];
}

function wrapErrors<T extends Duplex>(stream: T, label: string, kind: string): T {
  // Node emits whatever _destroy's callback gets: map zlib/zstd errors to one clear FerryError.
  const original = stream._destroy.bind(stream);
  stream._destroy = (error: Error | null, callback: (error?: Error | null) => void): void => {
    original(error, (e?: Error | null) => {
      if (e && !(e instanceof FerryError)) {
        const text = /unexpected end|premature|truncat/i.test(e.message) ? 'truncated' : e.message;
        callback(new FerryError('BAD_ARCHIVE', `${label}: corrupt ${kind} data (${text})`, {cause: e}));
        return;
      }
      callback(e);
    });
  };
  return stream;
}
