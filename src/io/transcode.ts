import type {Hash} from 'node:crypto';
import {createReadStream} from 'node:fs';
import {open, type FileHandle} from 'node:fs/promises';
import {PassThrough, Transform, type Readable, type TransformCallback} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import zstd from 'zstd-napi/binding.js';
import {DigestMismatchError, FerryError, ioError, SizeMismatchError} from '../errors.js';
import {newHasher, type Digest} from '../model/digest.js';
import type {Compression} from '../model/media-types.js';
import type {BlobJobResult, OnBytes, Region} from './blob-pool.js';
import {guardedDecompressor} from './compression.js';
import {DigestStream} from './digest-stream.js';
import {GzipBlockEncoder, type Emit} from './parallel-gzip.js';
import {isAllZero} from './sparse.js';

const CHUNK = 1 << 20;

/** What a transcode needs besides its source: the checks and the output. */
export interface TranscodeSpec {
  label: string;
  from: Compression;
  to: Compression;
  blob: {digest: Digest; size: number};
  diffId: Digest;
  /** A new file (must not exist). */
  target: string;
}

/** An encoder takes chunks (it may not keep them past the returned promise) and emits its output. */
interface Encoder {
  write(data: Buffer): Promise<void>;
  end(): Promise<void>;
}

const ZSTD_LEVEL = 3;

/**
 * zstd at level 3 without a checksum (the parameters CompressStream used), fed in fixed 1 MiB
 * chunks so the frame is the same however the input arrives, writing into one reused output
 * buffer: no per-chunk allocation for the garbage collector to chase (the stream version peaked at
 * 200 MB RSS on a 2 GB image). Runs synchronously on the calling thread (a worker's).
 */
class ZstdEncoder implements Encoder {
  readonly #cctx = new zstd.CCtx();
  readonly #staging = Buffer.allocUnsafeSlow(CHUNK);
  #staged = 0;
  /** Room for a whole compressed chunk, so each chunk's output is emitted (and written) in one piece. */
  readonly #out = Buffer.allocUnsafeSlow(CHUNK + 64 * 1024);
  constructor(private readonly emit: Emit) {
    this.#cctx.setParameter(zstd.CParameter.compressionLevel, ZSTD_LEVEL);
    this.#cctx.setParameter(zstd.CParameter.checksumFlag, 0);
  }

  async write(data: Buffer): Promise<void> {
    // A whole chunk on a chunk boundary (what readRegion yields) goes in as it is: same calls, no copy.
    if (this.#staged === 0 && data.length === CHUNK) return this.#compress(zstd.EndDirective.continue, data);
    let offset = 0;
    while (offset < data.length) {
      const take = Math.min(data.length - offset, CHUNK - this.#staged);
      data.copy(this.#staging, this.#staged, offset, offset + take);
      this.#staged += take;
      offset += take;
      if (this.#staged === CHUNK) await this.#compress(zstd.EndDirective.continue);
    }
  }

  async end(): Promise<void> {
    await this.#compress(zstd.EndDirective.end);
  }

  async #compress(directive: zstd.EndDirective, whole?: Buffer): Promise<void> {
    let input = whole ?? this.#staging.subarray(0, this.#staged);
    if (!whole) this.#staged = 0;
    for (;;) {
      const [remaining, produced, consumed] = this.#cctx.compressStream2(this.#out, input, directive);
      input = input.subarray(consumed);
      if (produced > 0) await this.emit(this.#out.subarray(0, produced));
      const done = directive === zstd.EndDirective.end ? remaining === 0 : input.length === 0;
      if (done) return;
    }
  }
}

/**
 * Writes a job's output: hashes every byte and gathers the pieces (stored-block headers and
 * bodies, zstd's outputs) into 1 MiB positional writes through two buffers in turn, one filling
 * while the other is written behind: the worker never waits for a write unless both are busy
 * (the profile showed the workers idle a third of the time, waiting on their own writes).
 */
class HashingFileSink {
  readonly hash: Hash;
  bytes = 0;
  readonly #buffers = [Buffer.allocUnsafeSlow(CHUNK), Buffer.allocUnsafeSlow(CHUNK)] as const;
  readonly #writes: [Promise<void>, Promise<void>] = [Promise.resolve(), Promise.resolve()];
  #current: 0 | 1 = 0;
  #buffered = 0;
  #position = 0;
  constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
  ) {
    this.hash = newHasher('sha256:' as Digest);
  }

  readonly write = async (data: Buffer): Promise<void> => {
    this.hash.update(data);
    this.bytes += data.length;
    let offset = 0;
    while (offset < data.length) {
      const take = Math.min(data.length - offset, CHUNK - this.#buffered);
      data.copy(this.#buffers[this.#current], this.#buffered, offset, offset + take);
      this.#buffered += take;
      offset += take;
      if (this.#buffered === CHUNK) await this.flush();
    }
  };

  /** Starts writing what is buffered and switches buffers (waiting only if the other is still being written). */
  async flush(): Promise<void> {
    if (this.#buffered === 0) return;
    const index = this.#current;
    const data = this.#buffers[index].subarray(0, this.#buffered);
    const at = this.#position;
    this.#position += this.#buffered;
    this.#buffered = 0;
    this.#writes[index] = this.#writeAt(data, at);
    this.#writes[index].catch(() => {}); // surfaced when this buffer comes round again, or in finish()
    this.#current = index === 0 ? 1 : 0;
    await this.#writes[this.#current];
  }

  /** Flushes, waits for the writes and sets the length (a hole at the end still counts). */
  async finish(): Promise<void> {
    await this.flush();
    await Promise.all(this.#writes);
    if ((await this.handle.stat()).size < this.#position) {
      await this.handle.truncate(this.#position).catch((e) => {
        throw ioError(e, this.path);
      });
    }
  }

  async #writeAt(data: Buffer, at: number): Promise<void> {
    // Zeros stay holes in the new file (SparseWriter): decompressing a layer of zeros writes nothing.
    if (data.length >= 4096 && isAllZero(data)) return;
    let done = 0;
    while (done < data.length) {
      const {bytesWritten} = await this.handle.write(data, done, data.length - done, at + done).catch((e) => {
        throw ioError(e, this.path);
      });
      done += bytesWritten;
    }
  }
}

/** Reads a region through two reused buffers, the next read in flight while a chunk is used. */
async function* readRegion(region: Region): AsyncGenerator<Buffer> {
  const handle = await open(region.path, 'r').catch((e) => {
    throw ioError(e, region.label);
  });
  try {
    const buffers = [Buffer.allocUnsafeSlow(Math.min(CHUNK, region.size)), Buffer.allocUnsafeSlow(Math.min(CHUNK, region.size))] as const;
    const readAt = async (index: 0 | 1, position: number): Promise<Buffer> => {
      const buffer = buffers[index];
      const want = Math.min(CHUNK, region.size - position);
      let got = 0;
      while (got < want) {
        const {bytesRead} = await handle.read(buffer, got, want - got, region.offset + position + got).catch((e) => {
          throw ioError(e, region.label);
        });
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buffer.subarray(0, got);
    };
    let done = 0;
    let index: 0 | 1 = 0;
    let next = region.size > 0 ? readAt(0, 0) : undefined;
    while (next) {
      const chunk = await next;
      if (chunk.length === 0) throw new FerryError('BAD_ARCHIVE', `${region.label}: truncated: the file ends after ${done} of ${region.size} bytes`);
      done += chunk.length;
      index = index === 0 ? 1 : 0;
      next = done < region.size ? readAt(index, done) : undefined;
      next?.catch(() => {}); // surfaced when awaited; the consumer may stop before
      yield chunk;
    }
  } finally {
    await handle.close().catch(() => {});
  }
}

/**
 * Re-encodes a layer blob into a new file in one pass: the blob is checked against its digest and
 * size, the uncompressed stream against the diffID, and the output hashed into its new digest
 * (the diffID never changes; fixed parameters keep the new digest deterministic). An uncompressed
 * blob in a file is read through reused buffers; a compressed one, or one without a file, streams
 * through the guarded decompressor.
 */
export async function runTranscode(source: {region: Region} | {open: () => Readable}, spec: TranscodeSpec, onBytes: OnBytes = () => {}): Promise<BlobJobResult> {
  const {label, from, to} = spec;
  if (to === 'bzip2' || to === 'xz') throw new FerryError('UNSUPPORTED', `${label}: cannot write ${to} layers`);
  const output = await open(spec.target, 'wx', 0o600).catch((e) => {
    throw ioError(e, spec.target);
  });
  try {
    const sink = new HashingFileSink(output, spec.target);
    const encoder: Encoder = to === 'gzip' ? new GzipBlockEncoder({}, sink.write) : to === 'zstd' ? new ZstdEncoder(sink.write) : {write: sink.write, end: async () => {}};
    if (from === 'none' && 'region' in source) {
      // The blob is the layer tar: one hash checks the blob digest and (its equal) the diffID.
      if (source.region.size !== spec.blob.size) throw new SizeMismatchError(`${label}: blob`, spec.blob.size, source.region.size);
      const hash = newHasher(spec.blob.digest);
      for await (const chunk of readRegion(source.region)) {
        hash.update(chunk);
        onBytes(chunk.length);
        await encoder.write(chunk);
      }
      const actual = `${spec.blob.digest.slice(0, spec.blob.digest.indexOf(':'))}:${hash.digest('hex')}` as Digest;
      if (actual !== spec.blob.digest) throw new DigestMismatchError(`${label}: blob`, spec.blob.digest, actual);
      if (spec.diffId !== spec.blob.digest) throw new DigestMismatchError(`${label}: diffID`, spec.diffId, actual);
    } else {
      await streamThrough('region' in source ? regionStream(source.region) : source.open(), spec, onBytes, encoder);
    }
    await encoder.end();
    await sink.finish();
    const digest = to === 'none' ? spec.diffId : (`sha256:${sink.hash.digest('hex')}` as Digest);
    return {bytes: sink.bytes, digest};
  } finally {
    await output.close().catch(() => {});
  }
}

function regionStream(region: Region): Readable {
  if (region.size === 0) return createReadStream(region.path, {start: 1, end: 0});
  return createReadStream(region.path, {start: region.offset, end: region.offset + region.size - 1, highWaterMark: CHUNK});
}

/** Counts bytes for progress as they pass. */
class Meter extends Transform {
  constructor(private readonly onBytes: OnBytes) {
    super({highWaterMark: CHUNK});
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.onBytes(chunk.length);
    done(null, chunk);
  }
}

/** Blob → digest check → decompressor behind the bomb guard → diffID check → encoder. */
async function streamThrough(input: Readable, spec: TranscodeSpec, onBytes: OnBytes, encoder: Encoder): Promise<void> {
  const {label, from} = spec;
  const blobCheck = new DigestStream(`${label}: blob`, {digest: spec.blob.digest, size: spec.blob.size});
  const stages: NodeJS.ReadWriteStream[] = [new Meter(onBytes), blobCheck];
  if (from !== 'none') {
    const {counter, decompress, guard} = guardedDecompressor(from, label);
    stages.push(counter, decompress, guard);
  }
  // An uncompressed blob whose digest is its diffID was just checked by blobCheck.
  if (from !== 'none' || spec.blob.digest !== spec.diffId) stages.push(new DigestStream(`${label}: diffID`, {digest: spec.diffId}));
  const tar = new PassThrough({highWaterMark: CHUNK});
  const flowing = pipeline([input, ...stages, tar]);
  flowing.catch(() => {}); // surfaced below
  try {
    for await (const chunk of tar as AsyncIterable<Buffer>) await encoder.write(chunk);
  } catch (e) {
    // A digest or decompression failure upstream is the real cause of a failure here.
    await flowing.catch((upstream: unknown) => {
      throw ioError(upstream, label);
    });
    throw e;
  }
  await flowing.catch((e: unknown) => {
    throw ioError(e, label);
  });
}
