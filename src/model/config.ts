import {FerryError} from '../errors.js';
import {isRecord} from './descriptor.js';
import {parseDigest, sha256Of, type Digest} from './digest.js';
import type {Platform} from './platform.js';

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** The parsed view of an image config; the bytes in `ConfigBlob.bytes` are the truth. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: {
    User?: string;
    ExposedPorts?: Record<string, object>;
    Env?: string[] | null;
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Volumes?: Record<string, object> | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
    [key: string]: unknown;
  } | null;
  rootfs: {type: string; diff_ids: Digest[]};
  history?: HistoryEntry[];
  [key: string]: unknown;
}

/** Exact config bytes plus a parsed view; the digest (image ID) comes from the bytes. */
export interface ConfigBlob {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
  parsed: ImageConfig;
}

export function parseJson(bytes: Buffer, where: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new FerryError('BAD_JSON', `${where}: invalid JSON (${(e as Error).message})`, {cause: e});
  }
}

export function parseConfig(bytes: Buffer, mediaType: string, where: string): ConfigBlob {
  const value = parseJson(bytes, where);
  if (!isRecord(value)) throw new FerryError('BAD_JSON', `${where}: image config is not a JSON object`);
  const rootfs = value.rootfs;
  // Docker refuses a config without rootfs ("invalid image JSON, no RootFS key", docs/formats.md §1).
  if (!isRecord(rootfs) || !Array.isArray(rootfs.diff_ids)) throw new FerryError('BAD_JSON', `${where}: image config has no rootfs.diff_ids`);
  rootfs.diff_ids.forEach((d, i) => parseDigest(d, `${where}: rootfs.diff_ids[${i}]`));
  if (value.history !== undefined && value.history !== null && !Array.isArray(value.history)) throw new FerryError('BAD_JSON', `${where}: history is not an array`);
  if (value.config !== undefined && value.config !== null && !isRecord(value.config)) throw new FerryError('BAD_JSON', `${where}: config.config is not an object`);
  for (const key of ['architecture', 'os', 'created'] as const) {
    if (value[key] !== undefined && typeof value[key] !== 'string') throw new FerryError('BAD_JSON', `${where}: ${key} is not a string`);
  }
  return {bytes, digest: sha256Of(bytes), mediaType, parsed: value as unknown as ImageConfig};
}

export function configPlatform(config: ImageConfig): Platform {
  const p: Platform = {os: config.os ?? 'unknown', architecture: config.architecture ?? 'unknown'};
  if (typeof config.variant === 'string' && config.variant !== '') p.variant = config.variant;
  return p;
}

/** History entries that made layers, aligned with diff_ids (empty_layer ones skipped). */
export function layerHistory(config: ImageConfig): (HistoryEntry | undefined)[] {
  const out: (HistoryEntry | undefined)[] = [];
  for (const h of config.history ?? []) if (isRecord(h) && !h.empty_layer) out.push(h);
  return config.rootfs.diff_ids.map((_, i) => out[i]);
}
