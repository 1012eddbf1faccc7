import {configPlatform, parseConfig, type HistoryEntry} from './config.js';
import type {Image, Layer} from './image.js';
import {replaceTopLevelValues} from './json-edit.js';
import {MediaType} from './media-types.js';
import type {Platform} from './platform.js';

/** Container config fields `docker import --change` / `docker commit` may set (changes.ts parses them). */
export interface ContainerConfigChanges {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

export interface EmptyImageOptions {
  platform: Platform;
  /** RFC 3339; deterministic callers pass something derived from their input. */
  created: string;
  config?: ContainerConfigChanges;
}

/**
 * "FROM scratch" (go-containerregistry's empty.Image): no layers, no history, the config `docker
 * import` starts from (docs/formats.md §7). Keys in a fixed order, so the bytes, and the
 * image ID, depend only on the options.
 */
export function emptyImage(options: EmptyImageOptions): Image {
  const {platform} = options;
  const config: Record<string, unknown> = {
    architecture: platform.architecture,
    ...(platform.variant ? {variant: platform.variant} : {}),
    config: options.config ?? {},
    created: options.created,
    history: [],
    os: platform.os,
    rootfs: {type: 'layers', diff_ids: []},
  };
  const parsed = parseConfig(Buffer.from(JSON.stringify(config)), MediaType.ociConfig, 'empty image config');
  return {manifest: null, config: parsed, layers: [], platform: configPlatform(parsed.parsed)};
}

/**
 * The image with one more layer on top: rootfs.diff_ids and history gain an entry and every other
 * byte of the config is kept (go-containerregistry's mutate.AppendLayers). The result has no manifest
 * (the writer makes one).
 */
export function appendLayer(image: Image, layer: Layer, history: HistoryEntry): Image {
  const parsed = image.config.parsed;
  const bytes = replaceTopLevelValues(image.config.bytes, {
    history: [...(parsed.history ?? []), history],
    rootfs: {...parsed.rootfs, diff_ids: [...parsed.rootfs.diff_ids, layer.diffId]},
  });
  const config = parseConfig(bytes, image.config.mediaType, 'config with an appended layer');
  return {manifest: null, config, layers: [...image.layers, layer], platform: image.platform};
}
