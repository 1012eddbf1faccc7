import pLimit from 'p-limit';
import {describeError, printable, SizeMismatchError} from '../errors.js';
import {scanLayer} from '../io/layers/scan.js';
import {listAbsent, listImages, resolveLayers, type Archive, type Layer} from '../model/image.js';
import {formatPlatform} from '../model/platform.js';
import {resolveSettings, type SettingsInput} from '../settings.js';
import {cleanPath} from '../tar/walk.js';
import {silentProgress, type Progress} from './progress.js';

export interface VerifyResult {
  ok: boolean;
  images: number;
  layers: number;
  bytes: number;
  problems: string[];
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
  const progress = options.progress ?? silentProgress;
  const problems: string[] = [...archive.problems];
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
          problems.push(`${layer.label}: blob ${layer.descriptor.digest} is missing from the archive`);
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
  progress.stop();
  const distinct = [...new Set(problems.map(printable))].sort();
  return {ok: distinct.length === 0, images: images.length, layers: unique.size, bytes, problems: distinct};
}
