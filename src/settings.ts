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
  /** How registries are reached (docker:// sources and destinations). */
  registry: RegistryOptions;
  /** Which daemon docker-daemon: means (a Docker Engine API endpoint: dockerd or the podman service). */
  daemon: DaemonOptions;
  /** Where spooled input and scratch files go when they cannot sit beside the destination. */
  tempDir: string;
  /** Worker threads for hashing and compressing (0: everything on the calling thread). */
  workers: number;
}

/**
 * How ferry reaches registries: credentials, TLS, retries, concurrency. Passed in by the caller; the
 * CLI fills it from flags and the environment (commands/registry-flags.ts); the library reads none. Defaults: src/transports/docker/options.ts.
 */
export interface RegistryOptions {
  /** Docker's config directory ($DOCKER_CONFIG, else ~/.docker): config.json's auths, credsStore, credHelpers. */
  dockerConfigDir?: string;
  /** containers-auth.json files, first match wins ($REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json). */
  authFiles?: string[];
  /** Credentials given outright (`--creds USER:PASS`); they win over every file. */
  credentials?: {username: string; password: string};
  /** Verify TLS certificates (default true); `--tls-verify=false` turns it off. */
  tlsVerify?: boolean;
  /** certs.d roots searched for `HOST[:PORT]/ca.crt`, `*.cert` + `*.key` (default /etc/docker/certs.d, /etc/containers/certs.d). */
  certsDirs?: string[];
  /** `--cert-dir DIR`: ca.crt and client certificates for every registry of this run. */
  certDir?: string;
  /** Speak plain HTTP to every registry of this run (loopback registries are tried in plain HTTP anyway). */
  plainHttp?: boolean;
  /** Attempts after the first for a failed request (408, 429, 5xx, a dropped connection); default 5. */
  retries?: number;
  /** Blobs transferred at once; default 4. */
  jobs?: number;
  /** Upload blobs in PATCH chunks of this many bytes (0: monolithic unless the registry refuses). */
  chunkSize?: number;
  /** Where push journals its upload sessions so a rerun continues them (default: none, no journal). */
  stateDir?: string;
  /** The environment docker-credential-* helpers run with (PATH); default: inherited. */
  helperEnv?: NodeJS.ProcessEnv;
  /** First backoff delay in ms (doubled per attempt, with jitter); default 250. Tests lower it. */
  backoffMs?: number;
  /**
   * Where blobs were pushed or found this run, `HOST@DIGEST` → repository: a later push to another
   * repository of the same registry mounts them instead of uploading (the caller makes one per run).
   */
  knownBlobs?: Map<string, string>;
  /** Called with one line per retry (the CLI prints it as a note). */
  onRetry?: (message: string) => void;
}

/**
 * A Docker Engine API endpoint. The CLI picks it the way the docker CLI does (--host, DOCKER_HOST,
 * the current docker context, /var/run/docker.sock) or podman's (--podman, CONTAINER_HOST).
 */
export interface DaemonOptions {
  /** `unix:///path/to.sock`, `tcp://host:port` (or `ssh://` — not supported). */
  host: string;
  /** What chose the host, for errors ("DOCKER_HOST", "--host", "docker context prod", "the default"). */
  chosenBy?: string;
  /** tcp:// with TLS: files of the CA, client certificate and key (DOCKER_CERT_PATH), and whether to verify. */
  tls?: {ca?: string; cert?: string; key?: string; verify: boolean};
}

export const DEFAULT_DAEMON_HOST = 'unix:///var/run/docker.sock';

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
  registry?: RegistryOptions;
  daemon?: DaemonOptions;
}

/** Fills in defaults and checks every value (a bad one is a usage error naming it). */
export function resolveSettings(input: SettingsInput = {}): Settings {
  const limits = {...DEFAULT_LIMITS, ...input.limits};
  for (const [key, value] of Object.entries(limits)) {
    if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) throw new UsageError(`limit ${key} must be a positive number, got ${String(value)}`);
  }
  const workers = input.workers ?? os.availableParallelism();
  if (!Number.isInteger(workers) || workers < 0) throw new UsageError(`workers must be a whole number ≥ 0, got ${String(workers)}`);
  return {limits, tempDir: input.tempDir ?? os.tmpdir(), workers, registry: input.registry ?? {}, daemon: input.daemon ?? {host: DEFAULT_DAEMON_HOST}};
}
