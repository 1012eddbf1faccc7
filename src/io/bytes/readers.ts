import type {FileHandle} from 'node:fs/promises';
import {FerryError, ioError} from '../../errors.js';
import type {ByteReader} from '../../tar/reader.js';
import type {Region} from '../../model/region.js';

export type {ByteReader};

/** Bodies are read in chunks of this size. */
const CHUNK = 1 << 20;
/** Small reads (tar headers) are served from a read-ahead window of this size. */
const WINDOW = 128 * 1024;

/**
 * A file region read sequentially, where skips are free (reads go by offset). Small reads come from
 * a read-ahead window once the bodies being skipped are small: a layer of 25k small files took 25k
 * 512-byte reads (1 s of a 1.7 s convert); with the window one read serves the headers of a whole
 * run of small files. Between big bodies nothing is read ahead, so the bodies stay unread. Windows
 * are fresh buffers, never reused: a view into one stays valid for whoever keeps it.
 */
export class RegionReader implements ByteReader {
  readonly seekable = true;
  readonly label: string;
  #pos = 0;
  #window: Buffer = Buffer.alloc(0);
  /** Region offset of #window[0]. */
  #windowAt = 0;
  #readAhead = false;

  constructor(
    private readonly handle: FileHandle,
    private readonly region: Region,
  ) {
    this.label = region.label;
  }

  get position(): number {
    return this.#pos;
  }

  async #read(at: number, length: number): Promise<Buffer> {
    const want = Math.max(0, Math.min(length, this.region.size - at));
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const {bytesRead} = await this.handle.read(buf, got, want - got, this.region.offset + at + got).catch((e: unknown) => {
        throw ioError(e, this.label);
      });
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === want ? buf : buf.subarray(0, got);
  }

  async readUpTo(n: number): Promise<Buffer> {
    const at = this.#pos - this.#windowAt;
    const inWindow = at >= 0 && at + n <= this.#window.length;
    if (!inWindow && (n >= WINDOW || !this.#readAhead)) {
      const direct = await this.#read(this.#pos, n);
      this.#pos += direct.length;
      return direct;
    }
    if (!inWindow) {
      this.#window = await this.#read(this.#pos, WINDOW);
      this.#windowAt = this.#pos;
    }
    const start = this.#pos - this.#windowAt;
    const out = this.#window.subarray(start, Math.min(start + n, this.#window.length));
    this.#pos += out.length;
    return out;
  }

  async skip(n: number): Promise<number> {
    const step = Math.max(0, Math.min(n, this.region.size - this.#pos));
    this.#pos += step;
    // A skipped body says how far apart headers are (padding skips are shorter than a block).
    if (step >= WINDOW) this.#readAhead = false;
    else if (step >= 512) this.#readAhead = true;
    return step;
  }

  async *chunks(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      const buf = await this.readUpTo(Math.min(left, left >= WINDOW ? CHUNK : WINDOW));
      if (buf.length === 0) throw truncated(what, this.label);
      left -= buf.length;
      yield buf;
    }
  }
}

/** A stream read sequentially (a decompressed layer): skips consume. */
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

  /** The next piece of input as the source produced it (no copying to a size); empty at the end. */
  async nextChunk(): Promise<Buffer> {
    if (this.#pending.length === 0 && !(await this.#fill())) return Buffer.alloc(0);
    const out = this.#pending;
    this.#pending = Buffer.alloc(0);
    this.#pos += out.length;
    return out;
  }

  /** Reads the rest of the input (so a digest over the whole stream completes); returns the bytes read. */
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
