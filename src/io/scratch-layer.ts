import {RangeLayer} from './blob-layer.js';
import type {Layer} from '../model/image.js';

/**
 * A layer ferry has just written into a scratch file of its own (a recompressed blob): its digest
 * and size were computed from these very bytes, so copying it needs no second hashing, and the
 * whole file may be moved into place instead of copied.
 */
export class ScratchLayer extends RangeLayer {
  readonly scratch = true;
}

export function isScratchLayer(layer: Layer): layer is ScratchLayer {
  return layer instanceof ScratchLayer;
}
