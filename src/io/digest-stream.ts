import {Transform, type TransformCallback} from 'node:stream';
import {DigestMismatchError, SizeMismatchError} from '../errors.js';
import {newHasher, type Digest} from '../model/digest.js';
import type {Hash} from 'node:crypto';

/**
 * Passes bytes through while hashing and counting them; at the end, checks them against the
 * expected digest/size when given (verify-while-copying), and exposes what it saw.
 */
export class DigestStream extends Transform {
  readonly #hash: Hash;
  bytes = 0;
  digest: Digest | undefined;
  constructor(
    private readonly what: string,
    private readonly expected?: {digest?: Digest | undefined; size?: number | undefined},
    algorithm: Digest = 'sha256:' as Digest,
  ) {
    super({highWaterMark: 1 << 20});
    this.#hash = newHasher(expected?.digest ?? algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    const size = this.expected?.size;
    if (size !== undefined && this.bytes > size) {
      done(new SizeMismatchError(this.what, size, this.bytes));
      return;
    }
    this.#hash.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const algorithm = (this.expected?.digest ?? 'sha256:').split(':')[0];
    this.digest = `${algorithm}:${this.#hash.digest('hex')}` as Digest;
    const size = this.expected?.size;
    if (size !== undefined && this.bytes !== size) return done(new SizeMismatchError(this.what, size, this.bytes));
    const want = this.expected?.digest;
    if (want !== undefined && want !== this.digest) return done(new DigestMismatchError(this.what, want, this.digest));
    done();
  }
}
