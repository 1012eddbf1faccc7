import type {Readable} from 'node:stream';
import {FerryError} from '../../errors.js';
import type {Descriptor} from '../../model/descriptor.js';
import type {Digest} from '../../model/digest.js';
import type {Layer} from '../../model/image.js';
import type {Compression} from '../../model/media-types.js';

/**
 * A layer the manifest names but the archive lacks. Reading metadata still works (inspect); opening
 * it is an error naming why (docker load may not notice: an already-present ChainID is never opened,
 * docs/formats.md §1).
 */
export class MissingLayer implements Layer {
  constructor(
    readonly descriptor: Descriptor,
    readonly diffId: Digest,
    readonly label: string,
    readonly absent = 'blob is missing from the archive',
  ) {}

  #error(): FerryError {
    return new FerryError('MISSING_BLOB', `${this.label}: ${this.absent}`);
  }

  async compression(): Promise<Compression> {
    throw this.#error();
  }

  openCompressed(): Readable {
    throw this.#error();
  }

  openUncompressed(): Readable {
    throw this.#error();
  }
}

/** True for a layer whose blob is not here (MissingLayer, or any layer that says why). */
export function isAbsentLayer(layer: Layer): boolean {
  return layer.absent !== undefined;
}
