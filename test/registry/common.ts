/**
 * Shared by the test/registry/ files: running the built CLI and the peers without blocking the event
 * loop, what skopeo and the registry say about a reference (the expected values), and a small
 * multi-platform OCI layout whose digests are computed here from the bytes written (never by ferry).
 */
import {execAsync, type ExecOptions, type ExecResult} from '../helpers/exec.js';
import {createHash} from 'node:crypto';
import {mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {requireBuiltCli, ROOT} from '../helpers/cli.js';
import {BlobDir, goJson, goTar, gzipGo, MT, type Descriptor, type Digest, type Platform} from '../helpers/real-world.js';
import type {RunningRegistry} from '../helpers/registry.js';

export const sha256 = (data: Uint8Array | string): Digest => `sha256:${createHash('sha256').update(data).digest('hex')}`;

export type {ExecResult};

/** Runs a process with an async spawn (never blocks the loop), in the repository root unless `cwd` says otherwise. */
export async function exec(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return await execAsync(cmd, args, {cwd: ROOT, ...opts});
}

export async function execOk(cmd: string, args: string[], opts: {env?: NodeJS.ProcessEnv; input?: string | Buffer} = {}): Promise<ExecResult> {
  const r = await exec(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r;
}

/**
 * A private environment for ferry: no docker config, podman auth file or upload journal of the user
 * running the tests is read or written.
 */
export function isolatedEnv(root: string): NodeJS.ProcessEnv {
  const dirs = {DOCKER_CONFIG: path.join(root, 'docker-config'), FERRY_STATE_DIR: path.join(root, 'ferry-state')};
  for (const d of Object.values(dirs)) mkdirSync(d, {recursive: true});
  return {...process.env, ...dirs, REGISTRY_AUTH_FILE: path.join(root, 'auth.json'), FERRY_DEBUG: ''};
}

/** The built CLI, run asynchronously (`node bin/run.js ARGS`). */
export async function ferry(args: string[], env: NodeJS.ProcessEnv, opts: {input?: string | Buffer; cwd?: string} = {}): Promise<ExecResult> {
  return await exec(process.execPath, [requireBuiltCli(), ...args], {env, ...opts, timeoutMs: 180_000});
}

/** ferry, which must succeed: the result, else a thrown error carrying its stderr. */
export async function ferryOk(args: string[], env: NodeJS.ProcessEnv, opts: {input?: string | Buffer; cwd?: string} = {}): Promise<ExecResult> {
  const r = await ferry(args, env, opts);
  if (r.code !== 0) throw new Error(`ferry ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** What skopeo says a registry reference is: the manifest bytes (`inspect --raw`), their sha256, and `inspect`'s Digest. */
export interface SkopeoView {
  raw: Buffer;
  rawDigest: Digest;
  parsed: {mediaType?: string; manifests?: Array<{digest: string; mediaType: string; platform?: Platform; annotations?: Record<string, string>}>; config?: {digest: string; size: number}; layers?: Array<{digest: string; mediaType: string; size: number}>};
}

/** skopeo on a plain-HTTP loopback registry. */
export async function skopeoRaw(ref: string): Promise<SkopeoView> {
  const r = await execOk('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
  return {raw: r.stdoutBytes, rawDigest: sha256(r.stdoutBytes), parsed: JSON.parse(r.stdout) as SkopeoView['parsed']};
}

/** `skopeo inspect` (of the image for this host's platform when REF is an index): its Digest, config-derived fields. */
export async function skopeoInspect(ref: string, extra: string[] = []): Promise<{Digest: string; Layers: string[]; Architecture: string; Os: string; RepoTags: string[]}> {
  return JSON.parse((await execOk('skopeo', ['inspect', '--tls-verify=false', ...extra, `docker://${ref}`])).stdout) as {Digest: string; Layers: string[]; Architecture: string; Os: string; RepoTags: string[]};
}

/** The registry's own answer: the Docker-Content-Digest of a HEAD on the manifest (any media type accepted). */
export async function registryDigest(reg: RunningRegistry, repo: string, reference: string): Promise<string | undefined> {
  const accept = [MT.ociIndex, MT.ociManifest, MT.dockerManifest, 'application/vnd.docker.distribution.manifest.list.v2+json'].join(', ');
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${reference}`, {method: 'HEAD', headers: {Accept: accept}});
  return res.status === 200 ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
}

/** Lines the registry logged for requests matching `pattern` since byte `from` of its log (the access log is written after the response). */
export async function registryLog(reg: RunningRegistry, from: number, pattern: RegExp, atLeast = 0): Promise<string[]> {
  let lines: string[] = [];
  for (let i = 0; i < 20; i++) {
    lines = readFileSync(reg.logFile).subarray(from).toString('utf8').split('\n').filter((l) => pattern.test(l));
    if (lines.length >= atLeast) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return lines;
}

export function logSize(reg: RunningRegistry): number {
  return statSync(reg.logFile).size;
}

/** Every access-log line of a registry request answered with `status` (distribution's combined log format). */
export function statusPattern(method: string, status: number): RegExp {
  return new RegExp(`"${method} /v2/\\S+ HTTP/1\\.1" ${status} `);
}

/** Files under `dir/blobs/<alg>/` of an OCI layout (or anything shaped like one). */
export function blobFiles(dir: string): string[] {
  const root = path.join(dir, 'blobs');
  return readdirSync(root).flatMap((alg) => readdirSync(path.join(root, alg)).map((f) => `${alg}:${f}`));
}

export function indexJson(dir: string): {manifests: Array<{digest: string; mediaType: string; annotations?: Record<string, string>}>} {
  return JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as {manifests: Array<{digest: string; mediaType: string; annotations?: Record<string, string>}>};
}

// ---------------------------------------------------------------- a multi-platform OCI layout

export interface MultiPlatformLayout {
  dir: string;
  indexDigest: Digest;
  /** Image manifests by platform string (`linux/amd64`, `linux/arm64`, `linux/arm/v7`). */
  images: Record<string, Digest>;
  /** Attestation manifest digest by the platform of the image it describes (buildx lists one per image). */
  attestations: Record<string, Digest>;
  /** The index's platform list in order (images only). */
  platforms: string[];
}

const platformText = (p: Platform): string => [p.os, p.architecture, p.variant].filter(Boolean).join('/');

/**
 * An OCI image layout as `docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7
 * --provenance=true --output type=oci` shapes it: an index naming one image per platform, each
 * followed by its attestation manifest (platform unknown/unknown, vnd.docker.reference.* annotations,
 * an in-toto statement layer). The images share a base layer and each adds its own; digests are the
 * sha256 of the exact bytes written. Small, so a test pushes it in well under a second.
 */
export function buildMultiPlatformLayout(dir: string, opts: {tag?: string; platforms?: Platform[]; attestations?: boolean; seed?: string} = {}): MultiPlatformLayout {
  const store = new BlobDir(dir);
  const seed = opts.seed ?? 'ferry-registry-tests';
  const platforms = opts.platforms ?? [
    {architecture: 'amd64', os: 'linux'},
    {architecture: 'arm64', os: 'linux'},
    {architecture: 'arm', os: 'linux', variant: 'v7'},
  ];
  const baseTar = goTar([
    {name: 'etc/', type: 'dir'},
    {name: 'etc/os-release', data: Buffer.from(`NAME=ferry-test\nSEED=${seed}\n`)},
  ]);
  const base = store.put(gzipGo(baseTar), MT.ociLayerGzip);
  const manifests: Descriptor[] = [];
  const images: Record<string, Digest> = {};
  const attestations: Record<string, Digest> = {};
  for (const p of platforms) {
    const name = platformText(p);
    const ownTar = goTar([{name: 'etc/arch', data: Buffer.from(`${name}\n`)}]);
    const own = store.put(gzipGo(ownTar), MT.ociLayerGzip);
    const config = store.put(
      goJson({
        architecture: p.architecture,
        config: {Env: ['PATH=/bin'], Cmd: ['/bin/sh']},
        created: '2024-05-01T10:00:00Z',
        history: [{created: '2024-05-01T10:00:00Z', created_by: 'COPY base / # buildkit'}, {created: '2024-05-01T10:00:00Z', created_by: `COPY ${name} / # buildkit`}],
        os: p.os,
        rootfs: {type: 'layers', diff_ids: [sha256(baseTar), sha256(ownTar)]},
        ...(p.variant ? {variant: p.variant} : {}),
      }),
      MT.ociConfig,
    );
    const manifest = store.put(goJson({schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [base, own]}, '  '), MT.ociManifest);
    images[name] = manifest.digest;
    manifests.push({...manifest, platform: p});
    if (opts.attestations ?? true) {
      const statement = store.put(
        goJson({_type: 'https://in-toto.io/Statement/v0.1', predicateType: 'https://slsa.dev/provenance/v0.2', subject: [{name: `pkg:docker/ferry-test/multi@1?platform=${encodeURIComponent(name)}`, digest: {sha256: manifest.digest.slice(7)}}], predicate: {buildType: 'https://mobyproject.org/buildkit@v1'}}),
        MT.inToto,
        {annotations: {'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v0.2'}},
      );
      const attConfig = store.put(goJson({architecture: 'unknown', os: 'unknown', config: {}, rootfs: {type: 'layers', diff_ids: [statement.digest]}}), MT.ociConfig);
      const att = store.put(goJson({schemaVersion: 2, mediaType: MT.ociManifest, config: attConfig, layers: [statement]}, '  '), MT.ociManifest);
      attestations[name] = att.digest;
      manifests.push({...att, annotations: {'vnd.docker.reference.digest': manifest.digest, 'vnd.docker.reference.type': 'attestation-manifest'}, platform: {architecture: 'unknown', os: 'unknown'}});
    }
  }
  const index = store.put(goJson({schemaVersion: 2, mediaType: MT.ociIndex, manifests}, '  '), MT.ociIndex);
  writeFileSync(path.join(dir, 'oci-layout'), goJson({imageLayoutVersion: '1.0.0'}));
  writeFileSync(path.join(dir, 'index.json'), goJson({schemaVersion: 2, manifests: [{...index, annotations: {'org.opencontainers.image.ref.name': opts.tag ?? '1'}}]}));
  return {dir, indexDigest: index.digest, images, attestations, platforms: platforms.map(platformText)};
}
