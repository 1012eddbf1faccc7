import {createRequire} from 'node:module';
import {Duplex} from 'node:stream';
import {FerryError, TrailingDataError} from '../../errors.js';
import type {Emit} from './types.js';

type ZstdBinding = typeof import('zstd-napi/binding.js');

/**
 * zstd-napi's native binding (Node 20's zlib has no zstd), loaded the first time zstd is met:
 * loading it costs ~15 ms of every start-up, and most commands never see zstd.
 */
let loaded: ZstdBinding | undefined;
export function zstdBinding(): ZstdBinding {
  loaded ??= createRequire(import.meta.url)('zstd-napi/binding.js') as ZstdBinding;
  return loaded;
}

/** A zstd frame or skippable frame starts here (RFC 8878 §3.1). (Fewer than 4 bytes left: let the decoder judge.) */
function startsFrame(data: Buffer): boolean {
  if (data.length < 4) return true;
  return (data[0] === 0x28 && data[1] === 0xb5 && data[2] === 0x2f && data[3] === 0xfd) || ((data[0]! & 0xf0) === 0x50 && data[1] === 0x2a && data[2] === 0x4d && data[3] === 0x18);
}

/**
 * zstd decompression that honours backpressure. zstd-napi's DecompressStream inflates a whole input
 * chunk in one synchronous loop and pushes every output buffer regardless of demand: a 256 KiB frame
 * of RLE blocks became 8 GiB of buffered memory before the bomb guard downstream saw a byte. Here
 * each output buffer is yielded from an async generator, so nothing is inflated until it is wanted.
 */
export function zstdDecompressor(label: string, options: {allowTrailing?: boolean} = {}): Duplex {
  const zstd = zstdBinding();
  const outSize = zstd.dStreamOutSize();
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const dctx = new zstd.DCtx();
    let inFrame = false;
    let frameEnded = false;
    let trailing = false;
    const after = (): FerryError => new TrailingDataError(`${label}: data after the end of the zstd stream (docker, podman and skopeo refuse such a layer; recompress it with --compress zstd)`);
    for await (const chunk of source) {
      let input = chunk;
      if (trailing) continue; // allowed and ignored: read to the end so the blob's digest completes
      // After a frame, only another frame (or a skippable one) may follow: anything else is data
      // after the end of the stream, which the zstd tool and containers/storage refuse.
      if (frameEnded && input.length > 0 && !startsFrame(input)) {
        if (!options.allowTrailing) throw after();
        trailing = true;
        continue;
      }
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
        frameEnded = hint === 0;
        if (frameEnded && input.length > 0 && !startsFrame(input)) {
          if (!options.allowTrailing) throw after();
          trailing = true;
          break;
        }
        if (input.length === 0 && (produced < output.length || hint === 0)) {
          inFrame = hint !== 0;
          break;
        }
      }
    }
    if (inFrame) throw new FerryError('BAD_ARCHIVE', `${label}: corrupt zstd data (truncated)`);
  });
}

/** zstd's own default level (what `zstd` and containers/image use). */
export const ZSTD_LEVEL = 3;
const CHUNK = 1 << 20;

/**
 * zstd at level 3 (or the one asked for) without a checksum, fed in fixed 1 MiB chunks so the frame
 * is the same however the input arrives, writing into one reused output buffer: no per-chunk
 * allocation for the garbage collector to chase (a stream version peaked at 200 MB RSS on a 2 GB
 * image). Synchronous on the calling thread (a worker's).
 */
export class ZstdEncoder {
  readonly #zstd = zstdBinding();
  readonly #cctx = new this.#zstd.CCtx();
  readonly #staging = Buffer.allocUnsafeSlow(CHUNK);
  #staged = 0;
  /** Room for a whole compressed chunk, so each chunk's output is emitted (and written) in one piece. */
  readonly #out = Buffer.allocUnsafeSlow(CHUNK + 64 * 1024);
  constructor(
    private readonly emit: Emit,
    level = ZSTD_LEVEL,
  ) {
    this.#cctx.setParameter(this.#zstd.CParameter.compressionLevel, level);
    this.#cctx.setParameter(this.#zstd.CParameter.checksumFlag, 0);
  }

  async write(data: Buffer): Promise<void> {
    // A whole chunk on a chunk boundary (what regionChunks yields) goes in as it is: same calls, no copy.
    if (this.#staged === 0 && data.length === CHUNK) return this.#compress(this.#zstd.EndDirective.continue, data);
    let offset = 0;
    while (offset < data.length) {
      const take = Math.min(data.length - offset, CHUNK - this.#staged);
      data.copy(this.#staging, this.#staged, offset, offset + take);
      this.#staged += take;
      offset += take;
      if (this.#staged === CHUNK) await this.#compress(this.#zstd.EndDirective.continue);
    }
  }

  async end(): Promise<void> {
    await this.#compress(this.#zstd.EndDirective.end);
  }

  async #compress(directive: number, whole?: Buffer): Promise<void> {
    let input = whole ?? this.#staging.subarray(0, this.#staged);
    if (!whole) this.#staged = 0;
    for (;;) {
      const [remaining, produced, consumed] = this.#cctx.compressStream2(this.#out, input, directive);
      input = input.subarray(consumed);
      if (produced > 0) await this.emit(this.#out.subarray(0, produced));
      const done = directive === this.#zstd.EndDirective.end ? remaining === 0 : input.length === 0;
      if (done) return;
    }
  }
}
