import {createHash} from 'node:crypto';
import {existsSync, readFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {UsageError} from '../src/errors.js';
import {DEFAULT_DAEMON_HOST, type DaemonOptions, type Limits, type RegistryOptions, type SettingsInput} from '../src/settings.js';

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

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * DOCKER_TLS_VERIFY / DOCKER_TLS / DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem), as the docker CLI
 * reads them: DOCKER_TLS_VERIFY set to anything ("0" too) verifies, DOCKER_TLS alone speaks TLS without.
 */
function dockerTls(env: NodeJS.ProcessEnv, home: string, dir?: string): NonNullable<DaemonOptions['tls']> {
  const certs = dir ?? env.DOCKER_CERT_PATH ?? path.join(env.DOCKER_CONFIG || path.join(home, '.docker'));
  const file = (name: string): string | undefined => (existsSync(path.join(certs, name)) ? path.join(certs, name) : undefined);
  const ca = file('ca.pem');
  const cert = file('cert.pem');
  const key = file('key.pem');
  return {verify: env.DOCKER_TLS_VERIFY !== undefined && env.DOCKER_TLS_VERIFY !== '', ...(ca ? {ca} : {}), ...(cert ? {cert} : {}), ...(key ? {key} : {})};
}

/**
 * Which daemon docker-daemon: reaches, chosen as the docker CLI does: --host, DOCKER_HOST, the
 * current context (DOCKER_CONTEXT, else config.json's currentContext: its endpoint from
 * contexts/meta/<sha256 of the name>/meta.json), else /var/run/docker.sock. With --podman:
 * CONTAINER_HOST, else the rootless socket under $XDG_RUNTIME_DIR, else /run/podman/podman.sock.
 */
export function daemonFromEnvironment(env: NodeJS.ProcessEnv, flags: {host?: string | undefined; podman?: boolean}): DaemonOptions {
  const home = env.HOME || os.homedir();
  // The TLS variables apply to a tcp:// --host as to DOCKER_HOST (the docker CLI's -H reads them too).
  if (flags.host) return {host: flags.host, chosenBy: '--host', ...(flags.host.startsWith('tcp://') && (env.DOCKER_TLS_VERIFY || env.DOCKER_TLS) ? {tls: dockerTls(env, home)} : {})};
  if (flags.podman) {
    if (env.CONTAINER_HOST) return {host: env.CONTAINER_HOST, chosenBy: 'CONTAINER_HOST'};
    const rootless = env.XDG_RUNTIME_DIR ? path.join(env.XDG_RUNTIME_DIR, 'podman', 'podman.sock') : undefined;
    const rootful = '/run/podman/podman.sock';
    if (rootless && (existsSync(rootless) || !existsSync(rootful))) return {host: `unix://${rootless}`, chosenBy: '--podman ($XDG_RUNTIME_DIR)'};
    return {host: `unix://${rootful}`, chosenBy: '--podman'};
  }
  if (env.DOCKER_HOST) {
    const tls = env.DOCKER_HOST.startsWith('tcp://') && (env.DOCKER_TLS_VERIFY || env.DOCKER_TLS) ? {tls: dockerTls(env, home)} : {};
    return {host: env.DOCKER_HOST, chosenBy: 'DOCKER_HOST', ...tls};
  }
  const configDir = env.DOCKER_CONFIG || path.join(home, '.docker');
  const config = readJson(path.join(configDir, 'config.json')) as {currentContext?: unknown} | undefined;
  const context = env.DOCKER_CONTEXT || (typeof config?.currentContext === 'string' ? config.currentContext : undefined);
  if (context && context !== 'default') {
    const hash = createHash('sha256').update(context).digest('hex');
    const meta = readJson(path.join(configDir, 'contexts', 'meta', hash, 'meta.json')) as {Endpoints?: {docker?: {Host?: unknown; SkipTLSVerify?: unknown}}} | undefined;
    const endpoint = meta?.Endpoints?.docker;
    if (typeof endpoint?.Host !== 'string') throw new UsageError(`docker context "${context}" (${env.DOCKER_CONTEXT ? 'DOCKER_CONTEXT' : `${configDir}/config.json`}) is not in ${configDir}/contexts or names no docker endpoint`);
    const tlsDir = path.join(configDir, 'contexts', 'tls', hash, 'docker');
    const tls = endpoint.Host.startsWith('tcp://') && existsSync(tlsDir) ? {tls: {...dockerTls(env, home, tlsDir), verify: endpoint.SkipTLSVerify !== true}} : {};
    return {host: endpoint.Host, chosenBy: `docker context ${context}`, ...tls};
  }
  return {host: DEFAULT_DAEMON_HOST, chosenBy: 'the default'};
}
