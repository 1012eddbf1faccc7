import {spawn} from 'node:child_process';
import {Duplex, Transform, type TransformCallback} from 'node:stream';
import zlib from 'node:zlib';
import {createRequire} from 'node:module';
import {FerryError} from '../errors.js';
import type {Compression} from '../model/media-types.js';

/** Magic numbers (FORMATS.md §8). The extension is never trusted. */
export function sniffCompression(head: Uint8Array): Compression {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  // zstd skippable frame: LE magic 0x184D2A50..5F
  if (head.length >= 4 && (head[0]! & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18) return 'zstd';
  if (head.length >= 3 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return 'bzip2';
  if (head.length >= 6 && head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a && head[5] === 0x00) return 'xz';
  return 'none';
}

export interface DecompressLimits {
  /** Output may not exceed ratio × input + slack (decompression bombs). */
  maxRatio: number;
  slackBytes: number;
  /** Absolute cap on output bytes (Infinity: none). */
  maxBytes: number;
}

/** Defaults: gzip cannot exceed ~1032:1, so 2000:1 plus 1 GiB of slack only stops real bombs. */
export function decompressLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): DecompressLimits {
  const num = (name: string, fallback: number): number => {
    const v = env[name];
    if (v === undefined || v === '') return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new FerryError('USAGE', `${name} must be a positive number, got "${v}"`);
    return n;
  };
  return {maxRatio: num('FERRY_MAX_RATIO', 2000), slackBytes: num('FERRY_RATIO_SLACK', 1 << 30), maxBytes: num('FERRY_MAX_DECOMPRESSED', Number.POSITIVE_INFINITY)};
}

/** Counts input bytes (compressed side). */
export class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

/** Fails the stream when output outgrows the limits relative to the input counter. */
class BombGuard extends Transform {
  out = 0;
  constructor(
    private readonly input: ByteCounter,
    private readonly limits: DecompressLimits,
    private readonly label: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.out += chunk.length;
    const allowed = Math.min(this.limits.maxBytes, this.input.bytes * this.limits.maxRatio + this.limits.slackBytes);
    if (this.out > allowed) {
      done(new FerryError('LIMIT_EXCEEDED', `${this.label}: decompressed size exceeds the limit (${this.out} bytes from ${this.input.bytes} compressed; possible decompression bomb; raise FERRY_MAX_RATIO/FERRY_MAX_DECOMPRESSED to allow)`));
      return;
    }
    done(null, chunk);
  }
}

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
export function decompressor(compression: Compression, label: string): Duplex {
  switch (compression) {
    case 'none':
      return new Transform({transform: (c, _e, d) => d(null, c)});
    case 'gzip': {
      const g = zlib.createGunzip({chunkSize: 256 * 1024});
      return wrapErrors(g, label, 'gzip');
    }
    case 'zstd':
      return wrapErrors(zstdDecompressor(label), label, 'zstd');
    case 'bzip2':
      return spawnFilter('bzip2', ['-dc'], label);
    case 'xz':
      return spawnFilter('xz', ['-dc'], label);
  }
}

/**
 * zstd decompression that honours backpressure. zstd-napi's DecompressStream inflates a whole input
 * chunk in one synchronous loop and pushes every output buffer regardless of demand: a 256 KiB frame
 * of RLE blocks became 8 GiB of buffered memory before the bomb guard downstream saw a byte. Here
 * each output buffer is yielded from an async generator, so nothing is inflated until it is wanted.
 */
function zstdDecompressor(label: string): Duplex {
  const zstdBinding = zstdNative();
  const outSize = zstdBinding.dStreamOutSize();
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const dctx = new zstdBinding.DCtx();
    let inFrame = false;
    for await (const chunk of source) {
      let input = chunk;
      for (;;) {
        const output = Buffer.allocUnsafe(outSize);
        let result: [number, number, number];
        try {
          result = dctx.decompressStream(output, input);
        } catch (e) {
          throw new FerryError('BAD_ARCHIVE', `${label}: corrupt zstd data (${(e as Error).message})`, {cause: e});
        }
        const [hint, produced, consumed] = result;
        input = input.subarray(consumed);
        if (produced > 0) yield output.subarray(0, produced);
        if (input.length === 0 && (produced < output.length || hint === 0)) {
          inFrame = hint !== 0;
          break;
        }
      }
    }
    if (inFrame) throw new FerryError('BAD_ARCHIVE', `${label}: corrupt zstd data (truncated)`);
  });
}

/**
 * zstd-napi's native binding, loaded the first time zstd data is met: loading it costs ~15 ms of
 * every start-up, and most commands never see zstd.
 */
let zstdLoaded: typeof import('zstd-napi/binding.js') | undefined;
function zstdNative(): typeof import('zstd-napi/binding.js') {
  zstdLoaded ??= createRequire(import.meta.url)('zstd-napi/binding.js') as typeof import('zstd-napi/binding.js');
  return zstdLoaded;
}

/** Decompressor with a bomb guard; `source` is the compressed stream. */
export function guardedDecompressor(compression: Compression, label: string, limits = decompressLimitsFromEnv()): {counter: ByteCounter; decompress: Duplex; guard: Transform} {
  const counter = new ByteCounter();
  return {counter, decompress: decompressor(compression, label), guard: compression === 'none' ? new Transform({transform: (c, _e, d) => d(null, c)}) : new BombGuard(counter, limits, label)};
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
