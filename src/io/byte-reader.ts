import type {FileHandle} from 'node:fs/promises';
import {FerryError} from '../errors.js';

/**
 * Sequential reader with skip, over either a file region (skips are free: reads go by offset) or a
 * stream (decompressed layers: skips consume). The tar walker only sees this interface.
 */
export interface ByteReader {
  readonly position: number;
  readonly label: string;
  /** Up to `n` bytes; shorter only at end of input. */
  readUpTo(n: number): Promise<Buffer>;
  skip(n: number): Promise<number>;
  /** Exactly `n` bytes as chunks; throws if the input ends first. */
  chunks(n: number, what: string): AsyncGenerator<Buffer>;
  /** True when skip() seeks rather than reads. */
  readonly seekable: boolean;
}

const CHUNK = 1 << 20;

const READ_AHEAD = 64 * 1024;

export class FileRegionReader implements ByteReader {
  readonly seekable = true;
  #pos = 0;
  readonly #windowBuffer = Buffer.allocUnsafe(READ_AHEAD);
  #window: Buffer = Buffer.alloc(0);
  #windowStart = 0;
  #readAhead = false;
  constructor(
    private readonly handle: FileHandle,
    private readonly base: number,
    private readonly length: number,
    readonly label: string,
  ) {}

  get position(): number {
    return this.#pos;
  }

  async readUpTo(n: number): Promise<Buffer> {
    const want = Math.max(0, Math.min(n, this.length - this.#pos));
    // Small reads (tar headers) come from a read-ahead window once the bodies being skipped are
    // small: a layer of 25k small files took 25k 512-byte reads (1 s of a 1.7 s convert); now one
    // read serves every header in 64 KiB. Between big bodies nothing is read ahead (the bodies stay
    // unread). Reads are copied out, so a caller keeping a header never pins the window.
    let at = this.#pos - this.#windowStart;
    const inWindow = at >= 0 && at + want <= this.#window.length;
    if (want < READ_AHEAD && (inWindow || this.#readAhead)) {
      if (!inWindow) {
        this.#window = await this.#readAt(this.#pos, Math.min(READ_AHEAD, this.length - this.#pos), this.#windowBuffer);
        this.#windowStart = this.#pos;
        at = 0;
      }
      const out = Buffer.from(this.#window.subarray(at, at + want));
      this.#pos += out.length;
      return out;
    }
    const buf = await this.#readAt(this.#pos, want, Buffer.allocUnsafe(want));
    this.#pos += buf.length;
    return buf;
  }

  async #readAt(position: number, want: number, buf: Buffer): Promise<Buffer> {
    let got = 0;
    while (got < want) {
      const {bytesRead} = await this.handle.read(buf, got, want - got, this.base + position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === buf.length ? buf : buf.subarray(0, got);
  }

  async skip(n: number): Promise<number> {
    const step = Math.max(0, Math.min(n, this.length - this.#pos));
    this.#pos += step;
    // A skipped body of a block or more says how far apart headers are (padding skips are shorter).
    if (step >= READ_AHEAD) this.#readAhead = false;
    else if (step >= 512) this.#readAhead = true;
    return step;
  }

  async *chunks(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      const buf = await this.readUpTo(Math.min(left, CHUNK));
      if (buf.length === 0) throw truncated(what, this.label);
      left -= buf.length;
      yield buf;
    }
  }
}

export class StreamReader implements ByteReader {
  readonly seekable = false;
  #pos = 0;
  #pending: Buffer = Buffer.alloc(0);
  #done = false;
  readonly #iterator: AsyncIterator<Buffer>;
  constructor(
    source: AsyncIterable<Buffer | Uint8Array | string>,
    readonly label: string,
  ) {
    this.#iterator = (async function* () {
      for await (const chunk of source) yield typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    })();
  }

  get position(): number {
    return this.#pos;
  }

  async #fill(): Promise<boolean> {
    if (this.#done) return false;
    const next = await this.#iterator.next();
    if (next.done) {
      this.#done = true;
      return false;
    }
    this.#pending = this.#pending.length === 0 ? next.value : Buffer.concat([this.#pending, next.value]);
    return true;
  }

  async readUpTo(n: number): Promise<Buffer> {
    while (this.#pending.length < n && (await this.#fill()));
    const out = this.#pending.subarray(0, Math.min(n, this.#pending.length));
    this.#pending = this.#pending.subarray(out.length);
    this.#pos += out.length;
    return out;
  }

  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      if (this.#pending.length === 0 && !(await this.#fill())) break;
      const step = Math.min(left, this.#pending.length);
      this.#pending = this.#pending.subarray(step);
      this.#pos += step;
      left -= step;
    }
    return n - left;
  }

  async *chunks(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#pending.length === 0 && !(await this.#fill())) throw truncated(what, this.label);
      const out = this.#pending.subarray(0, Math.min(left, this.#pending.length));
      this.#pending = this.#pending.subarray(out.length);
      this.#pos += out.length;
      left -= out.length;
      yield out;
    }
  }

  /** Drains the rest of the input (so a digest over the whole stream completes). */
  async drain(): Promise<number> {
    let n = this.#pending.length;
    this.#pos += n;
    this.#pending = Buffer.alloc(0);
    while (await this.#fill()) {
      n += this.#pending.length;
      this.#pos += this.#pending.length;
      this.#pending = Buffer.alloc(0);
    }
    return n;
  }

  async close(): Promise<void> {
    await this.#iterator.return?.();
  }
}

export function truncated(what: string, label: string): FerryError {
  return new FerryError('BAD_TAR', `${label}: unexpected end of data in ${what} (truncated?)`);
}
