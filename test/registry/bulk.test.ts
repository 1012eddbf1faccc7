/**
 * Several images at once, against Debian's real registry (distribution 2.8.2): `ferry tags` against
 * `skopeo list-tags`; `ferry push --all` putting each image of a multi-image archive under its own
 * repository path below a prefix; `ferry pull REF... DEST` writing one archive that stores shared blobs
 * once; `--keep-going` and `--report` when one reference is missing, and the all-or-nothing default.
 * Expected values come from skopeo, the registry's catalog, or the archive's own manifest.json.
 */
import {existsSync, readdirSync, readFileSync, rmSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FIXTURES} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';
import {dockerSaveWithAttestation, readTar} from '../helpers/real-world.js';
import {startRegistry, type RunningRegistry} from '../helpers/registry.js';
import {blobFiles, execOk, ferry, ferryOk, indexJson, isolatedEnv, registryDigest, sha256, skopeoRaw, tempDir} from './common.js';

const MULTI = path.join(FIXTURES, 'edge-multi.docker-save.tar');
const LEGACY = path.join(FIXTURES, 'edge.docker-save.tar');

/** manifest.json of a legacy docker-archive, its config bytes read from the tar (links followed): the images it holds. */
function legacyImages(archive: string): Array<{tags: string[]; configDigest: string}> {
  const members = new Map(readTar(readFileSync(archive)).map((m) => [m.name, m]));
  const items = JSON.parse(members.get('manifest.json')!.data.toString('utf8')) as Array<{Config: string; RepoTags: string[]}>;
  return items.map((i) => ({tags: i.RepoTags, configDigest: sha256(members.get(i.Config)!.data)}));
}

/** Every digest a registry image names (manifest, config, layers), as skopeo reads it. */
async function blobsOf(ref: string): Promise<string[]> {
  const view = await skopeoRaw(ref);
  return [view.rawDigest, view.parsed.config!.digest, ...view.parsed.layers!.map((l) => l.digest)];
}

describe.skipIf(peerMissing('docker-registry', 'skopeo'))('tags and bulk transfers against distribution 2.8.2 (judged by skopeo and the registry)', () => {
  let reg: RunningRegistry;
  let work: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    reg = await startRegistry();
    work = tempDir('ferry-reg-bulk-');
    env = isolatedEnv(work);
    // What the pull tests read: the fixture's three names under src/ (the push --all test checks this form of push).
    await ferryOk(['push', MULTI, `${reg.host}/src`, '--all'], env);
  });
  afterAll(async () => {
    await reg?.stop();
    if (work) rmSync(work, {recursive: true, force: true});
  });

  it('ferry tags lists what skopeo list-tags lists; --json is exactly {repository, tags}', async () => {
    const tags = ['1', 'latest', 'v1.0.0-rc.1', 'a_b', 'Z9'];
    for (const tag of tags) await ferryOk(['push', LEGACY, `${reg.host}/ns/tagged:${tag}`], env);
    await execOk('skopeo', ['copy', '-q', '--dest-tls-verify=false', `docker-archive:${LEGACY}`, `docker://${reg.host}/ns/tagged:by-skopeo`]);
    const skopeo = JSON.parse((await execOk('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/ns/tagged`])).stdout) as {Repository: string; Tags: string[]};
    expect(skopeo.Tags.length).toBe(tags.length + 1);

    const plain = await ferryOk(['tags', `${reg.host}/ns/tagged`], env);
    expect(plain.stdout.split('\n').filter(Boolean).sort()).toEqual([...skopeo.Tags].sort());
    expect(plain.stdout.endsWith('\n')).toBe(true);

    for (const ref of [`${reg.host}/ns/tagged`, `docker://${reg.host}/ns/tagged`]) {
      const json = await ferryOk(['tags', '--json', ref], env);
      const parsed = JSON.parse(json.stdout) as Record<string, unknown>;
      expect(Object.keys(parsed)).toEqual(['repository', 'tags']);
      expect(parsed.repository).toBe(skopeo.Repository);
      expect([...(parsed.tags as string[])].sort()).toEqual([...skopeo.Tags].sort());
      expect(json.stderr).toBe('');
    }

    const missing = await ferry(['tags', `${reg.host}/ns/never-pushed`], env);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/NAME_UNKNOWN/);
  });

  it('push --all: each image of a multi-image archive under PREFIX/<its repository path>:<tag>, as the catalog and skopeo show', async () => {
    const report = path.join(work, 'push-report.json');
    const r = await ferryOk(['push', MULTI, `${reg.host}/mirror`, '--all', '--report', report], env);
    const catalog = (await (await fetch(`${reg.url}/v2/_catalog`)).json()) as {repositories: string[]};
    expect(catalog.repositories.filter((x) => x.startsWith('mirror/')).sort()).toEqual(['mirror/ferry-fixture/edge', 'mirror/ferry-fixture/edge-child']);
    const listTags = async (repo: string): Promise<string[]> => (JSON.parse((await execOk('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/${repo}`])).stdout) as {Tags: string[]}).Tags.sort();
    expect(await listTags('mirror/ferry-fixture/edge')).toEqual(['1', 'latest']);
    expect(await listTags('mirror/ferry-fixture/edge-child')).toEqual(['1']);
    // Each name carries its own image: the config skopeo reads is the one manifest.json names for that tag.
    const written: Array<{ref: string; digest: string}> = [];
    for (const image of legacyImages(MULTI)) {
      for (const tag of image.tags) {
        const [repo, version] = tag.split(':') as [string, string];
        const ref = `${reg.host}/mirror/${repo}:${version}`;
        const view = await skopeoRaw(ref);
        expect(view.parsed.config?.digest, tag).toBe(image.configDigest);
        expect(r.stdout).toContain(`pushed ${ref} ${view.rawDigest}`);
        written.push({ref, digest: view.rawDigest});
      }
    }
    expect(written).toHaveLength(3);
    // The report lists every reference with the digest the registry serves.
    const listed = JSON.parse(readFileSync(report, 'utf8')) as Array<{ref: string; digest?: string; error?: string}>;
    expect([...listed].sort((a, b) => a.ref.localeCompare(b.ref))).toEqual([...written].sort((a, b) => a.ref.localeCompare(b.ref)));
  });

  it('push --all of a Docker 25+ save with two tags: both tags serve the index digest the archive names', async () => {
    const saved = dockerSaveWithAttestation(path.join(work, 'd25'), {base: LEGACY, tags: ['team/app:1.0', 'team/app:stable']});
    await ferryOk(['push', saved.tar, `${reg.host}/d25`, '--all'], env);
    for (const tag of ['1.0', 'stable']) {
      expect((await skopeoRaw(`${reg.host}/d25/team/app:${tag}`)).rawDigest).toBe(saved.indexDigest);
      expect(await registryDigest(reg, 'd25/team/app', tag)).toBe(saved.indexDigest);
    }
  });

  it('pull REF REF REF DEST: one archive holding the images, every shared blob stored once', async () => {
    const refs = ['edge:1', 'edge-child:1', 'edge:latest'].map((r) => `${reg.host}/src/ferry-fixture/${r}`);
    const distinct = new Set((await Promise.all(refs.map(blobsOf))).flat());
    // edge:1 and edge:latest are one image; the child shares every layer of edge and adds one.
    const [edge, child] = [await blobsOf(refs[0]!), await blobsOf(refs[1]!)];
    expect(child.filter((d) => edge.includes(d)).length).toBeGreaterThanOrEqual(4);

    const dir = path.join(work, 'bulk.oci');
    const r = await ferryOk(['pull', ...refs, `oci:${dir}`], env);
    for (const ref of refs) expect(r.stdout).toContain(`pulled ${ref} ${(await skopeoRaw(ref)).rawDigest}`);
    const files = blobFiles(dir);
    expect(files).toHaveLength(distinct.size);
    expect(new Set(files)).toEqual(new Set([...distinct]));
    // index.json names each reference once, with the digest the registry serves for it.
    const index = indexJson(dir);
    for (const ref of refs) expect(index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref)?.digest).toBe((await skopeoRaw(ref)).rawDigest);

    // The same into a docker-archive (the default form): each blob is one tar member.
    const tar = path.join(work, 'bulk.tar');
    await ferryOk(['pull', ...refs, tar], env);
    const members = readTar(readFileSync(tar)).filter((m) => m.name.startsWith('blobs/sha256/') && m.type === '0').map((m) => `sha256:${m.name.slice('blobs/sha256/'.length)}`);
    expect(members.length).toBe(new Set(members).size);
    expect(new Set(members)).toEqual(distinct);
    // docker's manifest.json lists the images by their tags; skopeo reads each one back out.
    for (const name of ['ferry-fixture/edge:1', 'ferry-fixture/edge-child:1']) {
      const ref = `${reg.host}/src/${name}`;
      const config = (await execOk('skopeo', ['inspect', '--config', '--raw', `docker-archive:${tar}:${ref}`])).stdoutBytes;
      expect(sha256(config)).toBe((await skopeoRaw(ref)).parsed.config?.digest);
    }
  });

  it('--keep-going with a missing reference: the rest is written, exit 1, and --report says which failed', async () => {
    const good = `${reg.host}/src/ferry-fixture/edge-child:1`;
    const bad = `${reg.host}/src/ferry-fixture/edge:no-such-tag`;
    const dest = path.join(work, 'partial.tar');
    const report = path.join(work, 'pull-report.json');
    const r = await ferry(['pull', '--keep-going', '--report', report, good, bad, dest], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/MANIFEST_UNKNOWN/);
    // The archive holds the image that could be pulled, as skopeo reads it.
    const config = (await execOk('skopeo', ['inspect', '--config', '--raw', `docker-archive:${dest}`])).stdoutBytes;
    expect(sha256(config)).toBe((await skopeoRaw(good)).parsed.config?.digest);
    const listed = JSON.parse(readFileSync(report, 'utf8')) as Array<Record<string, string>>;
    expect(listed).toHaveLength(2);
    expect(listed[0]).toEqual({ref: good, digest: (await skopeoRaw(good)).rawDigest});
    expect(Object.keys(listed[1]!)).toEqual(['ref', 'error']);
    expect(listed[1]!.ref).toBe(bad);
    expect(listed[1]!.error).toMatch(/MANIFEST_UNKNOWN/);
    // No reference names the failure twice on one line.
    for (const line of r.stderr.split('\n')) expect(line.split(bad).length, line).toBeLessThanOrEqual(2);
  });

  it('without --keep-going a missing reference fails the pull: exit 1, one line on stderr, nothing at DEST or beside it', async () => {
    const dest = path.join(work, 'all-or-nothing.tar');
    const before = readdirSync(work).sort();
    const r = await ferry(['pull', `${reg.host}/src/ferry-fixture/edge:1`, `${reg.host}/src/nope:1`, dest], env);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^ferry: .*nope:1.*MANIFEST_UNKNOWN/);
    expect(existsSync(dest)).toBe(false);
    expect(readdirSync(work).sort()).toEqual(before);
    // The report, when asked for, still says what happened.
    const report = path.join(work, 'failed-report.json');
    const r2 = await ferry(['pull', '--report', report, `${reg.host}/src/ferry-fixture/edge:1`, `${reg.host}/src/nope:1`, dest], env);
    expect(r2.code).toBe(1);
    expect(existsSync(dest)).toBe(false);
    const listed = JSON.parse(readFileSync(report, 'utf8')) as Array<Record<string, string>>;
    expect(listed.map((i) => Object.keys(i))).toEqual([['ref', 'digest'], ['ref', 'error']]);
  });
});
