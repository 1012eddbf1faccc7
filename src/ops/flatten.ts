import {createWriteStream} from 'node:fs';
import {Readable, type Writable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {ioError, UsageError} from '../errors.js';
import {beginAtomicOutput} from '../io/atomic.js';
import type {Archive, Image} from '../model/image.js';
import {emitTar, planEmission, type EmitPlan} from './overlay/emit.js';
import {verifyStoredLayers} from './layer-scan.js';
import {mergeLayers} from './overlay/merge.js';
import {pickImage} from './overlay/pick-image.js';

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
export async function flattenImage(image: Image): Promise<FlattenedImage> {
  // Blob digests and diffIDs are checked in the same pass as the merge (issue 6: verify what you copy).
  const [view] = await Promise.all([mergeLayers(image.layers), verifyStoredLayers(image.layers)]);
  const plan = planEmission(view.tree, {base: 0});
  return {plan, warnings: view.warnings, stream: () => emitTar(plan, image.layers)};
}

export interface ExportOptions {
  /** `--image` refs; the archive must then hold exactly one match. */
  images?: readonly string[];
  force?: boolean;
  /** Where '-' goes (tests pass their own). */
  stdout?: Writable;
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
  const flat = await flattenImage(picked.image);
  let bytes = 0;
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of flat.stream()) {
      bytes += chunk.length;
      yield chunk;
    }
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
      await pipeline(Readable.from(counted(), {objectMode: false}), createWriteStream(output.tempPath, {flags: 'wx'}));
      await output.commit();
    } catch (e) {
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
