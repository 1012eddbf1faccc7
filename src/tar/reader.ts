/**
 * What the tar walker reads from: sequential bytes with skip. Implementations live in
 * src/io/bytes/readers.ts (a file region, where skips are free seeks, and a stream, where skips
 * consume); the codec itself never touches files or streams.
 */
export interface ByteReader {
  readonly position: number;
  /** Human name for errors (the archive, the layer). */
  readonly label: string;
  /** Up to `n` bytes; shorter only at end of input. The buffer is the caller's to keep. */
  readUpTo(n: number): Promise<Buffer>;
  /** Skips up to `n` bytes; returns how many were skipped (fewer only at end of input). */
  skip(n: number): Promise<number>;
  /** Exactly `n` bytes as chunks; throws if the input ends first. */
  chunks(n: number, what: string): AsyncGenerator<Buffer>;
  /** True when skip() seeks rather than reads. */
  readonly seekable: boolean;
}
