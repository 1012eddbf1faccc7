/**
 * Digests survive every hop through Debian's real registry (distribution 2.8.2): each archive form ferry
 * reads is pushed, pulled back into each form ferry writes, and pushed again; the manifest (or index)
 * digest the registry serves never changes. The expected digest is always what skopeo and the registry
 * report (or the sha256 of bytes a peer or a builder wrote), never ferry's own output. Then: registry to
 * registry convert, every reading command on a docker:// source against the same command on the
 * archive that was pushed, and a run that has nothing left to move moves no blob bytes.
 */
import {copyFileSync, mkdirSync, readFileSync, rmSync, statSync, truncateSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FIXTURES} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';
import {dockerSaveWithAttestation, MT, type AttestedSave} from '../helpers/real-world.js';
import {startRegistry, type RunningRegistry} from '../helpers/registry.js';
import {execOk, ferry, ferryOk, isolatedEnv, logSize, registryDigest, registryLog, sha256, skopeoInspect, skopeoRaw, tempDir} from './common.js';
import type {TransferSummary} from '../../src/ops/write-archive.js';

const LEGACY = path.join(FIXTURES, 'edge.docker-save.tar');
const OCI_ARCHIVE = path.join(FIXTURES, 'edge.skopeo.oci-archive.tar');
const OCI_DIR = path.join(FIXTURES, 'edge.podman.oci');

/** The archive forms a pull writes: DEST as given to `ferry pull`, and how the same thing is named as a push SOURCE. */
const FORMS = [
  {form: 'docker-archive', dest: (base: string) => `${base}.tar`},
  {form: 'oci', dest: (base: string) => `oci:${base}.oci`},
  {form: 'oci-archive', dest: (base: string) => `oci-archive:${base}.oci.tar`},
] as const;


describe.skipIf(peerMissing('docker-registry', 'skopeo'))('digests survive every hop through distribution 2.8.2 (judged by skopeo and the registry)', () => {
  let reg: RunningRegistry;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let docker25: AttestedSave;

  beforeAll(async () => {
    reg = await startRegistry();
    work = tempDir('ferry-reg-rt-');
    env = isolatedEnv(work);
    // Docker 25+ `docker save` of a buildx image (index + attestation), built from the fixture's layers.
    docker25 = dockerSaveWithAttestation(path.join(work, 'docker25'), {base: LEGACY, tags: ['ferry-test/edge25:1']});
  });
  afterAll(async () => {
    await reg?.stop();
    if (work) rmSync(work, {recursive: true, force: true});
  });

  /** What skopeo and the registry say REPO:TAG is, which must agree; returns the digest. */
  async function judged(repo: string, tag: string): Promise<string> {
    const view = await skopeoRaw(`${reg.host}/${repo}:${tag}`);
    const inspect = await skopeoInspect(`${reg.host}/${repo}:${tag}`);
    expect(inspect.Digest).toBe(view.rawDigest);
    expect(await registryDigest(reg, repo, tag)).toBe(view.rawDigest);
    return view.rawDigest;
  }

  /** Pull REF into every form, push each back under its own repository: each push serves `digest`. */
  async function everyHop(name: string, digest: string): Promise<void> {
    // The three forms side by side (each ferry run is mostly node starting up).
    await Promise.all(
      FORMS.map(async ({form, dest}) => {
        const target = dest(path.join(work, `${name}-${form}`));
        const pulled = await ferryOk(['pull', `${reg.host}/${name}:1`, target], env);
        // `pulled REF DIGEST` names what the registry served.
        expect(pulled.stdout).toContain(`pulled ${reg.host}/${name}:1 ${digest}`);
        const pushed = await ferryOk(['push', target, `${reg.host}/${name}-from-${form}:1`], env);
        expect(pushed.stdout).toContain(`pushed ${reg.host}/${name}-from-${form}:1 ${digest}`);
        expect(await judged(`${name}-from-${form}`, '1'), `${name} via ${form}`).toBe(digest);
      }),
    );
  }

  it('a legacy docker-archive (docker 20.10 save): the manifest ferry makes for it on the first push is the one every later hop serves', async () => {
    await ferryOk(['push', LEGACY, `${reg.host}/legacy:1`], env);
    const digest = await judged('legacy', '1');
    // The image itself is the archive's: skopeo reads the same config and diffIDs from both.
    const archiveConfig = (await execOk('skopeo', ['inspect', '--config', '--raw', `docker-archive:${LEGACY}`])).stdoutBytes;
    const registryConfig = (await execOk('skopeo', ['inspect', '--config', '--raw', '--tls-verify=false', `docker://${reg.host}/legacy:1`])).stdoutBytes;
    expect(registryConfig.equals(archiveConfig)).toBe(true);
    expect((await skopeoRaw(`${reg.host}/legacy:1`)).parsed.config?.digest).toBe(sha256(archiveConfig));
    await everyHop('legacy', digest);
  });

  it('a Docker 25+ docker-archive (OCI layout inside, buildx index with an attestation): the index digest the archive names', async () => {
    await ferryOk(['push', docker25.tar, `${reg.host}/docker25:1`], env);
    const digest = await judged('docker25', '1');
    expect(digest).toBe(docker25.indexDigest);
    expect(sha256(readFileSync(path.join(docker25.dir, 'blobs', 'sha256', digest.slice(7))))).toBe(digest);
    const index = (await skopeoRaw(`${reg.host}/docker25:1`)).parsed;
    expect(index.manifests?.map((m) => m.digest)).toEqual([docker25.imageManifestDigest, docker25.attestationManifestDigest]);
    await everyHop('docker25', digest);
  });

  it.each([
    ['an oci-archive (skopeo)', 'ociarchive', `oci-archive:${OCI_ARCHIVE}`],
    ['an OCI layout directory (podman save --format oci-dir)', 'ocidir', `oci:${OCI_DIR}`],
  ])('%s: the manifest digest skopeo reads from the archive', async (_what, name, source) => {
    const expected = sha256((await execOk('skopeo', ['inspect', '--raw', source])).stdoutBytes);
    await ferryOk(['push', source, `${reg.host}/${name}:1`], env);
    expect(await judged(name, '1')).toBe(expected);
    await everyHop(name, expected);
  });

  it('a Docker schema2 manifest pushed by skopeo: kept byte for byte through every form', async () => {
    await execOk('skopeo', ['copy', '-q', '--dest-tls-verify=false', `docker-archive:${LEGACY}`, `docker://${reg.host}/schema2:1`]);
    const view = await skopeoRaw(`${reg.host}/schema2:1`);
    expect(view.parsed.mediaType).toBe(MT.dockerManifest);
    const digest = await judged('schema2', '1');
    await everyHop('schema2', digest);
    // Still schema2 at the far end, the same bytes.
    for (const {form} of FORMS) expect((await skopeoRaw(`${reg.host}/schema2-from-${form}:1`)).raw.equals(view.raw)).toBe(true);
  });

  it('--compress gzip asks for new digests: push, pull and convert write gzip layers, print old → new, and the registry serves what ferry printed', async () => {
    await ferryOk(['push', LEGACY, `${reg.host}/compress-src:1`], env);
    const source = await skopeoRaw(`${reg.host}/compress-src:1`);
    const archiveConfig = (await execOk('skopeo', ['inspect', '--config', '--raw', `docker-archive:${LEGACY}`])).stdoutBytes;
    const gzipped = async (repo: string): Promise<string> => {
      const view = await skopeoRaw(`${reg.host}/${repo}:1`);
      expect(view.parsed.layers?.map((l) => l.mediaType), repo).toEqual(source.parsed.layers?.map(() => MT.ociLayerGzip));
      // The image is the same one: same config bytes (so the same image ID and diffIDs).
      expect(view.parsed.config?.digest).toBe(sha256(archiveConfig));
      expect(view.rawDigest).not.toBe(source.rawDigest);
      return view.rawDigest;
    };
    const pushed = await ferryOk(['push', '--compress', 'gzip', LEGACY, `${reg.host}/compress-push:1`], env);
    const viaPush = await gzipped('compress-push');
    expect(pushed.stdout).toContain(`pushed ${reg.host}/compress-push:1 ${viaPush}`);

    const dest = path.join(work, 'compressed.tar');
    const pulled = await ferryOk(['pull', '--compress', 'gzip', `${reg.host}/compress-src:1`, dest], env);
    const change = /manifest (sha256:[0-9a-f]{64}) → (sha256:[0-9a-f]{64})/.exec(pulled.stderr);
    expect(change?.[1]).toBe(source.rawDigest);
    await ferryOk(['push', dest, `${reg.host}/compress-pulled:1`], env);
    expect(await gzipped('compress-pulled')).toBe(change?.[2]);

    const converted = await ferryOk(['convert', '--compress', 'gzip', `docker://${reg.host}/compress-src:1`, `docker://${reg.host}/compress-convert:1`], env);
    expect(converted.stderr).toContain(`manifest ${source.rawDigest} → ${await gzipped('compress-convert')}`);
    // The same gzip parameters every time: one new digest, whichever command made it.
    expect(new Set([viaPush, change?.[2], (await skopeoRaw(`${reg.host}/compress-convert:1`)).rawDigest]).size).toBe(1);
  });

  it('--chunk-size: blobs go up in PATCH chunks distribution 2.8 appends in order; the digests are skopeo\'s', async () => {
    const expected = sha256((await execOk('skopeo', ['inspect', '--raw', `oci:${OCI_DIR}`])).stdoutBytes);
    const from = logSize(reg);
    const r = JSON.parse((await ferryOk(['push', '--json', '--chunk-size', '64K', `oci:${OCI_DIR}`, `${reg.host}/chunked:1`], env)).stdout) as {transfer: TransferSummary};
    expect(await judged('chunked', '1')).toBe(expected);
    const manifest = (await skopeoRaw(`${reg.host}/chunked:1`)).parsed;
    const blobs = [manifest.config!, ...manifest.layers!];
    const chunks = blobs.reduce((n, b) => n + Math.ceil(b.size / 65536), 0);
    expect(await registryLog(reg, from, /"PATCH \/v2\/chunked\/blobs\/uploads\/\S+ HTTP\/1\.1" 202 /, chunks)).toHaveLength(chunks);
    expect(r.transfer.uploadedBytes).toBe(blobs.reduce((n, b) => n + b.size, 0));
  });

  it('ferry convert docker://A docker://B is digest-exact (schema2 manifest, and an index with an attestation)', async () => {
    // Sources of its own (this test runs alone too): skopeo's schema2 push, ferry's push of the Docker 25+ index.
    await execOk('skopeo', ['copy', '-q', '--dest-tls-verify=false', `docker-archive:${LEGACY}`, `docker://${reg.host}/conv-schema2:1`]);
    await ferryOk(['push', docker25.tar, `${reg.host}/conv-docker25:1`], env);
    for (const name of ['conv-schema2', 'conv-docker25']) {
      const expected = (await skopeoRaw(`${reg.host}/${name}:1`)).rawDigest;
      const from = logSize(reg);
      const r = await ferryOk(['convert', `docker://${reg.host}/${name}:1`, `docker://${reg.host}/${name}-converted:2`], env);
      expect(r.stdout).toContain(expected);
      expect(await judged(`${name}-converted`, '2')).toBe(expected);
      // Within one registry every blob is mounted from the source repository, none uploaded again.
      const mounts = await registryLog(reg, from, new RegExp(`"POST /v2/${name}-converted/blobs/uploads/\\?mount=sha256:[0-9a-f]{64}&from=${name} HTTP/1\\.1" 201 `), 1);
      expect(mounts.length).toBeGreaterThan(0);
      expect(await registryLog(reg, from, new RegExp(`"(PUT|PATCH) /v2/${name}-converted/blobs/uploads/`))).toEqual([]);
      // Every blob the manifests name is in the target repository: skopeo copies it all out (checking
      // each digest) into a dir: layout, which keeps the manifest bytes.
      const out = path.join(work, `${name}-converted.skopeo`);
      await execOk('skopeo', ['copy', '-q', '--all', '--src-tls-verify=false', `docker://${reg.host}/${name}-converted:2`, `dir:${out}`]);
      expect(sha256(readFileSync(path.join(out, 'manifest.json')))).toBe(expected);
    }
  });

  it('docker:// sources give the answers the pushed archive gives: inspect, verify, ls, cat, export, squash, manifest, config', async () => {
    const local = `oci-archive:${OCI_ARCHIVE}`;
    await ferryOk(['push', local, `${reg.host}/reads:1`], env);
    const remote = `docker://${reg.host}/reads:1`;
    const both = async (args: (src: string) => string[]): Promise<[Buffer, Buffer]> => {
      const [a, b] = await Promise.all([ferryOk(args(local), env), ferryOk(args(remote), env)]);
      return [a.stdoutBytes, b.stdoutBytes];
    };
    // inspect and verify: the same, but for the form and the name the image goes by.
    const documents = await Promise.all(['inspect', 'verify'].map(async (command) => [command, await both((src) => [command, '--json', src])] as const));
    for (const [command, [a, b]] of documents) {
      const la = JSON.parse(a.toString()) as {format: string; images?: number | Array<{names: string[]}>};
      const lb = JSON.parse(b.toString()) as {format: string; images?: number | Array<{names: string[]}>};
      expect([la.format, lb.format]).toEqual(['oci-archive', 'docker']);
      for (const [x, name] of [[la, 'ferry-fixture/edge:1'], [lb, `${reg.host}/reads:1`]] as const) {
        if (Array.isArray(x.images)) {
          expect(x.images.map((i) => i.names)).toEqual([[name]]);
          for (const i of x.images) i.names = [];
        }
        x.format = '';
      }
      expect(lb, command).toEqual(la);
    }
    // ls, cat, manifest, config: byte for byte; manifest and config are what skopeo reads.
    const printed = new Map<string, Buffer>();
    await Promise.all(
      [['ls'], ['ls', '--json'], ['cat'], ['manifest'], ['config']].map(async (args) => {
        const extra = args[0] === 'cat' ? ['/srv/keep.txt'] : [];
        const [a, b] = await both((src) => [...args, src, ...extra]);
        expect(a.length, args.join(' ')).toBeGreaterThan(0);
        expect(b.equals(a), args.join(' ')).toBe(true);
        printed.set(args.join(' '), b);
      }),
    );
    const [manifest, config] = [printed.get('manifest')!, printed.get('config')!];
    expect(manifest.equals((await skopeoRaw(`${reg.host}/reads:1`)).raw)).toBe(true);
    expect(config.equals((await execOk('skopeo', ['inspect', '--raw', '--config', `oci-archive:${OCI_ARCHIVE}`])).stdoutBytes)).toBe(true);
    // export and squash write files: the same bytes from either source.
    const files = (tag: string): [string, string] => [path.join(work, `${tag}-local.tar`), path.join(work, `${tag}-remote.tar`)];
    const [ea, eb] = files('export');
    const [sa, sb] = files('squash');
    const [, , , , diff] = await Promise.all([
      ferryOk(['export', local, ea], env),
      ferryOk(['export', remote, eb], env),
      ferryOk(['squash', local, `oci-archive:${sa}`, '--tag', 'ferry-test/squashed:1'], env),
      ferryOk(['squash', remote, `oci-archive:${sb}`, '--tag', 'ferry-test/squashed:1'], env),
      // And diff finds nothing between the archive and the registry's copy.
      ferry(['diff', local, remote], env),
    ]);
    expect(readFileSync(eb).equals(readFileSync(ea))).toBe(true);
    expect(readFileSync(sb).equals(readFileSync(sa))).toBe(true);
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.stdout).toMatch(/the same image \(same config digest\): nothing differs/);
  });

  it('a push of what the registry has uploads no blob byte (HEAD only); a pull rerun after a failure fetches no byte it already has', async () => {
    // Push twice: the second time the registry's log shows HEADs and no upload.
    await ferryOk(['push', `oci-archive:${OCI_ARCHIVE}`, `${reg.host}/idem:1`], env);
    const from = logSize(reg);
    const again = JSON.parse((await ferryOk(['push', '--json', `oci-archive:${OCI_ARCHIVE}`, `${reg.host}/idem:1`], env)).stdout) as {transfer: TransferSummary};
    const manifest = (await skopeoRaw(`${reg.host}/idem:1`)).parsed;
    const blobs = [manifest.config!.digest, ...manifest.layers!.map((l) => l.digest)];
    expect(again.transfer.uploadedBytes).toBe(0);
    expect(again.transfer.uploaded).toBe(0);
    expect(again.transfer.skipped).toBe(blobs.length);
    const heads = await registryLog(reg, from, /"HEAD \/v2\/idem\/blobs\/sha256:[0-9a-f]{64} HTTP\/1\.1" 200 /, blobs.length);
    expect(heads).toHaveLength(blobs.length);
    expect(await registryLog(reg, from, /"(POST|PATCH|PUT) \/v2\/idem\/blobs\//)).toEqual([]);
    // The same push to a new tag of a new repository mounts nothing it was not told about, but a
    // second push there is again HEAD only.
    await ferryOk(['push', `oci-archive:${OCI_ARCHIVE}`, `${reg.host}/idem-b:1`], env);
    const from2 = logSize(reg);
    const third = JSON.parse((await ferryOk(['push', '--json', `oci-archive:${OCI_ARCHIVE}`, `${reg.host}/idem-b:2`], env)).stdout) as {transfer: TransferSummary};
    expect(third.transfer.uploadedBytes).toBe(0);
    expect(await registryLog(reg, from2, /"(POST|PATCH|PUT) \/v2\/idem-b\/blobs\//)).toEqual([]);

    // A pull to a new DEST: the byte count is the layers' (skopeo's sizes), and the archive is the same bytes as the first pull's.
    const layerBytes = manifest.layers!.reduce((n, l) => n + l.size, 0);
    const first = path.join(work, 'idem-1.tar');
    const second = path.join(work, 'idem-2.tar');
    const t1 = JSON.parse((await ferryOk(['pull', '--json', `${reg.host}/idem:1`, first], env)).stdout) as {transfer: TransferSummary};
    const t2 = JSON.parse((await ferryOk(['pull', '--json', `${reg.host}/idem:1`, second], env)).stdout) as {transfer: TransferSummary};
    expect(t1.transfer.fetchedBytes + t1.transfer.reusedBytes).toBe(layerBytes);
    expect(t2.transfer.fetchedBytes + t2.transfer.reusedBytes).toBe(layerBytes);
    expect(readFileSync(second).equals(readFileSync(first))).toBe(true);

    // Whole blobs an interrupted run left beside DEST (here: skopeo's copies of the layers, put where
    // the cache keeps them) are hashed and used: the rerun fetches no layer, the registry serves no blob GET but the config.
    const skopeoDir = path.join(work, 'skopeo-dir');
    await execOk('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/idem:1`, `dir:${skopeoDir}`]);
    const dest = path.join(work, 'rerun.tar');
    const cache = path.join(work, '.rerun.tar.ferry-pull');
    mkdirSync(cache);
    for (const layer of manifest.layers!) copyFileSync(path.join(skopeoDir, layer.digest.slice(7)), path.join(cache, `sha256-${layer.digest.slice(7)}`));
    const from3 = logSize(reg);
    const rerun = JSON.parse((await ferryOk(['pull', '--json', `${reg.host}/idem:1`, dest], env)).stdout) as {transfer: TransferSummary};
    expect(rerun.transfer.fetchedBytes).toBe(0);
    expect(rerun.transfer.reusedBytes).toBe(layerBytes);
    expect(await registryLog(reg, from3, /"GET \/v2\/idem\/blobs\/sha256:[0-9a-f]{64} HTTP\/1\.1" 20[06] /, 1)).toHaveLength(1); // the config only
    expect(readFileSync(dest).equals(readFileSync(first))).toBe(true);
    expect(() => statSync(cache)).toThrow(); // the cache is gone once DEST is written

    // A refusal (the legacy layout keeps no manifest) comes before any blob is fetched.
    const refusedDest = path.join(work, 'refused.tar');
    const from4 = logSize(reg);
    const refused = await ferry(['pull', '--docker-layout', 'legacy', `${reg.host}/idem:1`, refusedDest], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/legacy docker-archive layout keeps no manifest/);
    expect(() => statSync(refusedDest)).toThrow();
    expect(() => statSync(path.join(work, '.refused.tar.ferry-pull'))).toThrow();
    expect(await registryLog(reg, from4, /"GET \/v2\/idem\/blobs\/sha256:[0-9a-f]{64} HTTP\/1\.1" 20[06] /, 1)).toHaveLength(1); // the config only

    // Half a blob left by a killed run is continued with Range: only the other half crosses the wire.
    const dest2 = path.join(work, 'resume.tar');
    const cache2 = path.join(work, '.resume.tar.ferry-pull');
    mkdirSync(cache2);
    const biggest = [...manifest.layers!].sort((a, b) => b.size - a.size)[0]!;
    const part = path.join(cache2, `sha256-${biggest.digest.slice(7)}.part`);
    const layerFile = path.join(work, 'biggest.blob');
    copyFileSync(path.join(skopeoDir, biggest.digest.slice(7)), layerFile);
    copyFileSync(layerFile, part);
    const half = Math.floor(biggest.size / 2);
    truncateSync(part, half);
    const resumed = JSON.parse((await ferryOk(['pull', '--json', `${reg.host}/idem:1`, dest2], env)).stdout) as {transfer: TransferSummary};
    expect(resumed.transfer.reusedBytes).toBe(half);
    expect(resumed.transfer.fetchedBytes).toBe(layerBytes - half);
    expect(readFileSync(dest2).equals(readFileSync(first))).toBe(true);
  });
});
