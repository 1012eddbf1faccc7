import {PassThrough, type Readable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {DigestMismatchError, FerryError} from '../errors.js';
import {guardedDecompressor} from '../io/compression.js';
import {DigestStream} from '../io/digest-stream.js';
import {StreamReader} from '../io/byte-reader.js';
import type {Layer} from '../model/image.js';
import type {Compression} from '../model/media-types.js';
import {walkTar, type TarEntry} from '../tar/walk.js';
import os from 'node:os';
import pLimit from 'p-limit';
import {checkLayerContent, entryProblem, verifyStoredLayer} from '../io/layer-check.js';
import type {BlobPool} from '../io/blob-pool.js';

export interface LayerScanResult {
  compression: Compression;
  entries: number;
  /** Entry-level problems (unsafe paths, duplicates); digest problems throw instead. */
  problems: string[];
}

/**
 * Reads a layer once, start to end: checks the blob's digest and size against its descriptor, the
 * uncompressed stream against the diffID, and walks its tar entries (path safety, duplicates).
 * `onEntry` sees every entry (the body may be read through the reader before returning).
 */
export async function scanLayer(layer: Layer, onEntry?: (entry: TarEntry, reader: StreamReader) => Promise<void>): Promise<LayerScanResult> {
  const compression = await layer.compression();
  const blobCheck = new DigestStream(`${layer.label}: blob`, {digest: layer.descriptor.digest, size: layer.descriptor.size});
  const stages: NodeJS.ReadWriteStream[] = [blobCheck];
  const sameBytes = compression === 'none';
  let diffCheck: DigestStream | undefined;
  if (!sameBytes) {
    const {counter, decompress, guard} = guardedDecompressor(compression, layer.label);
    diffCheck = new DigestStream(`${layer.label}: diffID`, {digest: layer.diffId});
    stages.push(counter, decompress, guard, diffCheck);
  }
  const out = new PassThrough({highWaterMark: 1 << 20});
  const source: Readable = layer.openCompressed();
  const flowing = pipeline([source, ...stages, out]);
  flowing.catch(() => {}); // surfaced below, after the reader stops
  const reader = new StreamReader(out, layer.label);
  const problems: string[] = [];
  const seen = new Set<string>();
  let entries = 0;
  try {
    const walk = walkTar(reader);
    for (;;) {
      const next = await walk.next();
      if (next.done) break;
      const entry = next.value;
      entries++;
      const problem = entryProblem(entry, seen);
      if (problem) problems.push(`${layer.label}: ${problem}`);
      if (onEntry) await onEntry(entry, reader);
    }
    await reader.drain();
  } catch (e) {
    // A digest/decompression failure upstream is the real cause of a tar error downstream. Drain the
    // rest while waiting for it: a stream nobody reads never settles (the process would then exit
    // with nothing pending but this promise: code 13, no message). Drain errors are upstream's.
    await reader.drain().catch(() => {});
    await flowing.catch((upstream: unknown) => {
      throw upstream;
    });
    throw e;
  } finally {
    out.resume();
  }
  await flowing;
  if (sameBytes && blobCheck.digest !== layer.diffId) {
    throw new DigestMismatchError(`${layer.label}: diffID`, layer.diffId, blobCheck.digest ?? 'nothing');
  }
  if (entries === 0 && blobCheck.bytes === 0) throw new FerryError('BAD_TAR', `${layer.label}: empty layer blob`);
  return {compression, entries, problems};
}

/**
 * For the layer engine (squash, export): checks every layer it walks by offset — uncompressed
 * blobs in a file, whose skipped bodies it never reads — against its digest, size and diffID. Run
 * beside the merge; streamed (compressed) layers are checked as the engine reads them.
 */
export async function verifyStoredLayers(layers: readonly Layer[], pool?: BlobPool): Promise<void> {
  const limit = pLimit(Math.max(1, os.availableParallelism()));
  await Promise.all(
    layers.map((layer) =>
      limit(async () => {
        // With a pool the hashing runs on worker threads, beside the merge and the emission on this one.
        const region = layer.region;
        if (pool && region && (await layer.compression()) === 'none') {
          const diffId = layer.descriptor.digest === layer.diffId ? {} : {diffId: {digest: layer.diffId, what: `${layer.label}: diffID`}};
          await pool.run({kind: 'check', source: {path: region.path, offset: region.offset, size: region.size, label: layer.label}, verify: {digest: layer.descriptor.digest, size: layer.descriptor.size, what: `${layer.label}: blob`}, ...diffId});
        } else await verifyStoredLayer(layer);
      }),
    ),
  );
}

/**
 * For writers that copy blobs by offset: checks what is inside each distinct layer (entry paths,
 * duplicates, and the diffID where the blob is compressed) — what verify would refuse is never
 * written. Layers run concurrently, each read once.
 */
export async function checkLayerContents(layers: readonly Layer[], concurrency = Math.max(1, os.availableParallelism())): Promise<void> {
  const distinct = new Map<string, Layer>();
  for (const layer of layers) distinct.set(`${layer.descriptor.digest}/${layer.diffId}`, layer);
  const limit = pLimit(concurrency);
  await Promise.all([...distinct.values()].map((layer) => limit(() => checkLayerContent(layer))));
}
