import {FerryError} from '../../errors.js';
import {openRegionReader} from '../../io/bytes/file-range.js';
import {StreamReader} from '../../io/bytes/readers.js';
import type {Layer} from '../../model/image.js';
import type {ByteReader} from '../../tar/reader.js';

/** A layer's tar opened for one sequential pass. */
export interface LayerTar {
  reader: ByteReader;
  /** Reads to the end (streams) and returns the tar's total size in bytes. */
  finish(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Opens a layer's tar: by offset when the blob sits uncompressed in a file (large member bodies are
 * then seeked past, never read; the blob is hashed beside the walk, src/io/layers/scan.ts
 * `withStoredCheck`), else as the checked decompressed stream.
 */
export async function openLayerTar(layer: Layer): Promise<LayerTar> {
  if (layer.absent !== undefined) {
    if (layer.foreign) throw new FerryError('MISSING_BLOB', `${layer.label}: ${layer.absent}: its files cannot be read (a foreign layer's blob lives at its urls, not in the archive)`);
    throw new FerryError('MISSING_BLOB', `${layer.label}: layer ${layer.descriptor.digest} is missing from the archive`);
  }
  const region = layer.region;
  if (region && (await layer.compression()) === 'none') {
    const {reader, close} = await openRegionReader(region);
    return {reader, finish: async () => region.size, close};
  }
  const reader = new StreamReader(layer.openUncompressed(), layer.label);
  return {
    reader,
    finish: async () => {
      await reader.drain();
      return reader.position;
    },
    close: () => reader.close(),
  };
}
