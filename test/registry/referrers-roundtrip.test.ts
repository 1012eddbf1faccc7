/**
 * Signatures and referrers through distribution 2.8.2, which has no referrers API: only cosign's
 * `sha256-HEX.sig` tag and the referrers tag schema (an index tagged `sha256-HEX`) find them there.
 * An OCI layout as `oras copy -r` leaves it (an image, its Helm chart, an OCI 1.1 referrer, a cosign
 * signature; real-world.ts) is pushed; `ferry pull --referrers` brings the signature and the referrer
 * along into every form, and a push of what was pulled puts both back where cosign and the tag
 * schema look. The expected digests are the builder's (sha256 of the bytes it wrote) and skopeo's.
 */
import {rmSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FIXTURES} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';
import {layoutWithArtifacts, type ArtifactLayout} from '../helpers/real-world.js';
import {startRegistry, type RunningRegistry} from '../helpers/registry.js';
import {execOk, ferryOk, isolatedEnv, skopeoRaw, tempDir} from './common.js';

const FORMS = [
  {form: 'docker-archive', dest: (base: string) => `${base}.tar`},
  {form: 'oci', dest: (base: string) => `oci:${base}.oci`},
  {form: 'oci-archive', dest: (base: string) => `oci-archive:${base}.oci.tar`},
] as const;

describe.skipIf(peerMissing('docker-registry', 'skopeo'))('signatures and referrers without a referrers API (distribution 2.8.2, judged by skopeo)', () => {
  let reg: RunningRegistry;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let layout: ArtifactLayout;
  let sigTag: string;
  let referrersTag: string;

  beforeAll(async () => {
    reg = await startRegistry();
    work = tempDir('ferry-reg-refs-');
    env = isolatedEnv(work);
    layout = layoutWithArtifacts(work, {base: path.join(FIXTURES, 'edge.docker-save.tar')});
    sigTag = layout.refs.signature;
    referrersTag = layout.image.manifestDigest.replace(':', '-');
  });
  afterAll(async () => {
    await reg?.stop();
    if (work) rmSync(work, {recursive: true, force: true});
  });

  const tagsOf = async (repo: string): Promise<string[]> => (JSON.parse((await execOk('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/${repo}`])).stdout) as {Tags: string[]}).Tags.sort();

  /** The repository holds the image under `tag`, cosign's signature under its tag, and the referrer in the referrers tag. */
  async function expectSignedAndReferred(repo: string, tag: string): Promise<void> {
    expect(await tagsOf(repo), repo).toEqual(expect.arrayContaining([tag, sigTag, referrersTag]));
    expect((await skopeoRaw(`${reg.host}/${repo}:${tag}`)).rawDigest).toBe(layout.image.manifestDigest);
    expect((await skopeoRaw(`${reg.host}/${repo}:${sigTag}`)).rawDigest, `${repo}:${sigTag}`).toBe(layout.signature.manifestDigest);
    const referrers = (await skopeoRaw(`${reg.host}/${repo}:${referrersTag}`)).parsed;
    expect(referrers.manifests?.map((m) => m.digest)).toEqual([layout.referrer.manifestDigest]);
    expect((referrers.manifests?.[0] as {artifactType?: string} | undefined)?.artifactType).toBe(layout.referrer.artifactType);
    // The referrer itself resolves by digest in the repository.
    expect((await skopeoRaw(`${reg.host}/${repo}@${layout.referrer.manifestDigest}`)).rawDigest).toBe(layout.referrer.manifestDigest);
  }

  it('a push of the layout: the image, its chart under the chart version, cosign\'s .sig tag, and the referrers tag', async () => {
    await ferryOk(['push', `oci:${layout.dir}`, `${reg.host}/app:v1`], env);
    await expectSignedAndReferred('app', 'v1');
    expect(await tagsOf('app')).toEqual([layout.refs.chart, referrersTag, sigTag, 'v1'].sort());
    expect((await skopeoRaw(`${reg.host}/app:${layout.refs.chart}`)).rawDigest).toBe(layout.chart.manifestDigest);
  });

  it('pull --referrers into each form keeps the signature and the referrer; a push of the archive puts them back where cosign and the tag schema look', async () => {
    for (const {form, dest} of FORMS) {
      const target = dest(path.join(work, `pulled-${form}`));
      await ferryOk(['pull', '--referrers', `${reg.host}/app:v1`, target], env);
      await ferryOk(['push', target, `${reg.host}/from-${form}:v1`], env);
      await expectSignedAndReferred(`from-${form}`, 'v1');
    }
  });

  it('convert --referrers docker://A docker://B copies them too', async () => {
    await ferryOk(['convert', '--referrers', `docker://${reg.host}/app:v1`, `docker://${reg.host}/converted:v1`], env);
    await expectSignedAndReferred('converted', 'v1');
  });
});
