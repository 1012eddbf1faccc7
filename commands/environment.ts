import {UsageError} from '../src/errors.js';
import type {Limits, SettingsInput} from '../src/settings.js';

/**
 * The only place ferry reads its environment variables (docs/limits.md lists them all): each is
 * checked here, so a bad value is one usage error (exit 2) naming it, before any work starts.
 */
const LIMIT_VARIABLES: ReadonlyArray<[name: string, key: keyof Limits]> = [
  ['FERRY_MAX_JSON', 'maxJsonBytes'],
  ['FERRY_MAX_RATIO', 'maxRatio'],
  ['FERRY_RATIO_SLACK', 'ratioSlackBytes'],
  ['FERRY_MAX_DECOMPRESSED', 'maxDecompressedBytes'],
];

function positiveNumber(name: string, text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0) throw new UsageError(`${name}="${text}": expected a positive number`);
  return value;
}

export function settingsFromEnvironment(env: NodeJS.ProcessEnv): SettingsInput {
  const limits: Partial<Limits> = {};
  for (const [name, key] of LIMIT_VARIABLES) {
    const text = env[name];
    if (text !== undefined && text !== '') limits[key] = positiveNumber(name, text);
  }
  const settings: SettingsInput = {limits};
  if (env.FERRY_TMPDIR) settings.tempDir = env.FERRY_TMPDIR;
  const workers = env.FERRY_WORKERS;
  if (workers !== undefined && workers !== '') {
    if (!/^\d+$/.test(workers)) throw new UsageError(`FERRY_WORKERS="${workers}": expected a whole number (0: no worker threads)`);
    settings.workers = Number(workers);
  }
  return settings;
}

/** FERRY_DEBUG=1 adds stack traces to error lines. */
export function debugRequested(env: NodeJS.ProcessEnv): boolean {
  return env.FERRY_DEBUG === '1';
}
