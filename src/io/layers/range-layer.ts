import type {Readable} from 'node:stream';
import type {Descriptor} from '../../model/descriptor.js';
import type {Digest} from '../../model/digest.js';
import type {Blob, Layer, OpenOptions} from '../../model/image.js';
import {isNondistributable, type Compression} from '../../model/media-types.js';
import type {Limits} from '../../settings.js';
import {FileRange} from '../bytes/file-range.js';
import {metered} from '../bytes/meter.js';
import {openChecked} from '../blobs/checked-read.js';
import {sniffCompression, SNIFF_BYTES} from '../compress/sniff.js';

/** A blob that is a byte range of a file (an OCI blob file, a tar member): an artifact's config or layer. */
export class RangeBlob implements Blob {
  constructor(
    readonly descriptor: Descriptor,
    readonly region: FileRange,
  ) {}

  get label(): string {
    return this.region.label;
  }

  openCompressed(options: OpenOptions = {}): Readable {
    return metered(this.region.stream(options.start ?? 0), options.onBytes);
  }
}

/** A layer whose blob is a byte range of a file (OCI blob file, tar member, spooled temp). */
export class RangeLayer extends RangeBlob implements Layer {
  #compression: Compression | undefined;
  constructor(
    descriptor: Descriptor,
    readonly diffId: Digest,
    region: FileRange,
    /** The bomb guard's limits for reading it decompressed. */
    readonly limits: Limits,
    /** manifest.json's LayerSources entry (docker ≤ 24 saving a foreign layer). */
    readonly layerSource?: Descriptor,
  ) {
    super(descriptor, region);
  }

  get foreign(): boolean {
    return isNondistributable(this.descriptor.mediaType);
  }

  async compression(): Promise<Compression> {
    this.#compression ??= sniffCompression(await this.region.read(0, SNIFF_BYTES));
    return this.#compression;
  }

  openUncompressed(options: OpenOptions = {}): Readable {
    return openChecked(this, {...options, limits: this.limits});
  }
}

/**
 * A layer ferry has just written into a scratch file of its own (a recompressed blob, a squashed
 * layer): its digest and size were computed from these very bytes, so copying it needs no second
 * hashing. Writing it consumes it: a directory writer moves the file into place, a tar writer
 * removes it once copied. Whoever made it still removes its directory.
 */
export class ScratchLayer extends RangeLayer {
  static of(descriptor: Descriptor, diffId: Digest, file: string, label: string, limits: Limits): ScratchLayer {
    return new ScratchLayer(descriptor, diffId, new FileRange(file, 0, descriptor.size, label), limits);
  }
}

export function isScratchLayer(blob: Blob): blob is ScratchLayer {
  return blob instanceof ScratchLayer;
}
