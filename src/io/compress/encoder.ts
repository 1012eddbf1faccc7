import {FerryError} from '../../errors.js';
import type {Compression} from '../../model/media-types.js';
import {GzipBlockEncoder} from './gzip.js';
import type {Emit, Encoder} from './types.js';
import {ZstdEncoder} from './zstd.js';

export type {Emit, Encoder};

/**
 * The encoder for a layer's output compression, with fixed parameters (gzip level 6 in 1 MiB
 * blocks, zstd level 3, no names or timestamps) so the same input always gives the same bytes.
 */
export function encoderFor(to: Compression, emit: Emit, label: string): Encoder {
  switch (to) {
    case 'gzip':
      return new GzipBlockEncoder({}, emit);
    case 'zstd':
      return new ZstdEncoder(emit);
    case 'none':
      return {write: async (data) => emit(data), end: async () => {}};
    default:
      throw new FerryError('UNSUPPORTED', `${label}: cannot write ${to} layers`);
  }
}
