import os from 'node:os';
import zlib from 'node:zlib';
import {isAllZero} from '../bytes/zeros.js';
import type {Emit} from './types.js';

/** zlib's default level, and gzip(1)'s. */
export const GZIP_LEVEL = 6;

export interface GzipOptions {
  level?: number;
  /** Input bytes per independently compressed block. */
  blockSize?: number;
  /** Blocks compressed at once (zlib's async calls run on libuv's thread pool). */
  concurrency?: number;
}

const WINDOW = 32 * 1024;
/** Bits of entropy per byte above which a block is stored, not deflated (random or already-compressed data). */
const STORE_ENTROPY = 7.95;
/** The largest stored block deflate allows (RFC 1951 §3.2.4: LEN is 16 bits). */
const MAX_STORED = 65535;
/** Fixed gzip header: ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=3 (unix), so output is reproducible. */
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]);

interface Slot {
  /** The block's input, kept until its compression is done. */
  block: Buffer;
  /** Deflated bytes, or null for a stored block (written straight from `block`). */
  output: Promise<Buffer> | null;
  length: number;
  isLast: boolean;
}

/**
 * A gzip encoder that uses every core, in the manner of pigz: the input is cut into fixed blocks,
 * each raw-deflated on the thread pool with the previous block's last 32 KiB as its dictionary and
 * ended with a sync flush (byte-aligned, not final), so the blocks concatenate into ONE valid
 * deflate stream and one standard gzip member (RFC 1952) that gzip -t, docker and skopeo accept.
 * CRC-32 is chained with zlib.crc32. Blocks whose bytes look incompressible are written as stored
 * blocks, framed here without calling zlib at all: deflating random data runs at ~30 MB/s, and the
 * profile of a gzip convert showed zlib's per-16 KiB callbacks for such blocks as the top cost.
 * Block buffers are recycled, so a long input allocates nothing per block but the deflated output.
 * The output depends only on the input and the level and block size, never on how the input is
 * chunked or on thread timing: it is deterministic.
 */
export class GzipBlockEncoder {
  readonly #level: number;
  readonly #blockSize: number;
  readonly #concurrency: number;
  readonly #emit: Emit;
  readonly #free: Buffer[] = [];
  #current: Buffer | undefined;
  #filled = 0;
  #previousTail: Buffer = Buffer.alloc(0);
  #crc = 0;
  #size = 0;
  /** Blocks in flight, in output order. */
  readonly #queue: Slot[] = [];
  #started = false;
  #ended = false;
  /** The deflated form of a full block of zeros whose dictionary is zeros too. */
  #zeroBlock: Promise<Buffer> | undefined;

  constructor(options: GzipOptions, emit: Emit) {
    this.#level = options.level ?? GZIP_LEVEL;
    this.#blockSize = options.blockSize ?? 1 << 20;
    this.#concurrency = Math.max(1, options.concurrency ?? Math.max(2, os.availableParallelism()));
    this.#emit = emit;
  }

  /** Takes `data` (copied: the caller may reuse it once this resolves). */
  async write(data: Buffer): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      this.#current ??= this.#free.pop() ?? Buffer.allocUnsafeSlow(this.#blockSize);
      const take = Math.min(data.length - offset, this.#blockSize - this.#filled);
      data.copy(this.#current, this.#filled, offset, offset + take);
      this.#filled += take;
      offset += take;
      if (this.#filled === this.#blockSize) await this.#submit(false);
    }
  }

  /** Flushes the last block and writes the trailer. */
  async end(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    await this.#submit(true);
    while (this.#queue.length > 0) await this.#emitOldest();
    if (!this.#started) await this.#start();
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.#crc >>> 0, 0);
    trailer.writeUInt32LE(this.#size % 0x100000000, 4);
    await this.#emit(trailer);
  }

  async #start(): Promise<void> {
    this.#started = true;
    await this.#emit(HEADER);
  }

  async #submit(isLast: boolean): Promise<void> {
    const block = this.#current ?? Buffer.alloc(0);
    const length = this.#filled;
    this.#current = undefined;
    this.#filled = 0;
    const data = block.subarray(0, length);
    // (Not for an empty block: crc32 of a zero-length view with no backing memory returns zlib's
    // initial value 0, whatever the running value was.)
    if (length > 0) this.#crc = zlib.crc32(data, this.#crc);
    this.#size += length;
    const dictionary = this.#previousTail;
    if (length > 0) this.#previousTail = Buffer.from(data.subarray(Math.max(0, length - WINDOW)));
    let output: Promise<Buffer> | null = null;
    // An empty final block (input ended on a block boundary) is an empty stored block.
    if (length > 0 && !looksIncompressible(data)) {
      // A full block of zeros after zeros deflates to the same bytes every time (zlib is
      // deterministic): done once, not 8000 times for a sparse 8 GB layer (50 s of CPU).
      const repeatsZeros = length === this.#blockSize && !isLast && dictionary.length === WINDOW && isAllZero(data) && isAllZero(dictionary);
      if (repeatsZeros) output = this.#zeroBlock ??= deflateBlock(data, dictionary, this.#level, false);
      else output = deflateBlock(data, dictionary, this.#level, isLast);
    }
    this.#queue.push({block, output, length, isLast});
    while (this.#queue.length >= this.#concurrency) await this.#emitOldest();
  }

  async #emitOldest(): Promise<void> {
    const slot = this.#queue.shift()!;
    if (!this.#started) await this.#start();
    if (slot.output) await this.#emit(await slot.output);
    else await this.#emitStored(slot.block.subarray(0, slot.length), slot.isLast);
    if (slot.block.length === this.#blockSize) this.#free.push(slot.block);
  }

  /** Stored blocks (RFC 1951 §3.2.4): every block before starts on a byte boundary, so the header is one byte. */
  async #emitStored(data: Buffer, isLast: boolean): Promise<void> {
    let offset = 0;
    do {
      const length = Math.min(MAX_STORED, data.length - offset);
      const final = isLast && offset + length === data.length;
      const header = Buffer.allocUnsafe(5);
      header[0] = final ? 1 : 0;
      header.writeUInt16LE(length, 1);
      header.writeUInt16LE(~length & 0xffff, 3);
      await this.#emit(header);
      if (length > 0) await this.#emit(data.subarray(offset, offset + length));
      offset += length;
    } while (offset < data.length);
  }
}

function deflateBlock(data: Buffer, dictionary: Buffer, level: number, isLast: boolean): Promise<Buffer> {
  // Blocks deflated here compress (incompressible ones are stored): a few 64 KiB output chunks each.
  const options: zlib.ZlibOptions = {level, finishFlush: isLast ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH, memLevel: 8, windowBits: 15, strategy: zlib.constants.Z_DEFAULT_STRATEGY, chunkSize: 64 * 1024};
  if (dictionary.length > 0) options.dictionary = dictionary;
  return new Promise((resolve, reject) => zlib.deflateRaw(data, options, (error, result) => (error ? reject(error) : resolve(result))));
}

const SAMPLES = 4;
const SAMPLE = 4096;

/**
 * Shannon entropy of four 4 KiB samples spread over the block: ~8 bits/byte means random or
 * compressed bytes. (A 64 KiB sample from the start cost 5% of a gzip convert and missed blocks
 * that change half-way.)
 */
function looksIncompressible(block: Buffer): boolean {
  if (block.length < SAMPLES * SAMPLE) return false;
  const counts = new Uint32Array(256);
  const stride = Math.floor(block.length / SAMPLES);
  for (let s = 0; s < SAMPLES; s++) {
    const start = s * stride;
    for (let i = start; i < start + SAMPLE; i++) counts[block[i]!]!++;
  }
  const total = SAMPLES * SAMPLE;
  let entropy = 0;
  for (const c of counts) {
    if (c === 0) continue;
    const p = c / total;
    entropy -= p * Math.log2(p);
  }
  return entropy > STORE_ENTROPY;
}
