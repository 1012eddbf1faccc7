import {pipeline} from 'node:stream';
import {PassThrough, type Readable} from 'node:stream';
import type {Descriptor} from '../model/descriptor.js';
import type {Digest} from '../model/digest.js';
import type {FileRegion, Layer} from '../model/image.js';
import type {Compression} from '../model/media-types.js';
import type {FileRange} from './byte-source.js';
import {guardedDecompressor, sniffCompression} from './compression.js';

/** A layer whose blob is a byte range of a file (OCI blob file, tar member, spooled temp). */
export class RangeLayer implements Layer {
  #compression: Compression | undefined;
  readonly region: FileRegion;
  constructor(
    readonly descriptor: Descriptor,
    readonly diffId: Digest,
    readonly range: FileRange,
  ) {
    this.region = {path: range.path, offset: range.offset, size: range.size, label: range.label};
  }

  get label(): string {
    return this.range.label;
  }

  async compression(): Promise<Compression> {
    this.#compression ??= sniffCompression(await this.range.read(0, 6));
    return this.#compression;
  }

  openCompressed(): Readable {
    return this.range.stream();
  }

  async openUncompressed(): Promise<Readable> {
    const compression = await this.compression();
    if (compression === 'none') return this.range.stream();
    return decompressed(this.range.stream(), compression, this.label);
  }
}

/** Pipes a compressed stream through a guarded decompressor; errors surface on the returned stream. */
export function decompressed(source: Readable, compression: Compression, label: string): Readable {
  const {counter, decompress, guard} = guardedDecompressor(compression, label);
  const out = new PassThrough({highWaterMark: 1 << 20});
  pipeline(source, counter, decompress, guard, out, () => {});
  return out;
}
