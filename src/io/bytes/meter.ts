import {Transform, type Readable, type TransformCallback} from 'node:stream';

/** A pass-through stage that reports the bytes flowing through it (progress). */
export class Meter extends Transform {
  constructor(private readonly onBytes: (bytes: number) => void) {
    super({highWaterMark: 1 << 20});
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.onBytes(chunk.length);
    done(null, chunk);
  }
}

/** `source` with its bytes reported as they are read; the source's errors surface on the result. */
export function metered(source: Readable, onBytes: ((bytes: number) => void) | undefined): Readable {
  if (!onBytes) return source;
  const meter = new Meter(onBytes);
  source.on('error', (e) => meter.destroy(e));
  meter.on('close', () => source.destroy());
  return source.pipe(meter);
}
