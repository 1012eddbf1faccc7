/**
 * Referrers: signatures and OCI 1.1 artifacts that travel with an image. On docker-registry 2.8.2
 * (no referrers API) the test pushes, with its own distribution-API client, an image, a cosign-style
 * signature tagged `sha256-HEX.sig` and an OCI 1.1 artifact (`subject`, `artifactType`, empty config)
 * listed in the referrers tag index `sha256-HEX`, every digest computed here. `ferry pull --referrers`
 * brings both (and only with the flag); `ferry push` of that archive into another repository
 * recreates the `.sig` tag and the referrers tag index, judged by the registry's own bytes and by
 * skopeo. The fake registry, which has the referrers API, shows ferry prefers the API when present
 * and writes no referrers tag when the registry takes the subject itself (OCI-Subject).
 */
import {readFileSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {startFakeRegistry, type FakeRegistry} from '../helpers/fake-registry.js';
import {peerMissing} from '../helpers/peers.js';
import {startRegistry, type RunningRegistry} from '../helpers/registry.js';
import {buildCosignSignature, buildImage, buildReferrer, execOk, ferry, layoutDigests, makeSandbox, OCI_INDEX, OCI_MANIFEST, rawManifest, rawPush, sha256, writeLayout, type BuiltManifest, type Sandbox} from './auth-kit.js';

const SBOM = 'application/vnd.example.sbom.v1+json';

interface InspectJson {
  images: Array<{digest?: string; manifest?: {digest: string}}>;
  artifacts: Array<{digest: string; kind: string; artifactType: string; subject: string | null; names: string[]}>;
}

/** What the test pushed for one image: the image, its cosign signature, its OCI 1.1 referrer and the referrers tag index. */
interface Fixture {
  image: BuiltManifest;
  signature: ReturnType<typeof buildCosignSignature>;
  referrer: ReturnType<typeof buildReferrer>;
  /** `sha256-HEX` of the image manifest. */
  referrersTag: string;
  tagIndex: BuiltManifest;
}

function fixture(text: string, repository: string): Fixture {
  const image = buildImage(text, {layers: 2});
  const signature = buildCosignSignature(image, repository);
  const referrer = buildReferrer(image.descriptor, SBOM, `{"sbom": "of ${text}"}`);
  const index = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{...referrer.descriptor, artifactType: SBOM, annotations: referrer.annotations}]}));
  return {image, signature, referrer, referrersTag: image.digest.replace(':', '-'), tagIndex: {blobs: [], manifest: index, mediaType: OCI_INDEX, digest: sha256(index), descriptor: {mediaType: OCI_INDEX, digest: sha256(index), size: index.length}}};
}

async function inspectJson(sb: Sandbox, archive: string): Promise<InspectJson> {
  const r = await ferry(sb, ['inspect', '--json', archive]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as InspectJson;
}

describe.skipIf(peerMissing('docker-registry', 'skopeo'))('referrers on docker-registry 2.8.2 (tags only: no referrers API)', () => {
  let reg: RunningRegistry;
  let fx: Fixture;
  const sandboxes: Sandbox[] = [];
  const sandbox = (): Sandbox => {
    const s = makeSandbox('freg-refs-');
    sandboxes.push(s);
    return s;
  };

  beforeAll(async () => {
    reg = await startRegistry();
    fx = fixture('signed image', '127.0.0.1/src/app');
    const target = {url: reg.url};
    await rawPush(target, 'src/app', '1', fx.image);
    await rawPush(target, 'src/app', fx.signature.tag, fx.signature);
    await rawPush(target, 'src/app', fx.referrer.digest, fx.referrer);
    await rawPush(target, 'src/app', fx.referrersTag, fx.tagIndex);
    // The registry took each as sent.
    expect((await rawManifest(target, 'src/app', fx.signature.tag))?.digest).toBe(fx.signature.digest);
    expect((await rawManifest(target, 'src/app', fx.referrersTag))?.digest).toBe(fx.tagIndex.digest);
  });
  afterAll(async () => {
    await reg?.stop();
    for (const s of sandboxes) s.cleanup();
  });

  it('without --referrers only the image is pulled', async () => {
    const sb = sandbox();
    const dest = sb.file('plain');
    const pull = await ferry(sb, ['pull', `${reg.host}/src/app:1`, `oci:${dest}`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(layoutDigests(dest)).toEqual([fx.image.digest]);
    expect((await inspectJson(sb, `oci:${dest}`)).artifacts).toEqual([]);
  });

  it('--referrers brings the cosign signature (by its .sig tag) and the OCI 1.1 artifact (through the sha256-HEX tag index), bytes intact', async () => {
    const sb = sandbox();
    const dest = sb.file('with-referrers');
    const pull = await ferry(sb, ['pull', '--referrers', `${reg.host}/src/app:1`, `oci:${dest}`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(new Set(layoutDigests(dest))).toEqual(new Set([fx.image.digest, fx.signature.digest, fx.referrer.digest]));
    for (const built of [fx.image, fx.signature, fx.referrer]) {
      for (const blob of [built.manifest, ...built.blobs]) expect(readFileSync(path.join(dest, 'blobs', 'sha256', sha256(blob).slice(7))).equals(blob)).toBe(true);
    }
    const {artifacts} = await inspectJson(sb, `oci:${dest}`);
    expect(artifacts).toEqual(
      expect.arrayContaining([
        // A cosign signature names its subject only through its tag, which the archive keeps as its ref.name.
        expect.objectContaining({digest: fx.signature.digest, kind: 'signature', names: [fx.signature.tag]}),
        expect.objectContaining({digest: fx.referrer.digest, kind: 'artifact', artifactType: SBOM, subject: fx.image.digest}),
      ]),
    );
    expect(artifacts).toHaveLength(2);
    // The registry has no referrers API: ferry asked for it, then read the tag schema.
    const log = readFileSync(reg.logFile, 'utf8');
    expect(log).toContain(`/v2/src/app/referrers/${fx.image.digest}`);
    expect(log).toContain(`/v2/src/app/manifests/${fx.referrersTag}`);
  });

  it('push of the pulled archive into another repository recreates the .sig tag and the sha256-HEX referrers tag index; skopeo agrees', async () => {
    const sb = sandbox();
    const bundle = sb.file('bundle.tar');
    const pull = await ferry(sb, ['pull', '--referrers', `${reg.host}/src/app:1`, bundle]);
    expect(pull.code, pull.stderr).toBe(0);
    const inspected = await inspectJson(sb, bundle);
    expect(inspected.artifacts.map((a) => a.digest).sort()).toEqual([fx.signature.digest, fx.referrer.digest].sort());

    const push = await ferry(sb, ['push', bundle, `${reg.host}/dst/app:1`]);
    expect(push.code, push.stderr).toBe(0);
    const target = {url: reg.url};
    expect((await rawManifest(target, 'dst/app', '1'))?.bytes.equals(fx.image.manifest)).toBe(true);
    expect((await rawManifest(target, 'dst/app', fx.signature.tag))?.bytes.equals(fx.signature.manifest)).toBe(true);
    expect((await rawManifest(target, 'dst/app', fx.referrer.digest))?.bytes.equals(fx.referrer.manifest)).toBe(true);
    const tagIndex = await rawManifest(target, 'dst/app', fx.referrersTag);
    expect(tagIndex?.mediaType).toBe(OCI_INDEX);
    const listed = JSON.parse(tagIndex!.bytes.toString('utf8')) as {mediaType: string; manifests: Array<Record<string, unknown>>};
    expect(listed.mediaType).toBe(OCI_INDEX);
    expect(listed.manifests).toEqual([expect.objectContaining({mediaType: OCI_MANIFEST, digest: fx.referrer.digest, size: fx.referrer.manifest.length, artifactType: SBOM})]);

    // skopeo reads the same bytes under the same tags.
    const flags = ['--tls-verify=false'];
    expect(Buffer.from(await execOk('skopeo', ['inspect', '--raw', ...flags, `docker://${reg.host}/dst/app:${fx.signature.tag}`], {env: sb.env})).equals(fx.signature.manifest)).toBe(true);
    const skopeoIndex = JSON.parse(await execOk('skopeo', ['inspect', '--raw', ...flags, `docker://${reg.host}/dst/app:${fx.referrersTag}`], {env: sb.env})) as {manifests: Array<{digest: string}>};
    expect(skopeoIndex.manifests.map((m) => m.digest)).toEqual([fx.referrer.digest]);

    // And ferry, reading the new repository, finds the same two.
    const again = sb.file('again');
    const reread = await ferry(sb, ['pull', '--referrers', `${reg.host}/dst/app:1`, `oci:${again}`]);
    expect(reread.code, reread.stderr).toBe(0);
    expect(new Set(layoutDigests(again))).toEqual(new Set([fx.image.digest, fx.signature.digest, fx.referrer.digest]));
  });

  it('a second referrer pushed later is added to the referrers tag index, the first kept', async () => {
    const sb = sandbox();
    const second = buildReferrer(fx.image.descriptor, 'application/vnd.example.provenance.v1+json', '{"provenance": true}');
    // A layout holding the image and the second referrer, pushed onto dst/app (which already lists the first).
    const layout = sb.file('layout');
    writeLayout(layout, [
      {built: fx.image, name: '1'},
      {built: second, name: 'provenance'},
    ]);
    // Registry to registry: the source is read with its referrers and pushed straight on.
    const seed = await ferry(sb, ['push', '--referrers', `docker://${reg.host}/src/app:1`, `${reg.host}/dst2/app:1`]);
    expect(seed.code, seed.stderr).toBe(0);
    const push = await ferry(sb, ['push', `oci:${layout}`, `${reg.host}/dst2/app:1`]);
    expect(push.code, push.stderr).toBe(0);
    const tagIndex = await rawManifest({url: reg.url}, 'dst2/app', fx.referrersTag);
    const listed = JSON.parse(tagIndex!.bytes.toString('utf8')) as {manifests: Array<{digest: string}>};
    expect(listed.manifests.map((m) => m.digest)).toEqual([fx.referrer.digest, second.digest]);
    expect((await rawManifest({url: reg.url}, 'dst2/app', fx.signature.tag))?.bytes.equals(fx.signature.manifest)).toBe(true);
  });
});

describe('referrers on the fake registry (which has the referrers API)', () => {
  let fake: FakeRegistry;
  let fx: Fixture;
  const sandboxes: Sandbox[] = [];
  const sandbox = (): Sandbox => {
    const s = makeSandbox('freg-refs-');
    sandboxes.push(s);
    return s;
  };
  async function seed(repo: string, withTagIndex: boolean): Promise<void> {
    for (const built of [fx.image, fx.signature, fx.referrer]) for (const blob of built.blobs) await fake.putBlob(repo, blob);
    fake.putManifest(repo, '1', fx.image.manifest, OCI_MANIFEST);
    fake.putManifest(repo, fx.signature.tag, fx.signature.manifest, OCI_MANIFEST);
    fake.putManifest(repo, fx.referrer.digest, fx.referrer.manifest, OCI_MANIFEST);
    if (withTagIndex) fake.putManifest(repo, fx.referrersTag, fx.tagIndex.manifest, OCI_INDEX);
  }

  beforeAll(async () => {
    fake = await startFakeRegistry();
    fx = fixture('fake signed image', '127.0.0.1/app');
  });
  afterAll(async () => {
    await fake?.stop();
    for (const s of sandboxes) s.cleanup();
  });

  it('the referrers API is used when the registry has it: no referrers tag is read', async () => {
    await seed('api/app', false);
    const sb = sandbox();
    fake.clearLog();
    const dest = sb.file('pulled');
    const pull = await ferry(sb, ['pull', '--referrers', `${fake.host}/api/app:1`, `oci:${dest}`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(new Set(layoutDigests(dest))).toEqual(new Set([fx.image.digest, fx.signature.digest, fx.referrer.digest]));
    expect(fake.requests({method: 'GET', path: new RegExp(`^/v2/api/app/referrers/${fx.image.digest}$`)}).map((r) => r.status)).toEqual([200]);
    expect(fake.requests({path: new RegExp(`/manifests/${fx.referrersTag}$`)})).toEqual([]);
  });

  it('without the API (404, as 2.8) the referrers tag index is read instead', async () => {
    await seed('tags/app', true);
    fake.set({referrers: false});
    try {
      const sb = sandbox();
      fake.clearLog();
      const dest = sb.file('pulled');
      const pull = await ferry(sb, ['pull', '--referrers', `${fake.host}/tags/app:1`, `oci:${dest}`]);
      expect(pull.code, pull.stderr).toBe(0);
      expect(new Set(layoutDigests(dest))).toEqual(new Set([fx.image.digest, fx.signature.digest, fx.referrer.digest]));
      expect(fake.requests({method: 'GET', path: /\/referrers\//}).map((r) => r.status)).toEqual([404]);
      expect(fake.requests({method: 'GET', path: new RegExp(`/manifests/${fx.referrersTag}$`)}).map((r) => r.status)).toEqual([200]);
    } finally {
      fake.set({referrers: true});
    }
  });

  it('a push to a registry that answers OCI-Subject writes no referrers tag; without the API it writes one', async () => {
    const sb = sandbox();
    const bundle = sb.file('bundle.tar');
    await seed('from/app', false);
    const pull = await ferry(sb, ['pull', '--referrers', `${fake.host}/from/app:1`, bundle]);
    expect(pull.code, pull.stderr).toBe(0);

    const withApi = await ferry(sb, ['push', bundle, `${fake.host}/to-api/app:1`]);
    expect(withApi.code, withApi.stderr).toBe(0);
    expect(fake.tags('to-api/app').sort()).toEqual(['1', fx.signature.tag].sort());
    expect(fake.getManifest('to-api/app', fx.referrer.digest)?.body.equals(fx.referrer.manifest)).toBe(true);

    fake.set({referrers: false});
    try {
      const without = await ferry(sb, ['push', bundle, `${fake.host}/to-tags/app:1`]);
      expect(without.code, without.stderr).toBe(0);
      expect(fake.tags('to-tags/app').sort()).toEqual(['1', fx.referrersTag, fx.signature.tag].sort());
      const index = JSON.parse(fake.getManifest('to-tags/app', fx.referrersTag)!.body.toString('utf8')) as {manifests: Array<{digest: string; artifactType?: string}>};
      expect(index.manifests).toEqual([expect.objectContaining({digest: fx.referrer.digest, artifactType: SBOM})]);
    } finally {
      fake.set({referrers: true});
    }
  });
});
