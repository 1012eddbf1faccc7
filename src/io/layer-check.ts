import {open} from 'node:fs/promises';
import {PassThrough, Writable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {FerryError, ioError} from '../errors.js';
import type {Layer} from '../model/image.js';
import {entryPathProblem, walkTar, type TarEntry} from '../tar/walk.js';
import {FileRegionReader, StreamReader, type ByteReader} from './byte-reader.js';
import {guardedDecompressor} from './compression.js';
import {DigestStream} from './digest-stream.js';

/**
 * Verify-while-copying for the writers and the layer engine (issue 6): what verify checks about a
 * layer, for commands that read the layer anyway (or copy it by offset) and must not write what
 * verify would refuse.
 */

/**
 * What verify reports about one entry of a layer, or undefined: a path that reaches outside the
 * root (entryPathProblem in tar/walk.ts), or a second entry for one path (docker load rejects
 * those). `seen` carries the cleaned names of the entries before it.
 */
export function entryProblem(entry: Pick<TarEntry, 'name' | 'type' | 'linkname'>, seen: Set<string>): string | undefined {
  const unsafe = entryPathProblem(entry);
  if (unsafe) return unsafe;
  const key = entry.name.replace(/^(\.\/)+|\/+$/g, '');
  const duplicate = seen.has(key) && entry.type !== 'dir';
  seen.add(key);
  return duplicate ? `duplicate entry "${entry.name}" (docker load rejects duplicate paths)` : undefined;
}

/**
 * Checks a layer's stored blob against its descriptor (digest, size) and, for an uncompressed one,
 * its diffID — by reading the whole blob. For the layer engine, which walks an uncompressed layer
 * in a file by offset and never reads the bodies it skips: run it beside the walk (compressed
 * layers need nothing: RangeLayer.openUncompressed checks them as they stream).
 */
export async function verifyStoredLayer(layer: Layer): Promise<void> {
  if (!layer.region || (await layer.compression()) !== 'none') return;
  await verifyBlob(layer);
}

/** Reads a whole blob: digest and size against its descriptor, and the diffID where they are the same bytes. */
async function verifyBlob(layer: Layer): Promise<void> {
  const stages: NodeJS.ReadWriteStream[] = [new DigestStream(`${layer.label}: blob`, {digest: layer.descriptor.digest, size: layer.descriptor.size})];
  if (layer.descriptor.digest !== layer.diffId && (await layer.compression()) === 'none') stages.push(new DigestStream(`${layer.label}: diffID`, {digest: layer.diffId}));
  const sink = new Writable({write: (_c, _e, done) => done()});
  await pipeline([layer.openCompressed(), ...stages, sink]);
}

/**
 * What verify checks inside a layer, for a writer that copies the blob by offset (and hashes it
 * against its digest on the way): every entry passes `entryProblem`, and the tar hashes to the
 * diffID. An uncompressed blob in a file is walked by its headers alone, bodies skipped (its
 * digest is its diffID, which the copy checks); a compressed blob has to be decompressed to be
 * seen at all, behind the bomb guard, and its tar is hashed against the diffID on the way.
 */
export async function checkLayerContent(layer: Layer): Promise<void> {
  const compression = await layer.compression();
  const region = layer.region;
  if (compression === 'none' && region && layer.descriptor.digest === layer.diffId) {
    const handle = await open(region.path, 'r').catch((e: unknown) => {
      throw ioError(e, region.label);
    });
    try {
      await walkEntries(new FileRegionReader(handle, region.offset, region.size, layer.label), layer.label);
    } catch (e) {
      throw await blobFirst(layer, e);
    } finally {
      await handle.close();
    }
    return;
  }
  const stages: NodeJS.ReadWriteStream[] = [];
  if (compression !== 'none') {
    const {counter, decompress, guard} = guardedDecompressor(compression, layer.label);
    stages.push(counter, decompress, guard);
  }
  stages.push(new DigestStream(`${layer.label}: diffID`, {digest: layer.diffId}));
  const tar = new PassThrough({highWaterMark: 1 << 20});
  let upstream: unknown;
  const flowing = pipeline([layer.openCompressed(), ...stages, tar]).catch((e: unknown) => {
    upstream = e;
  });
  const reader = new StreamReader(tar, layer.label);
  try {
    await walkEntries(reader, layer.label);
    await reader.drain();
  } catch (e) {
    // Stop reading (closing ends the pipeline early: that premature close is not the story).
    const cause = upstream ?? e;
    await reader.close().catch(() => {});
    await flowing;
    throw await blobFirst(layer, cause);
  }
  await flowing;
  if (upstream !== undefined) throw await blobFirst(layer, upstream);
}

/**
 * A blob that is not what its digest says is the real story behind garbage in its tar or a wrong
 * diffID (the copy would say so too, later): checked — reading the blob again — only on failure,
 * so the common path hashes the compressed bytes once, in the copy.
 */
async function blobFirst(layer: Layer, error: unknown): Promise<unknown> {
  try {
    await verifyBlob(layer);
  } catch (blob) {
    return blob;
  }
  return error;
}

async function walkEntries(reader: ByteReader, label: string): Promise<void> {
  const seen = new Set<string>();
  const walk = walkTar(reader);
  for (;;) {
    const next = await walk.next();
    if (next.done) return;
    const problem = entryProblem(next.value, seen);
    if (problem) throw new FerryError(problem.startsWith('duplicate') ? 'BAD_TAR' : 'UNSAFE_PATH', `${label}: ${problem}`);
  }
}
