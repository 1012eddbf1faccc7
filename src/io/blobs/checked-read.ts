import {PassThrough, Transform, Writable, type Readable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {DigestMismatchError, SizeMismatchError} from '../../errors.js';
import type {Layer, OpenOptions} from '../../model/image.js';
import type {Limits} from '../../settings.js';
import {Meter} from '../bytes/meter.js';
import {StreamReader} from '../bytes/readers.js';
import {decompressionStages} from '../compress/decompress.js';
import {BlobCheck, DigestStream} from './digest-check.js';

/**
 * The one checked-read path for layer bytes. Whatever reads a layer — copy, transcode, verify, the
 * layer engine, cat — reads it through here (or, for a blob in a file, through the worker jobs in
 * jobs.ts, which apply the same BlobCheck), so every reader checks the same things in the same order:
 * the stored blob against its descriptor (digest, size), decompression behind the bomb guard, the tar
 * against the diffID.
 *
 * Which error wins when several things are wrong (one rule, applied by `explainFailure`):
 *   1. the stored blob is not what its descriptor says (digest or size): nothing derived from those
 *      bytes means anything, so this is the story whatever else broke;
 *   2. reading or decompressing failed (I/O, corrupt compressed data, the bomb guard);
 *   3. the tar does not hash to its diffID;
 *   4. what the consumer found inside the tar (a truncated header, an unsafe entry, a duplicate).
 * A later kind is reported only once the earlier checks are known to pass: when a pass failed before
 * the blob was hashed to its end, the blob is hashed again (only then: the common path reads it once).
 */

/** The parts of a layer the checked read needs (a Layer, or a blob described by a job). */
export type LayerSource = Pick<Layer, 'descriptor' | 'diffId' | 'label' | 'compression' | 'openCompressed'>;

export interface CheckedReadOptions extends OpenOptions {
  limits: Limits;
  /** Bytes after the end of a compressed stream are ignored instead of refused (a recompression repairs them). */
  allowTrailing?: boolean;
  /** Sees every byte of the checked tar before the consumer does (a transcode's encoder: one pass, not two). */
  tap?: (chunk: Buffer) => Promise<void>;
  /**
   * The stored blob's digest and size are checked by another reader of the same bytes (a writer's
   * copy, hashed on a worker): not hashed here a second time. A failure still hashes it to pick the
   * error (rule above).
   */
  blobCheckedElsewhere?: boolean;
}

function isBlobMismatch(error: unknown, layer: Pick<LayerSource, 'label'>): boolean {
  return (error instanceof DigestMismatchError || error instanceof SizeMismatchError) && error.what === `${layer.label}: blob`;
}

/** Reads the whole stored blob against its descriptor; resolves when it matches. */
export async function verifyBlob(layer: Pick<LayerSource, 'descriptor' | 'label' | 'openCompressed'>, options: OpenOptions = {}): Promise<void> {
  const check = new BlobCheck(`${layer.label}: blob`, {digest: layer.descriptor.digest, size: layer.descriptor.size});
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      try {
        check.update(chunk);
        done();
      } catch (e) {
        done(e as Error);
      }
    },
  });
  await pipeline(layer.openCompressed(options), sink, options.signal ? {signal: options.signal} : {});
  check.finish();
}

/** The blob as stored, checked against its descriptor as it streams (a failure surfaces on the stream). */
export function openCheckedBlob(layer: Pick<LayerSource, 'descriptor' | 'label' | 'openCompressed'>, options: OpenOptions = {}): Readable {
  const check = new DigestStream(`${layer.label}: blob`, {digest: layer.descriptor.digest, size: layer.descriptor.size});
  pipeline(layer.openCompressed(options), check).catch(() => {}); // errors surface on `check`, where the reader is
  return check;
}

/**
 * The error the rule above picks, given one a pass met: a blob mismatch it met stands; otherwise,
 * unless the pass already saw the whole blob match (`blobVerified`), the blob is hashed again and a
 * mismatch there wins; else the error met stands.
 */
export async function explainFailure(layer: LayerSource, error: unknown, blobVerified = false): Promise<unknown> {
  if (blobVerified || isBlobMismatch(error, layer)) return error;
  try {
    await verifyBlob(layer);
  } catch (blob) {
    if (isBlobMismatch(blob, layer)) return blob;
  }
  return error;
}

/**
 * The layer tar with every check on the way. The returned stream ends only when every check passed;
 * otherwise it fails with the error the rule picks. A consumer that stops early (destroys it) has not
 * used the bytes it did not read, and nothing is checked past that point.
 */
export function openChecked(layer: LayerSource, options: CheckedReadOptions): Readable {
  // `out` is fed by hand rather than being the pipeline's last stage: the pipeline would destroy it
  // with whichever error came first, and the consumer must see the one the rule picks.
  const out = new PassThrough({highWaterMark: 1 << 20});
  const stop = new AbortController();
  out.once('close', () => stop.abort()); // the consumer is gone (or the stream ended): stop reading
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, done) {
      if (out.destroyed || out.write(chunk)) return done();
      const go = (): void => {
        out.off('drain', go).off('close', go);
        done();
      };
      out.once('drain', go).once('close', go);
    },
    final(done) {
      out.end();
      done();
    },
  });
  const run = async (): Promise<void> => {
    const compression = await layer.compression();
    const blob = options.blobCheckedElsewhere ? undefined : new DigestStream(`${layer.label}: blob`, {digest: layer.descriptor.digest, size: layer.descriptor.size});
    const stages: NodeJS.ReadWriteStream[] = [];
    if (options.onBytes) stages.push(new Meter(options.onBytes));
    if (blob) stages.push(blob);
    stages.push(...decompressionStages(compression, layer.label, options.limits, {allowTrailing: options.allowTrailing === true}));
    // An uncompressed blob whose digest is its diffID is checked once, by the blob's check (here or elsewhere).
    if (compression !== 'none' || layer.descriptor.digest !== layer.diffId) stages.push(new DigestStream(`${layer.label}: diffID`, {digest: layer.diffId}));
    const tap = options.tap;
    if (tap) {
      stages.push(
        new Transform({
          highWaterMark: 1 << 20,
          transform(chunk: Buffer, _enc, done) {
            tap(chunk).then(() => done(null, chunk), done);
          },
        }),
      );
    }
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    try {
      await pipeline([layer.openCompressed(), ...stages, sink], {signal});
    } catch (error) {
      if (out.destroyed) return; // the consumer stopped reading: its choice, not a failure
      out.destroy((await explainFailure(layer, options.signal?.aborted ? options.signal.reason : error, blob?.digest !== undefined)) as Error);
    }
  };
  run().catch((e: unknown) => out.destroy(e as Error));
  return out;
}

/**
 * Reads a layer's tar through `consume` (a StreamReader over the checked stream) and, with
 * `complete` (the default), to its end, so every digest is checked even where the consumer stopped
 * early. When the consumer fails, the rest is read to learn whether an earlier check fails too: that
 * error wins (rule above).
 */
export async function consumeChecked<T>(layer: LayerSource, consume: (reader: StreamReader) => Promise<T>, options: CheckedReadOptions & {complete?: boolean}): Promise<T> {
  const reader = new StreamReader(openChecked(layer, options), layer.label);
  let result: T;
  try {
    result = await consume(reader);
  } catch (error) {
    await reader.drain(); // throws the upstream error if there is one: it wins
    throw error;
  } finally {
    if (options.complete === false) await reader.close();
  }
  if (options.complete !== false) await reader.drain();
  return result;
}

/**
 * Runs a check of the stored blob beside other work on the same layer (the layer engine walks an
 * uncompressed blob by offset while a worker hashes it): both are waited for, and the check's
 * failure wins over the work's (rule above).
 */
export async function besideCheck<T>(check: Promise<unknown>, work: Promise<T>): Promise<T> {
  const [checked, worked] = await Promise.allSettled([check, work]);
  if (checked.status === 'rejected') throw checked.reason;
  if (worked.status === 'rejected') throw worked.reason;
  return worked.value;
}
