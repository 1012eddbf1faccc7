import {FerryError} from '../../errors.js';
import {FileRange} from '../../io/bytes/file-range.js';
import type {Layer} from '../../model/image.js';
import {walkTar} from '../../tar/walk.js';
import {openLayerTar} from './layer-tar.js';
import type {ContentSource} from './tree.js';

/**
 * One file's bytes from the layer member that holds them: read in place when the layer sits
 * uncompressed in a file, else by streaming the layer up to that member (and no further).
 */
export async function* readContent(layers: readonly Layer[], source: ContentSource): AsyncGenerator<Buffer> {
  const layer = layers[source.layer]!;
  if (source.size === 0) return;
  if (layer.region && (await layer.compression()) === 'none') {
    const {path, offset, label} = layer.region;
    for await (const chunk of new FileRange(path, offset + source.dataOffset, source.size, `${label}: ${source.name}`).stream()) yield chunk as Buffer;
    return;
  }
  const tar = await openLayerTar(layer);
  try {
    const walk = walkTar(tar.reader);
    for (;;) {
      const next = await walk.next();
      if (next.done || next.value.headerOffset > source.headerOffset) break;
      if (next.value.headerOffset < source.headerOffset) continue;
      if (next.value.name !== source.name || next.value.size !== source.size) break;
      yield* tar.reader.chunks(source.size, `member "${source.name}"`);
      return;
    }
    throw new FerryError('BAD_TAR', `${layer.label}: member "${source.name}" is no longer at offset ${source.headerOffset} (changed while being read?)`);
  } finally {
    await tar.close();
  }
}
