import pLimit from 'p-limit';
import {describeError, printable, SizeMismatchError} from '../errors.js';
import {scanLayer} from '../io/layers/scan.js';
import {verifyBlob} from '../io/blobs/checked-read.js';
import {BlobPool} from '../io/blobs/pool.js';
import {listAbsent, listArtifacts, listImages, resolveLayers, type Archive, type Blob, type Layer} from '../model/image.js';
import {formatPlatform} from '../model/platform.js';
import {resolveSettings, type Settings, type SettingsInput} from '../settings.js';
import {cleanPath} from '../tar/walk.js';
import {silentProgress, type Progress} from './progress.js';

export interface VerifyResult {
  ok: boolean;
  images: number;
  layers: number;
  /** Attestations, signatures and other artifacts, checked by digest and size. */
  artifacts: number;
  bytes: number;
  problems: string[];
  /** What is worth knowing but is no failure: foreign layers whose blobs live elsewhere by design. */
  notes: string[];
}

export interface VerifyOptions {
  settings?: SettingsInput;
  progress?: Progress;
}

/**
 * Recomputes every layer blob's digest and size, every diffID through decompression, and walks every
 * layer's entries for paths that escape the root. Configs and manifests were checked against their
 * descriptors while the archive was read. Layers run concurrently, each streamed once.
 */
export async function verifyArchive(archive: Archive, options: VerifyOptions = {}): Promise<VerifyResult> {
  const settings = resolveSettings(options.settings);
  // Uncompressed blobs in files are hashed on the pool's workers while their headers are walked here (scanLayer).
  const pool = new BlobPool(settings.workers);
  try {
    return await verifyWith(archive, settings, options.progress ?? silentProgress, pool);
  } finally {
    await pool.close();
  }
}

async function verifyWith(archive: Archive, settings: Settings, progress: Progress, pool: BlobPool): Promise<VerifyResult> {
  const problems: string[] = [...archive.problems];
  const notes: string[] = [];
  for (const {child, names} of listAbsent(archive)) {
    problems.push(`${names.join(', ') || 'index'}: ${child.descriptor.platform ? `platform ${formatPlatform(child.descriptor.platform)}: ` : ''}${child.absent ?? 'absent'}`);
  }
  const images = listImages(archive);
  await resolveLayers(images.map((i) => i.image));
  // One check per distinct blob: shared layers (docker save symlinks, multi-image) are read once.
  const unique = new Map<string, Layer>();
  for (const {image} of images) for (const layer of image.layers) unique.set(`${layer.descriptor.digest}/${layer.diffId}`, layer);
  const limit = pLimit(Math.max(1, settings.workers));
  // Entry names (and hardlink targets) per layer, in tar order, for the cross-layer link check.
  const entryLog = new Map<Layer, Array<[name: string, linkTarget?: string]>>();
  let bytes = 0;
  progress.start('verifying', [...unique.values()].reduce((n, l) => n + (l.absent ? 0 : l.descriptor.size), 0));
  await Promise.all(
    [...unique.values()].map((layer) =>
      limit(async () => {
        if (layer.absent !== undefined) {
          if (layer.foreign) notes.push(`${layer.label}: ${layer.absent}`);
          else problems.push(`${layer.label}: blob ${layer.descriptor.digest} is missing from the archive`);
          return;
        }
        // The stored blob's size is known without reading it: compare first, so the message gives
        // the true size (the streaming check stops at the first chunk past the declared size).
        if (layer.region && layer.region.size !== layer.descriptor.size) {
          problems.push(new SizeMismatchError(`${layer.label}: blob`, layer.descriptor.size, layer.region.size).message);
          return;
        }
        const log: Array<[string, string?]> = [];
        try {
          const result = await scanLayer(layer, {
            limits: settings.limits,
            pool,
            onBytes: (n) => progress.advance(n),
            onEntry: async (entry) => {
              log.push(entry.type === 'hardlink' ? [cleanPath(entry.name), cleanPath(entry.linkname)] : [cleanPath(entry.name)]);
            },
          });
          problems.push(...result.problems);
          bytes += layer.descriptor.size;
          entryLog.set(layer, log);
        } catch (e) {
          problems.push(describeError(e));
        }
      }),
    ),
  );
  // A hardlink must name something an earlier entry (this layer or a lower one) created.
  for (const {image} of images) {
    const present = new Set<string>();
    for (const layer of image.layers) {
      const log = entryLog.get(unique.get(`${layer.descriptor.digest}/${layer.diffId}`)!);
      if (!log) break; // unreadable layer: reported above
      for (const [name, target] of log) {
        // A target that escapes the root was reported by the entry check already: one line per problem.
        const escapes = target === '..' || target?.startsWith('../') === true;
        if (target !== undefined && !escapes && !present.has(target)) problems.push(`${layer.label}: hardlink "${name}" points to "${target}", which no earlier entry created`);
        present.add(name);
      }
    }
  }
  // Artifacts are content, not layer tars: each blob is checked by digest and size, never walked.
  const artifacts = listArtifacts(archive);
  const layerDigests = new Set([...unique.values()].map((l) => l.descriptor.digest));
  const blobs = new Map<string, Blob>();
  for (const {artifact} of artifacts) for (const blob of artifact.blobs) if (!layerDigests.has(blob.descriptor.digest)) blobs.set(blob.descriptor.digest, blob);
  await Promise.all(
    [...blobs.values()].map((blob) =>
      limit(async () => {
        if (blob.absent !== undefined) {
          (blob.foreign ? notes : problems).push(`${blob.label}: ${blob.absent}`);
          return;
        }
        try {
          await verifyBlob(blob, {onBytes: (n) => progress.advance(n)});
          bytes += blob.descriptor.size;
        } catch (e) {
          problems.push(describeError(e));
        }
      }),
    ),
  );
  progress.stop();
  const distinct = [...new Set(problems.map(printable))].sort();
  return {ok: distinct.length === 0, images: images.length, layers: unique.size, artifacts: artifacts.length, bytes, problems: distinct, notes: [...new Set(notes.map(printable))].sort()};
}
