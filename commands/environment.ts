import os from 'node:os';
import path from 'node:path';
import {UsageError} from '../src/errors.js';
import type {Limits, RegistryOptions, SettingsInput} from '../src/settings.js';

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

/**
 * Where registry credentials and state live, as docker, podman and skopeo look for them:
 * `$DOCKER_CONFIG` (else ~/.docker) for config.json; `$REGISTRY_AUTH_FILE`, else
 * `$XDG_RUNTIME_DIR/containers/auth.json` and `$XDG_CONFIG_HOME/containers/auth.json` (podman's);
 * push's upload journal in `$FERRY_STATE_DIR`, else `$XDG_STATE_HOME/ferry` (~/.local/state/ferry);
 * certs.d trees: podman's per-user `~/.config/containers/certs.d` (containers-certs.d(5)), then
 * `/etc/containers/certs.d` and `/etc/docker/certs.d`.
 */
export function registryFromEnvironment(env: NodeJS.ProcessEnv): RegistryOptions {
  const home = env.HOME || os.homedir();
  const authFiles: string[] = [];
  if (env.REGISTRY_AUTH_FILE) authFiles.push(env.REGISTRY_AUTH_FILE);
  else {
    if (env.XDG_RUNTIME_DIR) authFiles.push(path.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
    authFiles.push(path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'containers', 'auth.json'));
  }
  return {
    dockerConfigDir: env.DOCKER_CONFIG || path.join(home, '.docker'),
    authFiles,
    stateDir: env.FERRY_STATE_DIR || path.join(env.XDG_STATE_HOME || path.join(home, '.local', 'state'), 'ferry'),
    // containers/image reads $HOME/.config/containers/certs.d (not $XDG_CONFIG_HOME) before the system trees.
    certsDirs: [path.join(home, '.config', 'containers', 'certs.d'), '/etc/containers/certs.d', '/etc/docker/certs.d'],
    helperEnv: env,
  };
}
