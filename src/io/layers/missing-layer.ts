import type {Readable} from 'node:stream';
import {FerryError} from '../../errors.js';
import type {Descriptor} from '../../model/descriptor.js';
import type {Digest} from '../../model/digest.js';
import type {Blob, Layer} from '../../model/image.js';
import {isNondistributable, type Compression} from '../../model/media-types.js';

/**
 * A blob a manifest names but the archive lacks. Its descriptor still serves (inspect, writing the
 * manifest); opening it is an error naming why. A foreign (non-distributable) layer is absent by
 * design: its descriptor's urls say where it lives (Windows base layers; docs/formats.md §3).
 */
export class MissingBlob implements Blob {
  readonly absent: string;
  readonly foreign: boolean;
  constructor(
    readonly descriptor: Descriptor,
    readonly label: string,
  ) {
    this.foreign = isNondistributable(descriptor.mediaType);
    this.absent = this.foreign ? `foreign layer, not in the archive${descriptor.urls?.length ? ` (urls: ${descriptor.urls.join(', ')})` : ''}` : 'blob is missing from the archive';
  }

  protected error(): FerryError {
    return new FerryError('MISSING_BLOB', `${this.label}: ${this.absent}`);
  }

  openCompressed(): Readable {
    throw this.error();
  }
}

/**
 * A layer the manifest names but the archive lacks. Reading metadata still works (inspect); opening
 * it is an error naming why (docker load may not notice: an already-present ChainID is never opened,
 * docs/formats.md §1).
 */
export class MissingLayer extends MissingBlob implements Layer {
  constructor(
    descriptor: Descriptor,
    readonly diffId: Digest,
    label: string,
    readonly layerSource?: Descriptor,
  ) {
    super(descriptor, label);
  }

  async compression(): Promise<Compression> {
    throw this.error();
  }

  openUncompressed(): Readable {
    throw this.error();
  }
}
