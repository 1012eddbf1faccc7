const ZEROS = Buffer.alloc(1 << 20);

/** True when every byte is 0 (cheap for ordinary data: the comparison stops at the first non-zero byte). */
export function isAllZero(data: Buffer): boolean {
  if (data.length === 0 || data[0] !== 0 || data[data.length - 1] !== 0) return data.length === 0;
  for (let at = 0; at < data.length; at += ZEROS.length) {
    const piece = data.subarray(at, Math.min(data.length, at + ZEROS.length));
    if (!piece.equals(ZEROS.subarray(0, piece.length))) return false;
  }
  return true;
}

/** Chunks of zeros at least this big are left as holes (a filesystem block; smaller ones are not worth it). */
export const MIN_HOLE = 4096;
