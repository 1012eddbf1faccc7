import {FerryError} from '../../errors.js';
import {FileRange} from '../../io/byte-source.js';
import {StreamReader, type ByteReader} from '../../io/byte-reader.js';
import {isMissingLayer} from '../../formats/missing-layer.js';
import type {Layer} from '../../model/image.js';

/** A layer's tar opened for one sequential pass. */
export interface LayerTar {
  reader: ByteReader;
  /** Reads to the end (streams) and returns the tar's total size in bytes. */
  finish(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Opens a layer's tar: by offset when the blob sits uncompressed in a file (member bodies are then
 * seeked past, never read), else as a decompressed stream.
 */
export async function openLayerTar(layer: Layer): Promise<LayerTar> {
  if (isMissingLayer(layer)) throw new FerryError('MISSING_BLOB', `${layer.label}: layer ${layer.descriptor.digest} is missing from the archive`);
  const compression = await layer.compression();
  if (layer.region && compression === 'none') {
    const {path, offset, size, label} = layer.region;
    const {reader, close} = await new FileRange(path, offset, size, label).openReader();
    return {reader, finish: async () => size, close};
  }
  const reader = new StreamReader(await layer.openUncompressed(), layer.label);
  return {
    reader,
    finish: async () => {
      await reader.drain();
      return reader.position;
    },
    close: () => reader.close(),
  };
}
