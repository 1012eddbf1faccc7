import {open, type FileHandle} from 'node:fs/promises';
import os from 'node:os';
import {Worker} from 'node:worker_threads';
import {DigestMismatchError, FerryError, ioError, SizeMismatchError, type FerryErrorCode} from '../errors.js';
import {newHasher, type Digest} from '../model/digest.js';
import type {Compression} from '../model/media-types.js';
import {isAllZero} from './sparse.js';

/** A byte range of a file, by path: what a job reads (it crosses threads, so no handles or streams). */
export interface Region {
  path: string;
  offset: number;
  size: number;
  /** Human name for errors: "image.tar:<id>/layer.tar". */
  label: string;
}

/**
 * Copies a region into a new file or into a file ferry is writing at an offset never written before
 * (a member of a tar being written): runs of zeros are left as holes.
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
 * Re-encodes a layer blob into a new file in one pass: the blob is checked against its digest and
 * size, the uncompressed stream against the diffID, and the output hashed into its new digest.
 */
export interface TranscodeJob {
  kind: 'transcode';
  source: Region;
  from: Compression;
  to: Compression;
  blob: {digest: Digest; size: number};
  diffId: Digest;
  target: string;
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
  /** Bytes written. */
  bytes: number;
  /** Digest of the bytes written (when the job hashed them). */
  digest?: Digest;
}

export type OnBytes = (bytes: number) => void;

const CHUNK = 1 << 20;


async function readFull(handle: FileHandle, buffer: Buffer, length: number, position: number): Promise<Buffer> {
  let got = 0;
  while (got < length) {
    const {bytesRead} = await handle.read(buffer, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buffer.subarray(0, got);
}

async function writeFull(handle: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const {bytesWritten} = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Copies a region with positional reads and writes through two reused buffers: the next read is in
 * flight while the current chunk is hashed and written, and no chunk is allocated per read (no GC
 * churn, unlike a 1 MiB-per-chunk stream). The profile of `convert --compress keep` showed the
 * stream path spending 10% in the garbage collector and the main thread hashing everything.
 */
export async function runCopy(job: CopyJob, onBytes: OnBytes = () => {}): Promise<BlobJobResult> {
  const {source, verify, target} = job;
  // A stored blob's size is known without reading it: a wrong one fails before any byte is copied.
  if (verify && verify.size !== source.size) throw new SizeMismatchError(verify.what, verify.size, source.size);
  const input = await open(source.path, 'r').catch((e) => {
    throw ioError(e, source.label);
  });
  let output: FileHandle | undefined;
  try {
    output = await open(target.path, target.offset === undefined ? 'wx' : 'r+', 0o644).catch((e) => {
      throw ioError(e, target.path);
    });
    const base = target.offset ?? 0;
    const hash = verify ? newHasher(verify.digest) : undefined;
    const size = source.size;
    // A new file gets its length first: no write extends it, and a run of zeros left as a hole at
    // its end still counts.
    if (target.offset === undefined && size > 0) await output.truncate(size);
    // Three buffers in rotation: one being read ahead, one being hashed, one being written behind.
    const buffers = [0, 1, 2].map(() => Buffer.allocUnsafeSlow(Math.min(CHUNK, size)));
    const writes: Array<Promise<void>> = [Promise.resolve(), Promise.resolve(), Promise.resolve()];
    const readInto = async (index: number, position: number): Promise<Buffer> => {
      await writes[index]; // the buffer's last write must be done before it is refilled
      return readFull(input, buffers[index]!, Math.min(CHUNK, size - position), source.offset + position).catch((e) => {
        throw ioError(e, source.label);
      });
    };
    let done = 0;
    let index = 0;
    let next = size > 0 ? readInto(0, 0) : undefined;
    while (next) {
      const chunk = await next;
      if (chunk.length === 0) throw new FerryError('BAD_ARCHIVE', `${source.label}: truncated: the file ends after ${done} of ${size} bytes`);
      const at = done;
      const current = index;
      done += chunk.length;
      index = (index + 1) % 3;
      next = done < size ? readInto(index, done) : undefined;
      next?.catch(() => {}); // surfaced when awaited
      hash?.update(chunk);
      // Zeros are not written: the target is a new file or a region of one ferry is writing, never
      // written before, so a hole reads back as the same zeros (SparseWriter).
      if (chunk.length >= 4096 && isAllZero(chunk)) writes[current] = Promise.resolve();
      else {
        writes[current] = writeFull(output, chunk, base + at).catch((e) => {
          throw ioError(e, target.path);
        });
        writes[current]!.catch(() => {}); // surfaced below or when the buffer comes round again
      }
      onBytes(chunk.length);
    }
    await Promise.all(writes);
    if (verify && hash) {
      const actual = `${verify.digest.slice(0, verify.digest.indexOf(':'))}:${hash.digest('hex')}` as Digest;
      if (actual !== verify.digest) throw new DigestMismatchError(verify.what, verify.digest, actual);
    }
    return {bytes: done};
  } finally {
    await input.close().catch(() => {});
    await output?.close().catch(() => {});
  }
}

/** The check job: one read of the region through two reused buffers, one hash for both digests. */
export async function runCheck(job: CheckJob, onBytes: OnBytes = () => {}): Promise<BlobJobResult> {
  const {source, verify} = job;
  if (verify.size !== source.size) throw new SizeMismatchError(verify.what, verify.size, source.size);
  const input = await open(source.path, 'r').catch((e) => {
    throw ioError(e, source.label);
  });
  try {
    const hash = newHasher(verify.digest);
    const buffers = [Buffer.allocUnsafeSlow(Math.min(CHUNK, source.size)), Buffer.allocUnsafeSlow(Math.min(CHUNK, source.size))] as const;
    let done = 0;
    let index: 0 | 1 = 0;
    const readAt = (i: 0 | 1, position: number): Promise<Buffer> =>
      readFull(input, buffers[i], Math.min(CHUNK, source.size - position), source.offset + position).catch((e) => {
        throw ioError(e, source.label);
      });
    let next = source.size > 0 ? readAt(0, 0) : undefined;
    while (next) {
      const chunk = await next;
      if (chunk.length === 0) throw new FerryError('BAD_ARCHIVE', `${source.label}: truncated: the file ends after ${done} of ${source.size} bytes`);
      done += chunk.length;
      index = index === 0 ? 1 : 0;
      next = done < source.size ? readAt(index, done) : undefined;
      hash.update(chunk);
      onBytes(chunk.length);
    }
    const actual = `${verify.digest.slice(0, verify.digest.indexOf(':'))}:${hash.digest('hex')}` as Digest;
    if (actual !== verify.digest) throw new DigestMismatchError(verify.what, verify.digest, actual);
    if (job.diffId && job.diffId.digest !== actual) throw new DigestMismatchError(job.diffId.what, job.diffId.digest, actual);
    return {bytes: done, digest: actual};
  } finally {
    await input.close().catch(() => {});
  }
}

/** Runs a job in the calling thread. */
export async function executeJob(job: BlobJob, onBytes?: OnBytes): Promise<BlobJobResult> {
  if (job.kind === 'copy') return runCopy(job, onBytes);
  if (job.kind === 'check') return runCheck(job, onBytes);
  // Loaded on demand: a worker that only copies never pays for zlib/zstd set-up.
  const {runTranscode} = await import('./transcode.js');
  return runTranscode({region: job.source}, {...job, label: job.source.label}, onBytes);
}

/** An error as it crosses from a worker: FerryError's code and, for mismatches, both sides. */
export interface SerializedError {
  name: string;
  code: FerryErrorCode;
  message: string;
  what?: string;
  expected?: string | number;
  actual?: string | number;
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof DigestMismatchError || error instanceof SizeMismatchError) {
    return {name: error.name, code: error.code, message: error.message, what: error.what, expected: error.expected, actual: error.actual};
  }
  if (error instanceof FerryError) return {name: error.name, code: error.code, message: error.message};
  return {name: 'Error', code: 'IO', message: error instanceof Error ? error.message : String(error)};
}

export function deserializeError(e: SerializedError): FerryError {
  if (e.name === 'DigestMismatchError') return new DigestMismatchError(e.what ?? '', String(e.expected), String(e.actual));
  if (e.name === 'SizeMismatchError') return new SizeMismatchError(e.what ?? '', Number(e.expected), Number(e.actual));
  return new FerryError(e.code, e.message);
}

/** Messages between the pool and a worker. */
export type ToWorker = {id: number; job: BlobJob};
export type FromWorker = {id: number; progress: number} | {id: number; result: BlobJobResult} | {id: number; error: SerializedError};

/** Jobs smaller than this run in the calling thread: a worker's start-up (~40 ms) would cost more. */
const MIN_WORKER_BYTES = 8 << 20;

interface Pending {
  job: BlobJob;
  onBytes: OnBytes;
  resolve: (r: BlobJobResult) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  current: (Pending & {id: number}) | undefined;
}

/**
 * Runs blob jobs on worker threads, so that hashing (SHA-256 runs at ~1.6 GB/s per core), zstd and
 * the gzip bookkeeping use every core instead of the main thread alone; each worker reads and writes
 * the files itself, so no blob bytes cross threads. The output of a job does not depend on where it
 * runs. Workers start on demand and only for big jobs; without workers (one core, FERRY_WORKERS=0, or
 * running from TypeScript sources under a test runner) jobs run in the calling thread.
 */
export class BlobPool {
  readonly #size: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  #nextId = 1;
  #closed = false;

  constructor(size = os.availableParallelism()) {
    this.#size = workersAvailable() ? Math.max(0, size) : 0;
  }

  run(job: BlobJob, onBytes: OnBytes = () => {}): Promise<BlobJobResult> {
    if (this.#closed) return Promise.reject(new FerryError('INTERRUPTED', 'blob pool is closed'));
    if (this.#size < 2 || job.source.size < MIN_WORKER_BYTES) return executeJob(job, onBytes);
    return new Promise<BlobJobResult>((resolve, reject) => {
      this.#queue.push({job, onBytes, resolve, reject});
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      let slot = this.#slots.find((s) => s.current === undefined);
      if (!slot) {
        if (this.#slots.length >= this.#size) return;
        slot = this.#spawn();
      }
      const pending = this.#queue.shift()!;
      const id = this.#nextId++;
      slot.current = {...pending, id};
      slot.worker.ref();
      slot.worker.postMessage({id, job: pending.job} satisfies ToWorker);
    }
  }

  #spawn(): Slot {
    const worker = new Worker(new URL('./blob-worker.js', import.meta.url));
    const slot: Slot = {worker, current: undefined};
    worker.on('message', (message: FromWorker) => {
      const current = slot.current;
      if (!current || current.id !== message.id) return;
      if ('progress' in message) {
        current.onBytes(message.progress);
        return;
      }
      slot.current = undefined;
      worker.unref();
      if ('result' in message) current.resolve(message.result);
      else current.reject(deserializeError(message.error));
      this.#dispatch();
    });
    const fail = (error: unknown): void => {
      const index = this.#slots.indexOf(slot);
      if (index >= 0) this.#slots.splice(index, 1);
      slot.current?.reject(new FerryError('IO', `blob worker failed: ${error instanceof Error ? error.message : String(error)}`));
      slot.current = undefined;
      if (!this.#closed) this.#dispatch();
    };
    worker.on('error', fail);
    // A worker that is gone (however it went) leaves the pool, so no job is ever posted to it.
    worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    this.#slots.push(slot);
    return slot;
  }

  /** Stops the workers; jobs still queued or running fail (after an error nobody waits for them). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const p of this.#queue.splice(0)) p.reject(new FerryError('INTERRUPTED', 'blob pool closed before the job ran'));
    const slots = this.#slots.splice(0);
    for (const slot of slots) {
      slot.current?.reject(new FerryError('INTERRUPTED', 'blob pool closed while the job ran'));
      slot.current = undefined;
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}

/** Workers need the compiled worker script next to this module (not there when running .ts sources). */
function workersAvailable(): boolean {
  return process.env.FERRY_WORKERS !== '0' && import.meta.url.endsWith('.js');
}
