import type {Hash} from 'node:crypto';
import {createReadStream} from 'node:fs';
import {Transform, type TransformCallback} from 'node:stream';
import {DigestMismatchError, SizeMismatchError} from '../../errors.js';
import {newHasher, splitDigest, type Digest} from '../../model/digest.js';

/** What bytes are expected to be: both optional (a new blob is only hashed). */
export interface Expected {
  digest?: Digest | undefined;
  size?: number | undefined;
}

/**
 * Hashes and counts bytes as they pass and checks them against what they should be: a size overrun
 * fails at once (no need to read a lying blob to its end), a short count or a different digest at
 * `finish()`. Both sides of a mismatch are named. Every verify-while-copying check goes through this.
 */
export class BlobCheck {
  readonly #hash: Hash;
  readonly #algorithm: string;
  bytes = 0;
  constructor(
    readonly what: string,
    readonly expected: Expected = {},
  ) {
    this.#algorithm = expected.digest ? splitDigest(expected.digest)[0] : 'sha256';
    this.#hash = newHasher(`${this.#algorithm}:` as Digest);
  }

  update(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    const size = this.expected.size;
    if (size !== undefined && this.bytes > size) throw new SizeMismatchError(this.what, size, this.bytes);
    this.#hash.update(chunk);
  }

  /** The digest of what passed; throws when it is not what was expected. Call once. */
  finish(): Digest {
    const digest = `${this.#algorithm}:${this.#hash.digest('hex')}` as Digest;
    const {size, digest: want} = this.expected;
    if (size !== undefined && this.bytes !== size) throw new SizeMismatchError(this.what, size, this.bytes);
    if (want !== undefined && want !== digest) throw new DigestMismatchError(this.what, want, digest);
    return digest;
  }
}

/** Hashes what a file holds into `check`: its first `bytes` bytes, or all of it (a complete blob, the start of a partial one, a part). */
export async function hashFileInto(check: BlobCheck, file: string, bytes?: number): Promise<void> {
  if (bytes === 0) return;
  for await (const chunk of createReadStream(file, {start: 0, ...(bytes === undefined ? {} : {end: bytes - 1}), highWaterMark: 1 << 20})) check.update(chunk as Buffer);
}

/** BlobCheck as a pass-through stream stage; `digest` is set once the stream ended and matched. */
export class DigestStream extends Transform {
  readonly #check: BlobCheck;
  digest: Digest | undefined;
  constructor(what: string, expected: Expected = {}) {
    super({highWaterMark: 1 << 20});
    this.#check = new BlobCheck(what, expected);
  }

  get bytes(): number {
    return this.#check.bytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.#check.update(chunk);
    } catch (e) {
      done(e as Error);
      return;
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    try {
      this.digest = this.#check.finish();
    } catch (e) {
      done(e as Error);
      return;
    }
    done();
  }
}
