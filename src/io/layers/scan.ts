import pLimit from 'p-limit';
import {FerryError} from '../../errors.js';
import type {Layer, OpenOptions} from '../../model/image.js';
import type {Compression} from '../../model/media-types.js';
import type {Limits} from '../../settings.js';
import type {ByteReader} from '../../tar/reader.js';
import {entryProblem, refuseEntryProblems, walkTar, type TarEntry} from '../../tar/walk.js';
import {openRegionReader} from '../bytes/file-range.js';
import {besideCheck, consumeChecked, explainFailure} from '../blobs/checked-read.js';
import type {BlobPool} from '../blobs/pool.js';

/**
 * What is checked inside a layer: every entry stays inside the image root and names a path once
 * (src/tar/walk.ts entryProblem). verify reports what it finds; writers and the layer engine refuse
 * to pass such a layer on.
 */

export interface LayerScanResult {
  compression: Compression;
  entries: number;
  /** Entry-level problems (unsafe paths, duplicates); digest problems throw instead. */
  problems: string[];
}

/** What scanLayer walks each entry with; `reader` is where the entry's body can be read from. */
export type OnScannedEntry = (entry: TarEntry, reader: ByteReader) => Promise<void>;

/**
 * Reads a layer once, start to end, through the checked read (blob digest and size, decompression,
 * diffID) and walks its entries. `onEntry` sees every entry (it may read the body through the reader
 * before returning). With a `pool`, an uncompressed blob in a file is walked by offset instead (headers
 * only, bodies skipped) while a worker hashes it against its digest, size and diffID — both cores
 * busy and no blob bytes through this thread; the hash's failure wins over the walk's.
 */
export async function scanLayer(layer: Layer, options: OpenOptions & {limits: Limits; onEntry?: OnScannedEntry; pool?: BlobPool}): Promise<LayerScanResult> {
  const compression = await layer.compression();
  const problems: string[] = [];
  const seen = new Set<string>();
  const walk = async (reader: ByteReader): Promise<number> => {
    let count = 0;
    for await (const entry of walkTar(reader)) {
      count++;
      const problem = entryProblem(entry, seen);
      if (problem) problems.push(`${layer.label}: ${problem}`);
      if (options.onEntry) await options.onEntry(entry, reader);
    }
    if (count === 0 && reader.position === 0) throw new FerryError('BAD_TAR', `${layer.label}: empty layer blob`);
    return count;
  };
  const region = layer.region;
  if (options.pool && region && compression === 'none') {
    const walked = (async (): Promise<number> => {
      const {reader, close} = await openRegionReader(region);
      try {
        return await walk(reader);
      } finally {
        await close();
      }
    })();
    const entries = await besideCheck(checkStoredLayers([layer], options.pool, 1, options.onBytes), walked);
    return {compression, entries, problems};
  }
  const entries = await consumeChecked(layer, walk, options);
  return {compression, entries, problems};
}

/**
 * What verify would refuse inside a layer, for a writer that copies the blob itself (and hashes it
 * on the way): entries that escape the root or repeat a path, and a tar that does not hash to its
 * diffID. An uncompressed blob in a file whose digest is its diffID is walked by its headers alone,
 * bodies skipped (the copy's hash covers the rest); anything else goes through the checked read.
 */
export async function checkLayerContent(layer: Layer, limits: Limits, options: {allowTrailing?: boolean; blobCheckedElsewhere?: boolean} = {}): Promise<void> {
  const compression = await layer.compression();
  const region = layer.region;
  if (compression === 'none' && region && layer.descriptor.digest === layer.diffId) {
    const {reader, close} = await openRegionReader(region);
    try {
      await refuseEntryProblems(reader, layer.label);
    } catch (e) {
      throw await explainFailure(layer, e);
    } finally {
      await close();
    }
    return;
  }
  await consumeChecked(layer, (reader) => refuseEntryProblems(reader, layer.label), {limits, allowTrailing: options.allowTrailing === true, blobCheckedElsewhere: options.blobCheckedElsewhere === true});
}

/** checkLayerContent for each distinct layer (by blob and diffID) that is here, several at once. */
export async function checkLayerContents(layers: readonly Layer[], limits: Limits, concurrency: number, options: {blobCheckedElsewhere?: boolean} = {}): Promise<void> {
  const distinct = new Map<string, Layer>();
  for (const layer of layers) if (layer.absent === undefined) distinct.set(`${layer.descriptor.digest}/${layer.diffId}`, layer);
  const limit = pLimit(Math.max(1, concurrency));
  await Promise.all([...distinct.values()].map((layer) => limit(() => checkLayerContent(layer, limits, options))));
}

/**
 * For the layer engine (squash, export), which walks an uncompressed blob in a file by offset and
 * never reads the bodies it skips: hashes each such blob against its digest, size and diffID — on the
 * pool's workers, beside the walk. Streamed (compressed) layers need nothing here: the engine reads
 * them through the checked read.
 */
export async function checkStoredLayers(layers: readonly Layer[], pool: BlobPool, concurrency: number, onBytes?: (bytes: number) => void): Promise<void> {
  const limit = pLimit(Math.max(1, concurrency));
  await Promise.all(
    layers.map((layer) =>
      limit(async () => {
        const region = layer.region;
        if (!region || (await layer.compression()) !== 'none') return;
        const diffId = layer.descriptor.digest === layer.diffId ? {} : {diffId: {digest: layer.diffId, what: `${layer.label}: diffID`}};
        await pool.run({kind: 'check', source: region, verify: {digest: layer.descriptor.digest, size: layer.descriptor.size, what: `${layer.label}: blob`}, ...diffId}, onBytes);
      }),
    ),
  );
}

/** Work on layers (the engine's walk) with their stored blobs checked beside it; a check failure wins. */
export function withStoredCheck<T>(layers: readonly Layer[], pool: BlobPool, concurrency: number, work: Promise<T>): Promise<T> {
  return besideCheck(checkStoredLayers(layers, pool, concurrency), work);
}
