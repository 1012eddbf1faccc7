import {createWriteStream} from 'node:fs';
import {mkdir, rename, rm, stat, truncate} from 'node:fs/promises';
import path from 'node:path';
import {Transform} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import pLimit from 'p-limit';
import {DigestMismatchError, FerryError, ioError, SizeMismatchError} from '../../errors.js';
import {splitDigest, type Digest} from '../../model/digest.js';
import type {Blob, Layer} from '../../model/image.js';
import type {Limits} from '../../settings.js';
import {BlobCheck, hashFileInto} from '../blobs/digest-check.js';
import type {TrackBlob} from '../blobs/jobs.js';
import {FileRange} from '../bytes/file-range.js';
import {RangeLayer} from './range-layer.js';

/**
 * Layers whose bytes live elsewhere (a registry) are copied into files before anything reads them
 * twice or by offset (a write checks each layer beside the copy; squash and export read files out of
 * layers by offset). The copy is restart-safe: a blob arrives as `NAME.part`, hashed as it lands, and
 * is renamed to NAME only when its digest and size match; a rerun finds NAME (hashed again before
 * use: a file on disk is not trusted because it has the right name) or continues `NAME.part` from
 * its end, hashing what is already there first. A mismatch removes the part and starts the blob
 * again once; a second one is an error. Nothing wrong ever leaves this directory.
 */

/** A layer ferry has fetched into a file and hashed on the way: copied without a second hash, left in place. */
export class FetchedLayer extends RangeLayer {}

export function isFetchedLayer(blob: Blob): blob is FetchedLayer {
  return blob instanceof FetchedLayer;
}

/** A layer that has no place in a file but can be read (remote): the ones fetchLayers copies. */
export function needsFetch(layer: Layer): boolean {
  return layer.region === undefined && layer.absent === undefined;
}

export interface FetchOptions {
  limits: Limits;
  /** Blobs fetched at once. */
  jobs: number;
  /** Bytes as they arrive (or are found already here). */
  onBytes?: (bytes: number) => void;
  /** A progress line per blob being fetched. */
  trackBlob?: TrackBlob;
  signal?: AbortSignal;
}

export interface FetchStats {
  /** Bytes transferred in this run. */
  fetchedBytes: number;
  /** Bytes found complete or partly fetched by an earlier run, not transferred again. */
  reusedBytes: number;
  blobs: number;
}

function fileFor(dir: string, digest: Digest): string {
  const [algorithm, hex] = splitDigest(digest);
  return path.join(dir, `${algorithm}-${hex}`);
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    const info = await stat(file);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

/** One blob into `file`: reused when already whole, resumed from a partial copy, else fetched from the start. */
async function fetchOne(layer: Layer, file: string, options: FetchOptions, stats: FetchStats): Promise<void> {
  const {digest, size} = layer.descriptor;
  const what = `${layer.label}: blob`;
  if ((await sizeOf(file)) === size) {
    const check = new BlobCheck(what, {digest, size});
    await hashFileInto(check, file, size);
    try {
      check.finish();
      stats.reusedBytes += size;
      options.onBytes?.(size);
      return;
    } catch {
      await rm(file, {force: true}); // not what its name says: fetched again
    }
  }
  const part = `${file}.part`;
  for (let attempt = 0; ; attempt++) {
    let have = (await sizeOf(part)) ?? 0;
    if (have > size) {
      await truncate(part, 0);
      have = 0;
    }
    const check = new BlobCheck(what, {digest, size});
    await hashFileInto(check, part, have);
    stats.reusedBytes += have;
    options.onBytes?.(have);
    const hashing = new Transform({
      highWaterMark: 1 << 20,
      transform(chunk: Buffer, _encoding, done) {
        try {
          check.update(chunk);
          stats.fetchedBytes += chunk.length;
          options.onBytes?.(chunk.length);
          done(null, chunk);
        } catch (e) {
          done(e as Error);
        }
      },
    });
    try {
      if (have < size) {
        await pipeline(layer.openCompressed({start: have, ...(options.signal ? {signal: options.signal} : {})}), hashing, createWriteStream(part, {flags: have > 0 ? 'a' : 'w', highWaterMark: 1 << 20}), options.signal ? {signal: options.signal} : {});
      }
      check.finish();
    } catch (e) {
      const wrong = e instanceof DigestMismatchError || e instanceof SizeMismatchError;
      if (!wrong) throw e instanceof FerryError ? e : ioError(e, part);
      // What arrived (or what an earlier run left) is not the blob: it never lands. Once more from 0.
      await rm(part, {force: true});
      if (attempt === 0 && have > 0) continue;
      throw e;
    }
    await rename(part, file);
    return;
  }
}

/**
 * Fetches every distinct layer that needs it into `dir` (several at once); returns the fetched
 * layers by blob digest, to be swapped in for the remote ones (src/model/swap.ts).
 */
export async function fetchLayers(layers: readonly Layer[], dir: string, options: FetchOptions): Promise<{fetched: Map<Digest, Layer>; stats: FetchStats}> {
  const distinct = new Map<Digest, Layer>();
  for (const layer of layers) if (needsFetch(layer) && !distinct.has(layer.descriptor.digest)) distinct.set(layer.descriptor.digest, layer);
  const stats: FetchStats = {fetchedBytes: 0, reusedBytes: 0, blobs: distinct.size};
  const fetched = new Map<Digest, Layer>();
  if (distinct.size === 0) return {fetched, stats};
  await mkdir(dir, {recursive: true}).catch((e: unknown) => {
    throw ioError(e, dir);
  });
  const limit = pLimit(Math.max(1, options.jobs));
  // After a failure no new blob is started, but the ones in flight are let finish: each ends checked
  // (kept whole, or removed when its bytes are wrong), so a failed run leaves beside the destination
  // only what is right and nothing is still writing there when the caller cleans up.
  let failure: {error: unknown} | undefined;
  await Promise.allSettled(
    [...distinct.values()].map((layer) =>
      limit(async () => {
        if (failure) return;
        if (options.signal?.aborted) throw new FerryError('INTERRUPTED', `${layer.label}: fetch aborted`);
        const file = fileFor(dir, layer.descriptor.digest);
        const line = options.trackBlob?.(layer.descriptor.digest.slice(0, 19), layer.descriptor.size);
        try {
          const onBytes = (n: number): void => {
            options.onBytes?.(n);
            line?.advance(n);
          };
          await fetchOne(layer, file, {...options, onBytes}, stats);
        } finally {
          line?.done();
        }
        const region = new FileRange(file, 0, layer.descriptor.size, layer.label);
        fetched.set(layer.descriptor.digest, new FetchedLayer(layer.descriptor, layer.diffId, region, options.limits, layer.layerSource));
      }).catch((e: unknown) => {
        failure ??= {error: e};
      }),
    ),
  );
  if (failure) throw failure.error;
  return {fetched, stats};
}
