/**
 * Multi-platform images through Debian's real registry (distribution 2.8.2). skopeo pushes the index
 * (`copy --all`): a buildx-style OCI index with an attestation per image, and a Docker manifest list.
 * ferry pulls it whole into every form and pushes it back under the same index digest; `--platform`
 * (once or twice) makes a new index, printed old → new on stderr, whose push the registry takes
 * (it answers 400 to an index naming manifests it lacks) and which skopeo reads back listing exactly
 * the platforms chosen. Expected digests come from skopeo, the registry or the bytes the builder wrote.
 */
import {existsSync, rmSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {peerMissing} from '../helpers/peers.js';
import {MT} from '../helpers/real-world.js';
import {startRegistry, type RunningRegistry} from '../helpers/registry.js';
import {buildMultiPlatformLayout, execOk, ferry, ferryOk, isolatedEnv, logSize, registryDigest, registryLog, skopeoInspect, skopeoRaw, tempDir, type MultiPlatformLayout, type SkopeoView} from './common.js';

const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const FORMS = [
  {form: 'docker-archive', dest: (base: string) => `${base}.tar`},
  {form: 'oci', dest: (base: string) => `oci:${base}.oci`},
  {form: 'oci-archive', dest: (base: string) => `oci-archive:${base}.oci.tar`},
] as const;

type Manifests = NonNullable<SkopeoView['parsed']['manifests']>;
const platformOf = (m: Manifests[number]): string => [m.platform?.os, m.platform?.architecture, m.platform?.variant].filter(Boolean).join('/');
/** The image platforms an index lists (attestations, unknown/unknown, left out). */
const imagePlatforms = (index: SkopeoView['parsed']): string[] => (index.manifests ?? []).filter((m) => m.platform?.os !== 'unknown').map(platformOf);

/** `manifest OLD → NEW` notes on stderr. */
function rewrites(stderr: string): Array<{from: string; to: string}> {
  return [...stderr.matchAll(/manifest (sha256:[0-9a-f]{64}) → (sha256:[0-9a-f]{64})/g)].map((m) => ({from: m[1]!, to: m[2]!}));
}

describe.skipIf(peerMissing('docker-registry', 'skopeo'))('multi-platform indexes through distribution 2.8.2 (judged by skopeo and the registry)', () => {
  let reg: RunningRegistry;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let buildx: MultiPlatformLayout;
  /** The index as skopeo reads it from the registry after skopeo pushed it. */
  let original: SkopeoView;
  let list: SkopeoView;
  let logStart: number;

  beforeAll(async () => {
    reg = await startRegistry();
    work = tempDir('ferry-reg-mp-');
    env = isolatedEnv(work);
    logStart = logSize(reg);
    buildx = buildMultiPlatformLayout(path.join(work, 'buildx'), {tag: '1'});
    await execOk('skopeo', ['copy', '-q', '--all', '--dest-tls-verify=false', `oci:${buildx.dir}:1`, `docker://${reg.host}/multi:1`]);
    original = await skopeoRaw(`${reg.host}/multi:1`);
    // skopeo writes a Docker manifest list (schema2 children) when asked for v2s2; the layout has no
    // attestations, which have no schema2 form.
    const plain = buildMultiPlatformLayout(path.join(work, 'plain'), {tag: '1', attestations: false, seed: 'docker-list'});
    await execOk('skopeo', ['copy', '-q', '--all', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${plain.dir}:1`, `docker://${reg.host}/list:1`]);
    list = await skopeoRaw(`${reg.host}/list:1`);
  });
  afterAll(async () => {
    await reg?.stop();
    if (work) rmSync(work, {recursive: true, force: true});
  });

  /** skopeo's and the registry's digest of REPO:TAG, which must agree (`inspect` picks an image of an index: `arch` says which). */
  async function judged(repo: string, tag: string, arch = 'amd64'): Promise<SkopeoView> {
    const view = await skopeoRaw(`${reg.host}/${repo}:${tag}`);
    expect((await skopeoInspect(`${reg.host}/${repo}:${tag}`, ['--override-arch', arch])).Digest).toBe(view.rawDigest);
    expect(await registryDigest(reg, repo, tag)).toBe(view.rawDigest);
    return view;
  }

  it('skopeo copy --all kept the layout\'s index; skopeo wrote a Docker manifest list when asked', () => {
    expect(original.rawDigest).toBe(buildx.indexDigest);
    expect(original.parsed.mediaType).toBe(MT.ociIndex);
    expect(imagePlatforms(original.parsed)).toEqual(['linux/amd64', 'linux/arm64', 'linux/arm/v7']);
    expect(list.parsed.mediaType).toBe(DOCKER_LIST);
    expect(list.parsed.manifests?.every((m) => m.mediaType === MT.dockerManifest)).toBe(true);
  });

  it.each([
    ['an OCI index with attestations', 'multi'],
    ['a Docker manifest list', 'list'],
  ])('%s: every platform pulled into each form, pushed back under the same index digest', async (_what, repo) => {
    const expected = repo === 'multi' ? original : list;
    for (const {form, dest} of FORMS) {
      const target = dest(path.join(work, `${repo}-all-${form}`));
      const pulled = await ferryOk(['pull', `${reg.host}/${repo}:1`, target], env);
      expect(pulled.stdout).toContain(`pulled ${reg.host}/${repo}:1 ${expected.rawDigest}`);
      expect(rewrites(pulled.stderr)).toEqual([]);
      await ferryOk(['push', target, `${reg.host}/${repo}-all-${form}:1`], env);
      const back = await judged(`${repo}-all-${form}`, '1');
      expect(back.rawDigest, form).toBe(expected.rawDigest);
      expect(back.raw.equals(expected.raw)).toBe(true);
    }
  });

  it('one --platform: the image and its attestation in a new index (old → new on stderr); the push lists exactly that platform', async () => {
    const dest = path.join(work, 'one.tar');
    const r = await ferryOk(['pull', '--platform', 'linux/amd64', `${reg.host}/multi:1`, dest], env);
    const [change] = rewrites(r.stderr);
    expect(change?.from).toBe(original.rawDigest);
    expect(change?.to).not.toBe(original.rawDigest);
    const pushed = await ferryOk(['push', dest, `${reg.host}/multi-one:1`], env);
    expect(pushed.stdout).toContain(change!.to);
    const view = await judged('multi-one', '1');
    // What ferry printed is what the registry serves.
    expect(view.rawDigest).toBe(change!.to);
    expect(view.parsed.mediaType).toBe(MT.ociIndex);
    expect(imagePlatforms(view.parsed)).toEqual(['linux/amd64']);
    // The children are the original index's own descriptors for amd64 and its attestation, unchanged.
    const amd64 = original.parsed.manifests!.find((m) => platformOf(m) === 'linux/amd64')!;
    const attestation = original.parsed.manifests!.find((m) => m.annotations?.['vnd.docker.reference.digest'] === amd64.digest)!;
    expect(view.parsed.manifests).toEqual([amd64, attestation]);
  });

  it('two --platform flags: a new index of those two (and their attestations), pushed whole; pull→push, push --platform and convert --platform agree', async () => {
    const dest = `oci:${path.join(work, 'two.oci')}`;
    const r = await ferryOk(['pull', '--platform', 'linux/arm64', '--platform', 'linux/arm/v7', `${reg.host}/multi:1`, dest], env);
    const [change] = rewrites(r.stderr);
    expect(change?.from).toBe(original.rawDigest);
    await ferryOk(['push', dest, `${reg.host}/multi-two:1`], env);
    const view = await judged('multi-two', '1', 'arm64');
    expect(view.rawDigest).toBe(change!.to);
    expect(imagePlatforms(view.parsed)).toEqual(['linux/arm64', 'linux/arm/v7']);
    const chosen = original.parsed.manifests!.filter((m) => ['linux/arm64', 'linux/arm/v7'].includes(platformOf(m)));
    for (const m of view.parsed.manifests!) expect([...chosen.map((c) => c.digest)]).toContain(m.platform?.os === 'unknown' ? m.annotations!['vnd.docker.reference.digest'] : m.digest);
    expect(view.parsed.manifests).toHaveLength(4);
    // Only what the index names went up: the platform left out is not in the repository.
    const amd64 = original.parsed.manifests!.find((m) => platformOf(m) === 'linux/amd64')!;
    expect(await registryDigest(reg, 'multi-two', amd64.digest)).toBeUndefined();
    expect(await registryDigest(reg, 'multi-two', chosen[0]!.digest)).toBe(chosen[0]!.digest);
    // Every child resolves in the target repository (skopeo fetches each platform's image).
    for (const arch of ['arm64', 'arm']) {
      const inspect = await skopeoInspect(`${reg.host}/multi-two:1`, ['--override-arch', arch, ...(arch === 'arm' ? ['--override-variant', 'v7'] : [])]);
      expect(inspect.Architecture).toBe(arch);
    }
    // The same selection made by push (from the pulled full layout) and by a registry-to-registry convert.
    const pushed = await ferryOk(['push', '--platform', 'linux/arm64', '--platform', 'linux/arm/v7', `oci:${buildx.dir}:1`, `${reg.host}/multi-two-push:1`], env);
    expect(rewrites(pushed.stderr).map((c) => c.to)).toEqual([view.rawDigest]);
    expect((await judged('multi-two-push', '1', 'arm64')).rawDigest).toBe(view.rawDigest);
    await ferryOk(['convert', '--platform', 'linux/arm64', '--platform', 'linux/arm/v7', `docker://${reg.host}/multi:1`, `docker://${reg.host}/multi-two-convert:1`], env);
    expect((await judged('multi-two-convert', '1', 'arm64')).rawDigest).toBe(view.rawDigest);
  });

  it('one --platform of an index without attestations: the image manifest itself, under the digest the index lists for it', async () => {
    const amd64 = list.parsed.manifests!.find((m) => platformOf(m) === 'linux/amd64')!;
    const dest = `oci-archive:${path.join(work, 'list-one.oci.tar')}`;
    const r = await ferryOk(['pull', '--platform', 'linux/amd64', `${reg.host}/list:1`, dest], env);
    expect(rewrites(r.stderr)).toEqual([]);
    await ferryOk(['push', dest, `${reg.host}/list-one:1`], env);
    const view = await judged('list-one', '1');
    expect(view.rawDigest).toBe(amd64.digest);
    expect(view.parsed.mediaType).toBe(MT.dockerManifest);
    // And two platforms of the Docker list: a new Docker manifest list (as crane and regclient keep the
    // type) listing exactly those two schema2 manifests.
    const two = path.join(work, 'list-two.tar');
    const r2 = await ferryOk(['pull', '--platform', 'linux/amd64', '--platform', 'linux/arm/v7', `${reg.host}/list:1`, two], env);
    const [change] = rewrites(r2.stderr);
    expect(change?.from).toBe(list.rawDigest);
    await ferryOk(['push', two, `${reg.host}/list-two:1`], env);
    const twoView = await judged('list-two', '1');
    expect(twoView.rawDigest).toBe(change!.to);
    expect(twoView.parsed.mediaType).toBe(DOCKER_LIST);
    expect(twoView.parsed.manifests?.map((m) => m.digest)).toEqual(list.parsed.manifests!.filter((m) => ['linux/amd64', 'linux/arm/v7'].includes(platformOf(m))).map((m) => m.digest));
  });

  it('a platform the index lacks is refused before anything is written', async () => {
    const dest = path.join(work, 'none.tar');
    const r = await ferry(['pull', '--platform', 'linux/s390x', `${reg.host}/multi:1`, dest], env);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/no image for platform linux\/s390x/);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(path.join(work, '.none.tar.ferry-pull'))).toBe(false);
  });

  it('the registry never answered 400 to anything ferry pushed (no index named a manifest the repository lacked)', async () => {
    const lines = await registryLog(reg, logStart, /"PUT \/v2\/\S+\/manifests\/\S+ HTTP\/1\.1" \d{3} /);
    expect(lines.length).toBeGreaterThan(10);
    expect(lines.filter((l) => !/" 201 /.test(l))).toEqual([]);
  });
});
