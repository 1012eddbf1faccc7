import {open} from 'node:fs/promises';
import {Readable, type Writable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {ioError, UsageError} from '../errors.js';
import {beginAtomicOutput} from '../io/atomic.js';
import {BlobPool} from '../io/blob-pool.js';
import {SparseWriter} from '../io/sparse.js';
import type {Archive, Image} from '../model/image.js';
import {emitTar, planEmission, type EmitPlan} from './overlay/emit.js';
import {verifyStoredLayers} from './layer-scan.js';
import {mergeLayers} from './overlay/merge.js';
import {pickImage} from './overlay/pick-image.js';
import {silentProgress, type Progress} from './progress.js';

export interface FlattenedImage {
  plan: EmitPlan;
  warnings: string[];
  /** The rootfs tar, streamed from the layers (nothing held in memory, nothing written to disk). */
  stream(): AsyncGenerator<Buffer>;
}

/**
 * The image's file system as one tar, like `docker export` of a container made from it (without
 * the stubs Docker's init layer adds: .dockerenv, etc/hosts…): whiteouts applied and gone,
 * deterministic order (see overlay/emit.ts).
 */
export async function flattenImage(image: Image, pool?: BlobPool): Promise<FlattenedImage> {
  // Blob digests and diffIDs are checked in the same pass as the merge (issue 6: verify what you copy),
  // on the pool's worker threads when there is one.
  const [view] = await Promise.all([mergeLayers(image.layers), verifyStoredLayers(image.layers, pool)]);
  const plan = planEmission(view.tree, {base: 0});
  return {plan, warnings: view.warnings, stream: () => emitTar(plan, image.layers)};
}

export interface ExportOptions {
  /** `--image` refs; the archive must then hold exactly one match. */
  images?: readonly string[];
  force?: boolean;
  /** Where '-' goes (tests pass their own). */
  stdout?: Writable;
  /** Bytes written (the CLI draws a bar from it). */
  progress?: Progress;
}

export interface ExportSummary {
  image: string;
  entries: number;
  files: number;
  bytes: number;
  warnings: string[];
}

/** `ferry export`: writes the flattened rootfs tar to `destination` (atomically) or to stdout ('-'). */
export async function exportImage(archive: Archive, destination: string, options: ExportOptions = {}): Promise<ExportSummary> {
  const picked = pickImage(archive, options.images ?? []);
  const progress = options.progress ?? silentProgress;
  const pool = new BlobPool();
  let flat: FlattenedImage;
  try {
    flat = await flattenImage(picked.image, pool);
  } finally {
    await pool.close();
  }
  let bytes = 0;
  const counted = async function* (): AsyncGenerator<Buffer> {
    progress.start('exporting', flat.plan.stats.fileBytes + 1024 * (flat.plan.stats.entries + 1)); // bodies, headers and padding (about)
    for await (const chunk of flat.stream()) {
      bytes += chunk.length;
      progress.advance(chunk.length);
      yield chunk;
    }
    progress.stop();
  };
  if (destination === '-') {
    const out = options.stdout ?? process.stdout;
    if ((out as NodeJS.WriteStream).isTTY) throw new UsageError('refusing to write a tar to a terminal: redirect stdout or name a file');
    await pipeline(Readable.from(counted(), {objectMode: false}), out, {end: out !== process.stdout}).catch((e: unknown) => {
      throw ioError(e, 'stdout');
    });
  } else {
    const output = await beginAtomicOutput(destination, 'file', {force: options.force ?? false});
    try {
      // Written sparse (runs of zeros stay holes): an 8 GB image of zeros spent most of its export
      // time in system calls writing zeros.
      const handle = await open(output.tempPath, 'wx', 0o644).catch((e: unknown) => {
        throw ioError(e, output.tempPath);
      });
      try {
        const writer = new SparseWriter(handle, output.tempPath);
        for await (const chunk of counted()) await writer.write(chunk);
        await writer.finish();
      } finally {
        await handle.close();
      }
      await output.commit();
    } catch (e) {
      progress.stop();
      await output.abort();
      throw ioError(e, destination);
    }
  }
  return {
    image: picked.names[0] ?? picked.image.config.digest,
    entries: flat.plan.stats.entries,
    files: flat.plan.stats.files,
    bytes,
    warnings: flat.warnings,
  };
}
