import {createHash} from 'node:crypto';
import {open} from 'node:fs/promises';
import path from 'node:path';
import {FerryError, ioError, UsageError} from '../errors.js';
import {BlobPool} from '../io/blobs/pool.js';
import {SparseWriter} from '../io/fs/sparse.js';
import {disposeTemp, makeTempDir} from '../io/fs/temp.js';
import {ScratchLayer} from '../io/layers/range-layer.js';
import {withStoredCheck} from '../io/layers/scan.js';
import {parseConfig, type HistoryEntry} from '../model/config.js';
import {isRecord} from '../model/descriptor.js';
import type {Digest} from '../model/digest.js';
import type {Archive, Image, Layer} from '../model/image.js';
import {replaceTopLevelValues} from '../model/json-edit.js';
import {MediaType} from '../model/media-types.js';
import type {Platform} from '../model/platform.js';
import {resolveSettings, type SettingsInput} from '../settings.js';
import {emitTar, planEmission} from './overlay/emit.js';
import {mergeLayers} from './overlay/merge.js';
import {silentProgress, type Progress} from './progress.js';
import {pickImage} from './select.js';
import {writeArchive, type WriteOptions, type WriteSummary} from './write-archive.js';

export interface SquashResult extends AsyncDisposable {
  /** The new image: layers [0, fromLayer) as they were, then the squashed layer. */
  image: Image;
  fromLayer: number;
  /** Layers merged into one. */
  squashed: number;
  /** Uncompressed tar bytes of the merged layers, and of the one that replaces them. */
  beforeBytes: number;
  afterBytes: number;
  diffId: Digest;
  warnings: string[];
  /** Removes the new layer's temp file (also what `await using` does). */
  dispose(): void;
}

/**
 * Merges layers fromLayer..top into one changeset layer over the kept lower layers: what those
 * layers added or changed, and a whiteout for every lower path they removed (none when everything is
 * squashed). Hard links to files in kept layers stay links; files whose every lower name went away
 * are written out in full (docker-squash#94, go-containerregistry#2002). The layer goes to a temp
 * file (removed by dispose(), and on exit); the config keeps every byte except rootfs.diff_ids and
 * history.
 */
export async function squashImage(image: Image, fromLayer = 0, options: {progress?: Progress; settings?: SettingsInput} = {}): Promise<SquashResult> {
  const settings = resolveSettings(options.settings);
  const count = image.layers.length;
  if (count === 0) throw new FerryError('BAD_ARCHIVE', 'the image has no layers to squash');
  if (!Number.isInteger(fromLayer) || fromLayer < 0 || fromLayer >= count) {
    throw new UsageError(`--from-layer ${fromLayer} is out of range: the image has ${count} layer(s), numbered 0 (base) to ${count - 1}`);
  }
  // Blob digests and diffIDs are checked in the same pass as the merge (issue 6: verify what you copy),
  // hashed on worker threads while this one walks the headers.
  const pool = new BlobPool(settings.workers);
  let view: Awaited<ReturnType<typeof mergeLayers>>;
  try {
    view = await withStoredCheck(image.layers, pool, settings.workers, mergeLayers(image.layers, fromLayer > 0 ? {snapshotBefore: fromLayer} : {}));
  } finally {
    await pool.close();
  }
  const progress = options.progress ?? silentProgress;
  const plan = planEmission(view.tree, view.lower ? {base: fromLayer, lower: view.lower} : {base: 0});
  const dir = await makeTempDir(settings.tempDir, 'ferry-squash-');
  try {
    const file = path.join(dir, 'layer.tar');
    const hash = createHash('sha256');
    progress.start('squashing', plan.stats.fileBytes + 1024 * (plan.stats.entries + 1)); // bodies, headers and padding (about)
    const metered = async function* (): AsyncGenerator<Buffer> {
      for await (const chunk of emitTar(plan, image.layers)) {
        progress.advance(chunk.length);
        yield chunk;
      }
    };
    // Written sparse: runs of zeros stay holes (and the copy into the archive skips them again).
    const handle = await open(file, 'wx', 0o600).catch((e: unknown) => {
      throw ioError(e, file);
    });
    let size = 0;
    try {
      const writer = new SparseWriter(handle, file);
      for await (const chunk of metered()) {
        hash.update(chunk);
        size += chunk.length;
        await writer.write(chunk);
      }
      await writer.finish();
    } catch (e) {
      throw ioError(e, 'squashed layer');
    } finally {
      await handle.close();
    }
    progress.stop();
    const diffId = `sha256:${hash.digest('hex')}` as Digest;
    const label = `squashed layer (layers ${fromLayer}..${count - 1})`;
    // Its digest was computed from these very bytes: the writer neither hashes it again nor needs
    // the copy when the destination can take the file itself.
    const layer: Layer = ScratchLayer.of({mediaType: MediaType.ociLayer, digest: diffId, size}, diffId, file, label, settings.limits);
    const kept = image.layers.slice(0, fromLayer);
    const configBytes = squashedConfig(image, fromLayer, diffId);
    const config = parseConfig(configBytes, image.config.mediaType, 'squashed image config');
    const beforeBytes = view.layers.slice(fromLayer).reduce((n, l) => n + l.tarBytes, 0);
    const dispose = (): void => disposeTemp(dir);
    return {
      image: {manifest: null, config, layers: [...kept, layer], platform: image.platform},
      fromLayer,
      squashed: count - fromLayer,
      beforeBytes,
      afterBytes: size,
      diffId,
      warnings: view.warnings,
      dispose,
      [Symbol.asyncDispose]: async () => dispose(),
    };
  } catch (e) {
    disposeTemp(dir);
    throw e;
  }
}

/**
 * The config with rootfs.diff_ids and history replaced and every other byte kept. History follows
 * Docker's own squash (moby daemon/images/image_squash.go): entries of merged layers become
 * `empty_layer` (they stay, so `docker history` still tells the story) and one entry for the new
 * layer is appended, so count(!empty_layer) == len(diff_ids) still holds.
 */
export function squashedConfig(image: Image, fromLayer: number, diffId: Digest): Buffer {
  const parsed = image.config.parsed;
  const oldIds = parsed.rootfs.diff_ids;
  const diffIds = [...oldIds.slice(0, fromLayer), diffId];
  const rawHistory = Array.isArray(parsed.history) ? parsed.history : [];
  const history: unknown[] = [];
  let layerIndex = 0;
  for (const h of rawHistory) {
    if (!isRecord(h) || h.empty_layer === true) {
      history.push(h);
      continue;
    }
    history.push(layerIndex >= fromLayer ? {...h, empty_layer: true} : h);
    layerIndex++;
  }
  // Images without history (or with less than one entry per layer) get placeholders for kept layers.
  for (; layerIndex < fromLayer; layerIndex++) history.push({comment: `layer ${layerIndex} (no history in the source image)`});
  const created = typeof parsed.created === 'string' ? parsed.created : lastCreated(rawHistory);
  const entry: HistoryEntry = {
    ...(created ? {created} : {}),
    created_by: `ferry squash --from-layer ${fromLayer}`,
    comment: `merged layers ${fromLayer}..${oldIds.length - 1} (${oldIds[fromLayer]} .. ${oldIds.at(-1)}) into ${diffId}`,
  };
  history.push(entry);
  const rootfs = isRecord(parsed.rootfs) ? {...parsed.rootfs, diff_ids: diffIds} : {type: 'layers', diff_ids: diffIds};
  return replaceTopLevelValues(image.config.bytes, {rootfs, history});
}

function lastCreated(history: unknown[]): string | undefined {
  for (let i = history.length - 1; i >= 0; i--) {
    const h = history[i];
    if (isRecord(h) && typeof h.created === 'string') return h.created;
  }
  return undefined;
}

export interface SquashOptions extends Omit<WriteOptions, 'platform'> {
  /** The image to squash when the archive holds several (name, image ID or manifest digest). */
  images?: readonly string[];
  /** Which platform of a multi-platform image. */
  platform?: Platform;
  fromLayer?: number;
}

export interface SquashSummary {
  image: string;
  result: Omit<SquashResult, 'image' | 'dispose' | typeof Symbol.asyncDispose>;
  written: WriteSummary;
}

/** `ferry squash`: squash the picked image and write it to `destination` through the archive writer. */
export async function squashToArchive(archive: Archive, destination: string, options: SquashOptions = {}): Promise<SquashSummary> {
  const {images, platform, fromLayer, ...writeOptions} = options;
  const picked = await pickImage(archive, images ?? [], {...(platform ? {platform} : {}), ...(options.note ? {note: options.note} : {})});
  const result = await squashImage(picked.image, fromLayer ?? 0, {...(options.progress ? {progress: options.progress} : {}), ...(options.settings ? {settings: options.settings} : {})});
  try {
    const written = await writeArchive(destination, [{names: picked.names, root: result.image}], writeOptions);
    const {image: _image, dispose: _dispose, [Symbol.asyncDispose]: _asyncDispose, ...rest} = result;
    return {image: picked.names[0] ?? picked.image.config.digest, result: rest, written};
  } finally {
    result.dispose();
  }
}
