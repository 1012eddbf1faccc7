import os from 'node:os';
import {UsageError} from './errors.js';

/**
 * What the library needs to know about its surroundings, passed in by the caller (options) and
 * never read from the environment here: only `commands/` maps `FERRY_*` variables onto these
 * (docs/limits.md). Every op takes `settings?: Partial<Settings>` and fills the rest from the defaults.
 */
export interface Limits {
  /** Largest JSON document read (manifest.json, index, manifest, config): CVE-2020-1702's lesson. */
  maxJsonBytes: number;
  /** Decompressed output may not exceed maxRatio × compressed input + ratioSlackBytes (bombs). */
  maxRatio: number;
  ratioSlackBytes: number;
  /** Absolute cap on decompressed bytes per stream (Infinity: none). gzip stays under ~1032:1, so only this stops a gzip bomb. */
  maxDecompressedBytes: number;
}

export interface Settings {
  limits: Limits;
  /** Where spooled input and scratch files go when they cannot sit beside the destination. */
  tempDir: string;
  /** Worker threads for hashing and compressing (0: everything on the calling thread). */
  workers: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = {
  maxJsonBytes: 16 * 1024 * 1024,
  maxRatio: 2000,
  ratioSlackBytes: 1 << 30,
  maxDecompressedBytes: Number.POSITIVE_INFINITY,
};

/** Nested index depth accepted before we call it a loop (not a setting: no real image comes close). */
export const MAX_INDEX_DEPTH = 8;

export interface SettingsInput {
  limits?: Partial<Limits>;
  tempDir?: string;
  workers?: number;
}

/** Fills in defaults and checks every value (a bad one is a usage error naming it). */
export function resolveSettings(input: SettingsInput = {}): Settings {
  const limits = {...DEFAULT_LIMITS, ...input.limits};
  for (const [key, value] of Object.entries(limits)) {
    if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) throw new UsageError(`limit ${key} must be a positive number, got ${String(value)}`);
  }
  const workers = input.workers ?? os.availableParallelism();
  if (!Number.isInteger(workers) || workers < 0) throw new UsageError(`workers must be a whole number ≥ 0, got ${String(workers)}`);
  return {limits, tempDir: input.tempDir ?? os.tmpdir(), workers};
}
