import type {Readable} from 'node:stream';
import {FerryError} from '../errors.js';
import type {Descriptor} from '../model/descriptor.js';
import type {Digest} from '../model/digest.js';
import type {Layer} from '../model/image.js';
import type {Compression} from '../model/media-types.js';

/**
 * A layer the manifest names but the archive lacks. Reading metadata still works (inspect); opening
 * it is an error (docker load may not notice: an already-present ChainID is never opened, FORMATS.md §1).
 */
export class MissingLayer implements Layer {
  readonly missing = true;
  constructor(
    readonly descriptor: Descriptor,
    readonly diffId: Digest,
    readonly label: string,
  ) {}

  #error(): FerryError {
    return new FerryError('MISSING_BLOB', `${this.label}: blob is missing from the archive`);
  }

  async compression(): Promise<Compression> {
    throw this.#error();
  }

  openCompressed(): Readable {
    throw this.#error();
  }

  async openUncompressed(): Promise<Readable> {
    throw this.#error();
  }
}

export function isMissingLayer(layer: Layer): layer is MissingLayer {
  return (layer as MissingLayer).missing === true;
}
