import {RangeLayer} from './blob-layer.js';
import type {Layer} from '../model/image.js';

/**
 * A layer ferry has just written into a scratch file of its own (a recompressed blob, a squashed
 * layer): its digest and size were computed from these very bytes, so copying it needs no second
 * hashing. Writing it consumes it: a directory writer moves the file into place, a tar writer
 * removes it once copied. Whoever made it still removes its directory.
 */
export class ScratchLayer extends RangeLayer {
  readonly scratch = true;
}

export function isScratchLayer(layer: Layer): layer is ScratchLayer {
  return layer instanceof ScratchLayer;
}
