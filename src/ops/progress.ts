import {Transform, type TransformCallback} from 'node:stream';

/**
 * Where long operations report bytes done; the CLI draws a bar on a TTY, the library prints nothing.
 */
export interface Progress {
  /** A phase begins: `total` bytes expected (0 when unknown). */
  start(label: string, total: number): void;
  advance(bytes: number): void;
  stop(): void;
}

export const silentProgress: Progress = {start: () => {}, advance: () => {}, stop: () => {}};

/** A pass-through stream that reports the bytes flowing through it. */
export function progressMeter(progress: Progress): Transform {
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      progress.advance(chunk.length);
      done(null, chunk);
    },
  });
}
