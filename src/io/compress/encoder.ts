import {FerryError, UsageError} from '../../errors.js';
import type {Compression} from '../../model/media-types.js';
import {GZIP_LEVEL, GzipBlockEncoder} from './gzip.js';
import type {Emit, Encoder} from './types.js';
import {ZSTD_LEVEL, ZstdEncoder} from './zstd.js';

export type {Emit, Encoder};

/** The levels each encoder takes (zstd's 20–22 need --ultra windows: not offered) and its default. */
export const COMPRESSION_LEVELS = {gzip: {min: 1, max: 9, default: GZIP_LEVEL}, zstd: {min: 1, max: 19, default: ZSTD_LEVEL}} as const;

/** A usage error unless `level` is one `to` takes (only gzip and zstd have levels). */
export function checkCompressionLevel(to: string | undefined, level: number): void {
  if (to !== 'gzip' && to !== 'zstd') throw new UsageError(`--compress-level ${level}: a level applies to --compress gzip or zstd`);
  const {min, max} = COMPRESSION_LEVELS[to];
  if (!Number.isInteger(level) || level < min || level > max) throw new UsageError(`--compress-level ${level}: ${to} levels are ${min} to ${max}`);
}

/**
 * The encoder for a layer's output compression, with fixed parameters (gzip in 1 MiB blocks, no
 * names or timestamps; the level given or the default) so the same input and level always give the
 * same bytes.
 */
export function encoderFor(to: Compression, emit: Emit, label: string, level?: number): Encoder {
  switch (to) {
    case 'gzip':
      return new GzipBlockEncoder(level === undefined ? {} : {level}, emit);
    case 'zstd':
      return new ZstdEncoder(emit, level);
    case 'none':
      return {write: async (data) => emit(data), end: async () => {}};
    default:
      throw new FerryError('UNSUPPORTED', `${label}: cannot write ${to} layers`);
  }
}
