import type {FileHandle} from 'node:fs/promises';
import {ioError} from '../../errors.js';
import {isAllZero, MIN_HOLE} from '../bytes/zeros.js';

/**
 * Sequential positional writes into a file ferry has just created, skipping chunks of zeros: they
 * stay holes, which read back as zeros, so the bytes are the same and a layer of zeros costs no
 * writing (an 8 GB sparse image took 17 s of system time to copy, most of it writing zeros).
 * `finish()` sets the final length, so a file ending in zeros is still the right size.
 */
export class SparseWriter {
  position = 0;
  /** The write in flight: one at a time, so the caller reads the next chunk while this one is written. */
  #inFlight: Promise<void> = Promise.resolve();
  constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
    start = 0,
  ) {
    this.position = start;
  }

  /** Queues `data` (which must not change until finish() or the next write() resolves). */
  async write(data: Buffer): Promise<void> {
    await this.#inFlight;
    const at = this.position;
    this.position += data.length;
    if (data.length >= MIN_HOLE && isAllZero(data)) return;
    this.#inFlight = this.#writeAt(data, at);
    this.#inFlight.catch(() => {}); // surfaced by the next write() or finish()
  }

  async #writeAt(data: Buffer, at: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const {bytesWritten} = await this.handle.write(data, done, data.length - done, at + done).catch((e) => {
        throw ioError(e, this.path);
      });
      done += bytesWritten;
    }
  }

  /** Waits for the last write and extends the file to the end of what was written (holes included). */
  async finish(): Promise<void> {
    await this.#inFlight;
    const {size} = await this.handle.stat();
    if (size < this.position) {
      await this.handle.truncate(this.position).catch((e) => {
        throw ioError(e, this.path);
      });
    }
  }
}
