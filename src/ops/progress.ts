/**
 * Where long operations report bytes done; the CLI draws a bar on a TTY, the library prints nothing.
 */
export interface Progress {
  /** A phase begins: `total` bytes expected (0 when unknown). */
  start(label: string, total: number): void;
  advance(bytes: number): void;
  stop(): void;
  /** One blob of a transfer begins (a download or upload): its own bytes, rate and ETA, until done(). */
  blob?(label: string, total: number): BlobProgress;
}

export interface BlobProgress {
  advance(bytes: number): void;
  done(): void;
}

export const silentProgress: Progress = {start: () => {}, advance: () => {}, stop: () => {}};
