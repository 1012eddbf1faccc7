import {pipeline} from 'node:stream';
import {PassThrough, type Readable} from 'node:stream';
import type {Descriptor} from '../model/descriptor.js';
import type {Digest} from '../model/digest.js';
import type {FileRegion, Layer} from '../model/image.js';
import type {Compression} from '../model/media-types.js';
import type {FileRange} from './byte-source.js';
import {guardedDecompressor, sniffCompression} from './compression.js';
import {DigestStream} from './digest-stream.js';

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

  /**
   * The layer tar, checked as it streams: the stored blob against its descriptor (digest, size)
   * and the tar against the diffID. A reader that goes to the end gets the error there instead of
   * an end (a reader that stops early has not used the bytes it did not read).
   */
  async openUncompressed(): Promise<Readable> {
    const compression = await this.compression();
    const stages: NodeJS.ReadWriteStream[] = [new DigestStream(`${this.label}: blob`, {digest: this.descriptor.digest, size: this.descriptor.size})];
    if (compression !== 'none') {
      const {counter, decompress, guard} = guardedDecompressor(compression, this.label);
      stages.push(counter, decompress, guard);
    }
    if (compression !== 'none' || this.descriptor.digest !== this.diffId) stages.push(new DigestStream(`${this.label}: diffID`, {digest: this.diffId}));
    const out = new PassThrough({highWaterMark: 1 << 20});
    pipeline([this.range.stream(), ...stages, out], () => {});
    return out;
  }
}

/** Pipes a compressed stream through a guarded decompressor; errors surface on the returned stream. */
export function decompressed(source: Readable, compression: Compression, label: string): Readable {
  const {counter, decompress, guard} = guardedDecompressor(compression, label);
  const out = new PassThrough({highWaterMark: 1 << 20});
  pipeline(source, counter, decompress, guard, out, () => {});
  return out;
}
