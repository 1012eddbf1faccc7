import {open, type FileHandle} from 'node:fs/promises';
import {DigestMismatchError, ioError, SizeMismatchError} from '../../errors.js';
import type {Digest} from '../../model/digest.js';
import type {Compression} from '../../model/media-types.js';
import type {Region} from '../../model/region.js';
import type {Limits} from '../../settings.js';
import {refuseEntryProblems} from '../../tar/walk.js';
import {CHUNK, regionChunks, writeFull} from '../bytes/chunks.js';
import {FileRange, openRegionReader} from '../bytes/file-range.js';
import {isAllZero, MIN_HOLE} from '../bytes/zeros.js';
import {encoderFor} from '../compress/encoder.js';
import {sniffCompression, SNIFF_BYTES} from '../compress/sniff.js';
import {consumeChecked, explainFailure, type LayerSource} from './checked-read.js';
import {BlobCheck} from './digest-check.js';

/**
 * Blob jobs: the work on a blob that sits in a file, done by offset through reused buffers so it can
 * run on a worker thread (pool.ts) with no bytes crossing threads. Every byte a job reads is checked
 * with the same BlobCheck the streaming path uses (checked-read.ts), under the same rule.
 */

/**
 * Copies a region into a new file, or into a file ferry is writing at an offset never written
 * before (a member of a tar being written): runs of zeros are left as holes.
 */
export interface CopyJob {
  kind: 'copy';
  source: Region;
  /** When given, the bytes must hash to `digest` and number `size` (verify while copying). */
  verify?: {digest: Digest; size: number; what: string};
  /** `offset` undefined: a new file (refused if it exists); otherwise written into `path` at `offset`. */
  target: {path: string; offset?: number};
}

/**
 * Re-encodes a layer blob (a region of a file) into a new file: see transcodeLayer.
 */
export interface TranscodeJob {
  kind: 'transcode';
  source: Region;
  to: Compression;
  /** The gzip or zstd level (default: the encoder's). */
  level?: number;
  blob: {digest: Digest; size: number};
  diffId: Digest;
  /** A new file (must not exist). */
  target: string;
  limits: Limits;
}

/**
 * Reads a region and checks it: its digest and size against the descriptor and, when the blob is
 * an uncompressed layer whose descriptor digest is not its diffID, the same bytes against the diffID.
 */
export interface CheckJob {
  kind: 'check';
  source: Region;
  verify: {digest: Digest; size: number; what: string};
  diffId?: {digest: Digest; what: string};
}

export type BlobJob = CopyJob | TranscodeJob | CheckJob;

export interface BlobJobResult {
  /** Bytes written (copy, transcode) or read (check). */
  bytes: number;
  /** Digest of the bytes written (transcode) or read (check). */
  digest?: Digest;
}

export type OnBytes = (bytes: number) => void;

/** Starts a progress line for one blob of a transfer (its label and size); the line ends with done(). */
export type TrackBlob = (label: string, total: number) => {advance(bytes: number): void; done(): void};

/** A stored blob's size is known without reading it: a wrong one fails before any byte is read. */
function checkSize(source: Region, verify: {size: number; what: string} | undefined): void {
  if (verify && verify.size !== source.size) throw new SizeMismatchError(verify.what, verify.size, source.size);
}

/**
 * Copies with positional reads and writes through three buffers in rotation — one read ahead, one
 * hashed, one written behind — so the disk and the hash overlap. Zeros are not written: the target
 * is new (or a region of one ferry is writing), never written before, so a hole reads back as zeros.
 */
export async function runCopy(job: CopyJob, onBytes: OnBytes = () => {}): Promise<BlobJobResult> {
  const {source, verify, target} = job;
  checkSize(source, verify);
  const output = await open(target.path, target.offset === undefined ? 'wx' : 'r+', 0o644).catch((e: unknown) => {
    throw ioError(e, target.path);
  });
  try {
    const base = target.offset ?? 0;
    // A new file gets its length first: no write extends it, and a hole at its end still counts.
    if (target.offset === undefined && source.size > 0) await output.truncate(source.size);
    const check = verify ? new BlobCheck(verify.what, verify) : undefined;
    const writes: Array<Promise<void>> = [Promise.resolve(), Promise.resolve(), Promise.resolve()];
    let bytes = 0;
    for await (const {chunk, index, position} of regionChunks(source, {buffers: 3, hold: (i) => writes[i]!})) {
      check?.update(chunk);
      if (chunk.length >= MIN_HOLE && isAllZero(chunk)) writes[index] = Promise.resolve();
      else {
        writes[index] = writeFull(output, chunk, base + position).catch((e: unknown) => {
          throw ioError(e, target.path);
        });
        writes[index]!.catch(() => {}); // surfaced below, or when the buffer comes round again
      }
      bytes += chunk.length;
      onBytes(chunk.length);
    }
    await Promise.all(writes);
    check?.finish();
    return {bytes};
  } finally {
    await output.close().catch(() => {});
  }
}

/** One read of the region, one hash for both digests (an uncompressed layer's blob is its tar). */
export async function runCheck(job: CheckJob, onBytes: OnBytes = () => {}): Promise<BlobJobResult> {
  checkSize(job.source, job.verify);
  const check = new BlobCheck(job.verify.what, job.verify);
  for await (const {chunk} of regionChunks(job.source)) {
    check.update(chunk);
    onBytes(chunk.length);
  }
  const digest = check.finish();
  if (job.diffId && job.diffId.digest !== digest) throw new DigestMismatchError(job.diffId.what, job.diffId.digest, digest);
  return {bytes: check.bytes, digest};
}

/**
 * Writes a job's output: hashes every byte and gathers the pieces (stored-block headers and bodies,
 * zstd's outputs) into 1 MiB positional writes through two buffers in turn, one filling while the
 * other is written behind (the profile showed workers idle a third of the time waiting on their own
 * writes). Zeros stay holes.
 */
class HashingFileSink {
  /** No hash where the output's digest is known already (an uncompressed output is its checked diffID). */
  readonly #check: BlobCheck | undefined;
  bytes = 0;
  readonly #buffers = [Buffer.allocUnsafeSlow(CHUNK), Buffer.allocUnsafeSlow(CHUNK)] as const;
  readonly #writes: [Promise<void>, Promise<void>] = [Promise.resolve(), Promise.resolve()];
  #current: 0 | 1 = 0;
  #buffered = 0;
  #position = 0;
  constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
    hashed: boolean,
  ) {
    this.#check = hashed ? new BlobCheck('output') : undefined;
  }

  readonly write = async (data: Buffer): Promise<void> => {
    this.#check?.update(data);
    this.bytes += data.length;
    let offset = 0;
    while (offset < data.length) {
      const take = Math.min(data.length - offset, CHUNK - this.#buffered);
      data.copy(this.#buffers[this.#current], this.#buffered, offset, offset + take);
      this.#buffered += take;
      offset += take;
      if (this.#buffered === CHUNK) await this.#flush();
    }
  };

  async #flush(): Promise<void> {
    if (this.#buffered === 0) return;
    const index = this.#current;
    const data = this.#buffers[index].subarray(0, this.#buffered);
    const at = this.#position;
    this.#position += this.#buffered;
    this.#buffered = 0;
    this.#writes[index] = data.length >= MIN_HOLE && isAllZero(data) ? Promise.resolve() : writeFull(this.handle, data, at).catch((e: unknown) => {
      throw ioError(e, this.path);
    });
    this.#writes[index].catch(() => {}); // surfaced when this buffer comes round again, or in finish()
    this.#current = index === 0 ? 1 : 0;
    await this.#writes[this.#current];
  }

  /** Flushes, waits for the writes, sets the length (a hole at the end still counts); returns the digest, if hashed. */
  async finish(): Promise<Digest | undefined> {
    await this.#flush();
    await Promise.all(this.#writes);
    if ((await this.handle.stat()).size < this.#position) {
      await this.handle.truncate(this.#position).catch((e: unknown) => {
        throw ioError(e, this.path);
      });
    }
    return this.#check?.finish();
  }
}

/** A blob in a region of a file, as the checked read sees a layer. */
export function regionLayer(region: Region, blob: {digest: Digest; size: number}, diffId: Digest, label = region.label): LayerSource {
  const range = FileRange.of(region);
  let compression: Compression | undefined;
  return {
    descriptor: {mediaType: '', digest: blob.digest, size: blob.size},
    diffId,
    label,
    compression: async () => (compression ??= sniffCompression(await range.read(0, SNIFF_BYTES))),
    openCompressed: () => range.stream(),
  };
}

/**
 * Re-encodes a layer blob into a new file in one pass: the blob is checked against its digest and
 * size, the uncompressed stream against the diffID, and the output hashed into its new digest (the
 * diffID never changes; fixed parameters keep the new digest deterministic). An uncompressed blob in
 * a file is read through reused buffers, one hash serving blob and diffID; anything else goes through
 * the checked read.
 */
export async function transcodeLayer(source: LayerSource, spec: {to: Compression; level?: number; target: string; limits: Limits; region?: Region}, onBytes: OnBytes = () => {}): Promise<BlobJobResult> {
  const label = source.label;
  const output = await open(spec.target, 'wx', 0o600).catch((e: unknown) => {
    throw ioError(e, spec.target);
  });
  try {
    const sink = new HashingFileSink(output, spec.target, spec.to !== 'none');
    const encoder = encoderFor(spec.to, sink.write, label, spec.level);
    if (spec.region && (await source.compression()) === 'none') {
      checkSize(spec.region, {size: source.descriptor.size, what: `${label}: blob`});
      // The entries' safety is in the headers alone: walked by offset, bodies skipped.
      const walk = await openRegionReader(spec.region);
      try {
        await refuseEntryProblems(walk.reader, label);
      } catch (e) {
        throw await explainFailure(source, e); // a blob that is not what it says wins (checked-read.ts)
      } finally {
        await walk.close();
      }
      const check = new BlobCheck(`${label}: blob`, source.descriptor);
      for await (const {chunk} of regionChunks(spec.region)) {
        check.update(chunk);
        onBytes(chunk.length);
        await encoder.write(chunk);
      }
      const digest = check.finish();
      if (source.diffId !== digest) throw new DigestMismatchError(`${label}: diffID`, source.diffId, digest);
    } else {
      // One pass: the checked tar goes to the encoder as it streams, and its entries are walked.
      await consumeChecked(source, (reader) => refuseEntryProblems(reader, label), {
        limits: spec.limits,
        onBytes,
        // Bytes after the compressed stream are no part of the layer: the new blob leaves them out.
        allowTrailing: true,
        tap: (chunk) => encoder.write(chunk),
      });
    }
    await encoder.end();
    const digest = await sink.finish();
    return {bytes: sink.bytes, digest: digest ?? source.diffId};
  } finally {
    await output.close().catch(() => {});
  }
}

/** Runs a job in the calling thread. */
export async function executeJob(job: BlobJob, onBytes?: OnBytes): Promise<BlobJobResult> {
  if (job.kind === 'copy') return runCopy(job, onBytes);
  if (job.kind === 'check') return runCheck(job, onBytes);
  return transcodeLayer(regionLayer(job.source, job.blob, job.diffId), {to: job.to, ...(job.level === undefined ? {} : {level: job.level}), target: job.target, limits: job.limits, region: job.source}, onBytes);
}
