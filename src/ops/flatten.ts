import {open} from 'node:fs/promises';
import {Readable, type Writable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {ioError, UsageError} from '../errors.js';
import {BlobPool} from '../io/blobs/pool.js';
import {metered} from '../io/bytes/meter.js';
import {beginAtomicOutput} from '../io/fs/atomic.js';
import {SparseWriter} from '../io/fs/sparse.js';
import {withStoredCheck} from '../io/layers/scan.js';
import type {Archive, Image} from '../model/image.js';
import type {Platform} from '../model/platform.js';
import {resolveSettings, type SettingsInput} from '../settings.js';
import {readContent} from './overlay/content.js';
import {emitTar, idNames, planEmission, type EmitPlan} from './overlay/emit.js';
import {mergeLayers} from './overlay/merge.js';
import {isFailure, type MergedTree} from './overlay/tree.js';
import {silentProgress, type Progress} from './progress.js';
import {pickImage} from './select.js';

export interface FlattenedImage {
  plan: EmitPlan;
  warnings: string[];
  /** The rootfs tar, streamed from the layers (nothing held in memory, nothing written to disk). */
  stream(): AsyncGenerator<Buffer>;
}

/**
 * The image's file system as one tar, like `docker export` of a container made from it (without
 * the stubs Docker's init layer adds: .dockerenv, etc/hosts…): whiteouts applied and gone,
 * deterministic order (see overlay/emit.ts). Layers walked by offset are hashed beside the merge.
 */
export async function flattenImage(image: Image, options: {settings?: SettingsInput} = {}): Promise<FlattenedImage> {
  const settings = resolveSettings(options.settings);
  const pool = new BlobPool(settings.workers);
  let view: Awaited<ReturnType<typeof mergeLayers>>;
  try {
    view = await withStoredCheck(image.layers, pool, settings.workers, mergeLayers(image.layers));
  } finally {
    await pool.close();
  }
  const owners = {users: await idFile(view.tree, image, 'etc/passwd'), groups: await idFile(view.tree, image, 'etc/group')};
  const plan = planEmission(view.tree, {base: 0, dockerExport: owners});
  return {plan, warnings: view.warnings, stream: () => emitTar(plan, image.layers)};
}

/** The image's own /etc/passwd or /etc/group as id → name (docker export names owners from them); empty when absent. */
async function idFile(tree: MergedTree, image: Image, file: string): Promise<Map<number, string>> {
  const node = tree.resolveFollow(file);
  if (isFailure(node) || node.type !== 'file' || !node.inode.source || node.inode.size > MAX_ID_FILE) return new Map();
  const chunks: Buffer[] = [];
  for await (const chunk of readContent(image.layers, node.inode.source)) chunks.push(chunk);
  return idNames(Buffer.concat(chunks).toString('utf8'));
}

/** A passwd or group file bigger than this is not read for names (a real one is a few KiB). */
const MAX_ID_FILE = 1 << 20;

export interface ExportOptions {
  /** `--image` refs; the archive must then hold exactly one match. */
  images?: readonly string[];
  /** Which platform of a multi-platform image. */
  platform?: Platform;
  force?: boolean;
  /** Where a destination of '-' goes (the CLI passes process.stdout). */
  stdout?: Writable;
  /** Bytes written (the CLI draws a bar from it). */
  progress?: Progress;
  note?: (message: string) => void;
  settings?: SettingsInput;
}

export interface ExportSummary {
  image: string;
  entries: number;
  files: number;
  bytes: number;
  warnings: string[];
}

/** The picked image of an archive, flattened: the tar as a Readable, and what it holds. */
export async function exportStream(archive: Archive, options: Omit<ExportOptions, 'force' | 'stdout'> = {}): Promise<{image: string; flat: FlattenedImage; stream: Readable}> {
  const picked = await pickImage(archive, options.images ?? [], {...(options.platform ? {platform: options.platform} : {}), ...(options.note ? {note: options.note} : {})});
  const flat = await flattenImage(picked.image, options.settings ? {settings: options.settings} : {});
  const progress = options.progress ?? silentProgress;
  const counted = async function* (): AsyncGenerator<Buffer> {
    progress.start('exporting', flat.plan.stats.fileBytes + 1024 * (flat.plan.stats.entries + 1)); // bodies, headers and padding (about)
    for await (const chunk of flat.stream()) {
      progress.advance(chunk.length);
      yield chunk;
    }
    progress.stop();
  };
  return {image: picked.names[0] ?? picked.image.config.digest, flat, stream: Readable.from(counted(), {objectMode: false})};
}

/** `ferry export`: writes the flattened rootfs tar to `destination` (atomically), or to `options.stdout` for '-'. */
export async function exportImage(archive: Archive, destination: string, options: ExportOptions = {}): Promise<ExportSummary> {
  if (destination === '-') {
    if (!options.stdout) throw new UsageError('"-" writes to stdout, but no stdout stream was given');
    if ((options.stdout as NodeJS.WriteStream).isTTY) throw new UsageError('refusing to write a tar to a terminal: redirect stdout or name a file');
  }
  const exported = await exportStream(archive, options);
  const {image, flat} = exported;
  let bytes = 0;
  const stream = metered(exported.stream, (n) => (bytes += n));
  if (destination === '-') {
    await pipeline(stream, options.stdout!, {end: false}).catch((e: unknown) => {
      throw ioError(e, 'stdout');
    });
  } else {
    const output = await beginAtomicOutput(destination, 'file', {force: options.force ?? false, tempDir: resolveSettings(options.settings).tempDir});
    try {
      // Written sparse (runs of zeros stay holes): an 8 GB image of zeros spent most of its export
      // time in system calls writing zeros.
      const handle = await open(output.tempPath, 'wx', 0o644).catch((e: unknown) => {
        throw ioError(e, output.tempPath);
      });
      try {
        const writer = new SparseWriter(handle, output.tempPath);
        for await (const chunk of stream) await writer.write(chunk as Buffer);
        await writer.finish();
      } finally {
        await handle.close();
      }
      await output.commit();
    } catch (e) {
      await output.abort();
      throw ioError(e, destination);
    }
  }
  return {image, entries: flat.plan.stats.entries, files: flat.plan.stats.files, bytes, warnings: flat.warnings};
}
