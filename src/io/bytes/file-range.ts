import {createReadStream} from 'node:fs';
import {open, readFile, stat} from 'node:fs/promises';
import {Readable} from 'node:stream';
import {FerryError, ioError} from '../../errors.js';
import {RegionReader} from './readers.js';
import type {Region} from '../../model/region.js';

export type {Region};

/**
 * A re-openable Region: a blob in an OCI layout directory, a member of a tar read by offset, a
 * spooled temp file. Every read of archive content goes through one of these.
 */
export class FileRange implements Region {
  constructor(
    readonly path: string,
    readonly offset: number,
    readonly size: number,
    /** Human name for errors: "edge.tar:blobs/sha256/ab…". */
    readonly label: string,
  ) {}

  static async ofFile(path: string, label = path): Promise<FileRange> {
    try {
      const s = await stat(path);
      if (s.isDirectory()) throw new FerryError('BAD_ARCHIVE', `${label}: is a directory, expected a file`);
      return new FileRange(path, 0, s.size, label);
    } catch (e) {
      throw ioError(e, label);
    }
  }

  sub(offset: number, size: number, label: string): FileRange {
    return new FileRange(this.path, this.offset + offset, size, label);
  }

  stream(start = 0, end = this.size, highWaterMark = 1 << 20): Readable {
    // createReadStream with end < start would read to EOF; an empty range must yield nothing.
    if (end <= start) return Readable.from([]);
    return createReadStream(this.path, {start: this.offset + start, end: this.offset + end - 1, highWaterMark});
  }

  async read(position: number, length: number): Promise<Buffer> {
    const handle = await open(this.path, 'r').catch((e) => {
      throw ioError(e, this.label);
    });
    try {
      const want = Math.max(0, Math.min(length, this.size - position));
      const buf = Buffer.alloc(want);
      let got = 0;
      while (got < want) {
        const {bytesRead} = await handle.read(buf, got, want - got, this.offset + position + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    } finally {
      await handle.close();
    }
  }

  /** Reads the whole range; only for small JSON members, capped by the caller's limit. */
  async readAll(limit: number): Promise<Buffer> {
    if (this.size > limit) throw new FerryError('LIMIT_EXCEEDED', `${this.label}: ${this.size} bytes exceeds the ${limit}-byte limit for metadata`);
    if (this.offset === 0) {
      const data = await readFile(this.path).catch((e) => {
        throw ioError(e, this.label);
      });
      if (data.length !== this.size) throw new FerryError('BAD_ARCHIVE', `${this.label}: changed while being read`);
      return data;
    }
    const data = await this.read(0, this.size);
    if (data.length !== this.size) throw new FerryError('BAD_ARCHIVE', `${this.label}: truncated (${data.length} of ${this.size} bytes)`);
    return data;
  }

  async openReader(): Promise<{reader: RegionReader; close: () => Promise<void>}> {
    return openRegionReader(this);
  }

  /** The same range as a FileRange (a Region that is plain data gets the methods back). */
  static of(region: Region): FileRange {
    return region instanceof FileRange ? region : new FileRange(region.path, region.offset, region.size, region.label);
  }
}

/** Opens a region for one sequential walk (tar headers by offset); close() releases the handle. */
export async function openRegionReader(region: Region): Promise<{reader: RegionReader; close: () => Promise<void>}> {
  const handle = await open(region.path, 'r').catch((e) => {
    throw ioError(e, region.label);
  });
  return {reader: new RegionReader(handle, region), close: () => handle.close()};
}
