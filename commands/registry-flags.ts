import {Flags} from '@oclif/core';
import {UsageError} from '../src/errors.js';
import {parseByteSize} from '../src/ops/format.js';
import type {RegistryOptions} from '../src/settings.js';
import {registryFromEnvironment} from './environment.js';

/**
 * How every command that may read or write `docker://` reaches the registry: skopeo's flag names
 * (`--tls-verify=false`, `--cert-dir`, `--creds`), crane's `--plain-http` (asked for, never guessed
 * except for loopback), and the transfer knobs. Grouped under REGISTRY in help.
 */
export const registryFlags = {
  'tls-verify': Flags.boolean({description: 'Verify registry TLS certificates (--tls-verify=false skips it).', allowNo: true, default: true, helpGroup: 'REGISTRY'}),
  'cert-dir': Flags.string({description: 'Directory with ca.crt and a client *.cert/*.key for the registry (else /etc/docker/certs.d/HOST, /etc/containers/certs.d/HOST).', helpGroup: 'REGISTRY'}),
  'plain-http': Flags.boolean({description: 'Speak plain HTTP to the registry (loopback registries fall back to it anyway).', default: false, helpGroup: 'REGISTRY'}),
  creds: Flags.string({description: 'USER:PASSWORD for the registry (else docker config.json, podman auth.json).', helpGroup: 'REGISTRY'}),
  jobs: Flags.integer({description: 'Blobs transferred at once.', default: 4, min: 1, max: 64, helpGroup: 'REGISTRY'}),
  retry: Flags.integer({description: 'Retries of a failed request (408, 429, 5xx, dropped connections), with backoff that honours Retry-After.', default: 5, min: 0, max: 100, helpGroup: 'REGISTRY'}),
};

/** What pull, push and convert add: the shape of the transfer. */
export const transferFlags = {
  'keep-going': Flags.boolean({description: 'Carry on past a reference that fails; exit 1 at the end naming each failure.', default: false}),
  report: Flags.string({description: 'Write a JSON report to FILE: [{ref, digest} or {ref, error}] per reference.'}),
  referrers: Flags.boolean({description: 'Also copy the signatures, SBOMs and attestations that refer to the images (referrers API, else cosign tags).', default: false}),
  'manifest-format': Flags.string({description: 'Rewrite manifests into this vocabulary (their digests change; old → new is printed). Default: keep them byte for byte.', options: ['oci', 'docker']}),
};

export const chunkSizeFlag = {
  'chunk-size': Flags.string({description: 'Upload blobs in PATCH chunks of SIZE (e.g. 64M), continuing after a crash (blobs over 256 MiB are chunked anyway).', helpGroup: 'REGISTRY'}),
};

export interface RegistryFlagValues {
  'tls-verify': boolean;
  'cert-dir'?: string | undefined;
  'plain-http': boolean;
  creds?: string | undefined;
  jobs: number;
  retry: number;
  'chunk-size'?: string | undefined;
}

/** The registry options of one run: the environment's files and directories, then the flags. */
export function registryOptions(flags: RegistryFlagValues, env: NodeJS.ProcessEnv, onRetry: (message: string) => void): RegistryOptions {
  // knownBlobs: one per run, shared by its reads and writes (a registry-to-registry copy mounts what it read).
  const options: RegistryOptions = {...registryFromEnvironment(env), tlsVerify: flags['tls-verify'], plainHttp: flags['plain-http'], jobs: flags.jobs, retries: flags.retry, onRetry, knownBlobs: new Map()};
  if (flags['cert-dir'] !== undefined) options.certDir = flags['cert-dir'];
  if (flags.creds !== undefined) {
    const colon = flags.creds.indexOf(':');
    // The value is never echoed: it holds a password.
    if (colon <= 0) throw new UsageError('--creds: expected USER:PASSWORD');
    options.credentials = {username: flags.creds.slice(0, colon), password: flags.creds.slice(colon + 1)};
  }
  if (flags['chunk-size'] !== undefined) {
    const size = parseByteSize(flags['chunk-size']);
    if (size === undefined || size < 1) throw new UsageError(`--chunk-size "${flags['chunk-size']}": expected a size such as 64M, 16MiB or 1048576`);
    options.chunkSize = size;
  }
  return options;
}
