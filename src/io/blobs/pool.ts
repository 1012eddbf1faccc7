import {Worker} from 'node:worker_threads';
import {DigestMismatchError, FerryError, SizeMismatchError, type FerryErrorCode} from '../../errors.js';
import {executeJob, type BlobJob, type BlobJobResult, type OnBytes} from './jobs.js';

export type {BlobJob, BlobJobResult, OnBytes};

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
 * runs. Workers start on demand and only for big jobs; without workers (size < 2: one core, or
 * settings.workers 0, or running from TypeScript sources under a test runner) jobs run in the
 * calling thread.
 */
export class BlobPool {
  readonly #size: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  #nextId = 1;
  #closed = false;

  constructor(size: number) {
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
    const worker = new Worker(new URL('./worker.js', import.meta.url));
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

/**
 * Workers need the compiled worker script next to this module: there in dist/src (.js) and in the
 * bundled CLI (dist/bundle/ferry.cjs, with worker.js beside it), not when running .ts sources.
 */
function workersAvailable(): boolean {
  return /\.c?js$/.test(import.meta.url);
}
