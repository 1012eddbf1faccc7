import {spawn} from 'node:child_process';
import {mkdir, readFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {FerryError, ioError} from '../../errors.js';
import type {RegistryOptions} from './options.js';
import {replaceSmallFile} from '../../io/fs/atomic.js';

/**
 * Where registry credentials come from, the way docker, podman and crane users already keep them:
 * `--creds`, then docker's config.json (a per-host credHelper, `auths` with base64 `auth` or an
 * `identitytoken`, the `credsStore`), then containers-auth.json files. Nothing here ever prints a
 * secret: errors name the host and the file.
 */
export type Credential = {username: string; password: string} | {identityToken: string; username?: string};

interface DockerConfig {
  auths?: Record<string, {auth?: string; identitytoken?: string; username?: string; password?: string}>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

/** Docker keeps Docker Hub's credentials under its v1 index URL. */
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

function keysFor(registry: string): string[] {
  if (registry === 'docker.io' || registry === 'index.docker.io' || registry === 'registry-1.docker.io') return [DOCKER_HUB_KEY, 'docker.io', 'index.docker.io', 'registry-1.docker.io'];
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
}

export function dockerConfigPath(options: RegistryOptions): string {
  return path.join(options.dockerConfigDir ?? path.join(os.homedir(), '.docker'), 'config.json');
}

async function readJsonFile<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(e, file);
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new FerryError('BAD_JSON', `${file}: not JSON`);
  }
}

function decodeAuth(entry: NonNullable<DockerConfig['auths']>[string], file: string, key: string): Credential | undefined {
  if (entry.identitytoken) return {identityToken: entry.identitytoken, ...(entry.username ? {username: entry.username} : {})};
  if (entry.auth) {
    const plain = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon < 0) throw new FerryError('BAD_JSON', `${file}: the auth entry for ${key} is not base64 of user:password`);
    return {username: plain.slice(0, colon), password: plain.slice(colon + 1)};
  }
  if (entry.username && entry.password) return {username: entry.username, password: entry.password};
  return undefined;
}

/** Runs `docker-credential-NAME ACTION` with `input` on stdin; its stdout. */
function runHelper(name: string, action: string, input: string, options: RegistryOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${name}`, [action], {stdio: ['pipe', 'pipe', 'pipe'], ...(options.helperEnv ? {env: options.helperEnv} : {})});
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e: NodeJS.ErrnoException) => reject(new FerryError('UNSUPPORTED', e.code === 'ENOENT' ? `credential helper docker-credential-${name} is not installed (named in ${dockerConfigPath(options)})` : `docker-credential-${name}: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      // "credentials not found in native keychain" is the helpers' way of saying none: not an error.
      else if (/not found/i.test(out + err)) resolve('');
      else reject(new FerryError('IO', `docker-credential-${name} ${action} failed (exit ${code}): ${(err || out).trim().split('\n')[0] ?? ''}`));
    });
    child.stdin.end(input);
  });
}

async function fromHelper(name: string, registry: string, options: RegistryOptions): Promise<Credential | undefined> {
  for (const key of keysFor(registry)) {
    const out = await runHelper(name, 'get', key, options);
    if (out.trim() === '') continue;
    let parsed: {Username?: string; Secret?: string};
    try {
      parsed = JSON.parse(out) as typeof parsed;
    } catch {
      throw new FerryError('BAD_JSON', `docker-credential-${name} get answered something that is not JSON`);
    }
    if (!parsed.Secret) continue;
    // Helpers hand out an identity token with the user name "<token>".
    if (parsed.Username === '<token>') return {identityToken: parsed.Secret};
    return {username: parsed.Username ?? '', password: parsed.Secret};
  }
  return undefined;
}

/** The credential for a registry host, or undefined (anonymous). */
export async function findCredential(registry: string, options: RegistryOptions): Promise<Credential | undefined> {
  if (options.credentials) return options.credentials;
  const configFile = dockerConfigPath(options);
  const config = await readJsonFile<DockerConfig>(configFile);
  if (config) {
    const helper = keysFor(registry).map((k) => config.credHelpers?.[k]).find((h) => h !== undefined);
    if (helper) return fromHelper(helper, registry, options);
    for (const key of keysFor(registry)) {
      const entry = config.auths?.[key];
      if (!entry) continue;
      const credential = decodeAuth(entry, configFile, key);
      if (credential) return credential;
    }
    if (config.credsStore) {
      const stored = await fromHelper(config.credsStore, registry, options);
      if (stored) return stored;
    }
  }
  for (const file of options.authFiles ?? []) {
    const auth = await readJsonFile<DockerConfig>(file);
    for (const key of keysFor(registry)) {
      const entry = auth?.auths?.[key];
      if (!entry) continue;
      const credential = decodeAuth(entry, file, key);
      if (credential) return credential;
    }
  }
  return undefined;
}

/** Writes the file atomically (temp + rename), private to its owner, as docker does for config.json. */
async function writePrivateJson(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), {recursive: true, mode: 0o700});
  await replaceSmallFile(file, `${JSON.stringify(value, null, '\t')}\n`, {mode: 0o600});
}

/**
 * Stores a credential where `docker login` would: the host's credHelper, else the credsStore, else
 * `auths` in config.json (base64 user:password). Returns where it went (for the message).
 */
export async function storeCredential(registry: string, credential: {username: string; password: string}, options: RegistryOptions): Promise<string> {
  const file = dockerConfigPath(options);
  const config = (await readJsonFile<DockerConfig>(file)) ?? {};
  const key = keysFor(registry)[0]!;
  const helper = keysFor(registry).map((k) => config.credHelpers?.[k]).find((h) => h !== undefined) ?? config.credsStore;
  if (helper) {
    await runHelper(helper, 'store', JSON.stringify({ServerURL: key, Username: credential.username, Secret: credential.password}), options);
    return `docker-credential-${helper}`;
  }
  config.auths = {...config.auths, [key]: {auth: Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}};
  await writePrivateJson(file, config);
  return file;
}

/** Removes a host's credential from wherever docker would have stored it; false when there was none. */
export async function eraseCredential(registry: string, options: RegistryOptions): Promise<boolean> {
  const file = dockerConfigPath(options);
  const config = await readJsonFile<DockerConfig>(file);
  if (!config) return false;
  const keys = keysFor(registry);
  const helper = keys.map((k) => config.credHelpers?.[k]).find((h) => h !== undefined) ?? config.credsStore;
  let removed = false;
  if (helper) {
    for (const key of keys) if ((await runHelper(helper, 'get', key, options)).trim() !== '') {
      await runHelper(helper, 'erase', key, options);
      removed = true;
    }
  }
  const auths = {...config.auths};
  for (const key of keys) if (auths[key]) {
    delete auths[key];
    removed = true;
  }
  if (removed && config.auths) await writePrivateJson(file, {...config, auths});
  return removed;
}
