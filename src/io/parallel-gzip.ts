import os from 'node:os';
import {Transform, type TransformCallback} from 'node:stream';
import {promisify} from 'node:util';
import zlib from 'node:zlib';

const deflateRaw = promisify(zlib.deflateRaw) as (buf: Buffer, options: zlib.ZlibOptions) => Promise<Buffer>;

export interface ParallelGzipOptions {
  level?: number;
  /** Input bytes per independently compressed block. */
  blockSize?: number;
  /** Blocks compressed at once (zlib's async calls run on libuv's thread pool). */
  concurrency?: number;
}

const WINDOW = 32 * 1024;
/** Bits of entropy per byte above which a block is stored, not deflated (random or already-compressed data). */
const STORE_ENTROPY = 7.95;

/**
 * A gzip compressor that uses every core, in the manner of pigz: the input is cut into fixed blocks,
 * each raw-deflated on the thread pool with the previous block's last 32 KiB as its dictionary and ended
 * with a sync flush (byte-aligned, not final), so the blocks concatenate into ONE valid deflate stream and
 * one standard gzip member (RFC 1952) that gzip -t, docker and skopeo accept. CRC-32 is chained with
 * zlib.crc32. Blocks whose bytes look incompressible are emitted as stored blocks (level 0) instead of
 * burning CPU. The output depends only on the input and the options, never on thread timing: it is
 * deterministic.
 */
export class ParallelGzip extends Transform {
  readonly #level: number;
  readonly #blockSize: number;
  readonly #concurrency: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #previousTail: Buffer = Buffer.alloc(0);
  #crc = 0;
  #size = 0;
  /** Compressions in flight, in output order. */
  #queue: Array<Promise<Buffer>> = [];
  #headerWritten = false;
  #finalQueued = false;

  constructor(options: ParallelGzipOptions = {}) {
    super({highWaterMark: 1 << 20});
    this.#level = options.level ?? 6;
    this.#blockSize = options.blockSize ?? 1 << 20;
    this.#concurrency = options.concurrency ?? Math.max(2, os.availableParallelism());
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    this.#drainFullBlocks(false).then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    this.#drainFullBlocks(true)
      .then(async () => {
        // Input that ended on a block boundary: its last block was sync-flushed, so close the
        // deflate stream with an empty final block.
        if (!this.#finalQueued) this.#queue.push(this.#compressBlock(Buffer.alloc(0), Buffer.alloc(0), true));
        while (this.#queue.length > 0) this.#emit(await this.#queue.shift()!);
        if (!this.#headerWritten) this.#writeHeader();
        const trailer = Buffer.alloc(8);
        trailer.writeUInt32LE(this.#crc >>> 0, 0);
        trailer.writeUInt32LE(this.#size % 0x100000000, 4);
        this.push(trailer);
        done();
      })
      .catch(done);
  }

  #writeHeader(): void {
    // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=3 (unix): fixed, so output is reproducible.
    this.push(Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]));
    this.#headerWritten = true;
  }

  #emit(data: Buffer): void {
    if (!this.#headerWritten) this.#writeHeader();
    this.push(data);
  }

  async #drainFullBlocks(final: boolean): Promise<void> {
    while (this.#pendingBytes >= this.#blockSize || (final && this.#pendingBytes > 0)) {
      const all = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
      const take = Math.min(this.#blockSize, all.length);
      const block = all.subarray(0, take);
      const rest = all.subarray(take);
      this.#pending = rest.length > 0 ? [rest] : [];
      this.#pendingBytes = rest.length;
      const isLast = final && rest.length === 0;
      if (isLast) this.#finalQueued = true;
      this.#crc = zlib.crc32(block, this.#crc);
      this.#size += block.length;
      const dictionary = this.#previousTail;
      this.#previousTail = Buffer.from(block.subarray(Math.max(0, block.length - WINDOW)));
      this.#queue.push(this.#compressBlock(Buffer.from(block), dictionary, isLast));
      while (this.#queue.length >= this.#concurrency) this.#emit(await this.#queue.shift()!);
      if (isLast) break;
    }
  }

  async #compressBlock(block: Buffer, dictionary: Buffer, isLast: boolean): Promise<Buffer> {
    const level = looksIncompressible(block) ? 0 : this.#level;
    const options: zlib.ZlibOptions = {level, finishFlush: isLast ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH, memLevel: 8, windowBits: 15, strategy: zlib.constants.Z_DEFAULT_STRATEGY};
    if (level !== 0 && dictionary.length > 0) options.dictionary = dictionary;
    return deflateRaw(block, options);
  }
}

/** Shannon entropy of a sample of the block: ~8 bits/byte means random or compressed bytes. */
function looksIncompressible(block: Buffer): boolean {
  if (block.length < 4096) return false;
  const sample = block.subarray(0, Math.min(block.length, 64 * 1024));
  const counts = new Uint32Array(256);
  for (let i = 0; i < sample.length; i++) counts[sample[i]!]!++;
  let entropy = 0;
  for (const c of counts) {
    if (c === 0) continue;
    const p = c / sample.length;
    entropy -= p * Math.log2(p);
  }
  return entropy > STORE_ENTROPY;
}
