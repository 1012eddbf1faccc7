import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {readFileSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry, FIXTURES, requireBuiltCli} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';
import {makeMultiPlatformLayout, makeTmp, removeTmp} from '../ops/convert-fixtures.js';

/**
 * `ferry manifest` and `ferry config` print the stored bytes: the same bytes `skopeo inspect --raw`
 * (and `--raw --config`) prints, hashing to the digests the archive's own index names.
 */
const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const skopeo = (...args: string[]): Buffer => execFileSync('skopeo', args, {maxBuffer: 1 << 26});
const tarMember = (archive: string, member: string): Buffer => execFileSync('tar', ['-xOf', archive, member], {maxBuffer: 1 << 26});

describe.skipIf(peerMissing('skopeo'))('ferry manifest / ferry config: the stored bytes', () => {
  let dir: string;
  beforeAll(() => {
    requireBuiltCli();
    dir = makeTmp('ferry-raw-');
  });
  afterAll(() => removeTmp(dir));

  it.each([
    ['oci:', `oci:${FIXTURES}/edge.podman.oci`, `oci:${FIXTURES}/edge.podman.oci`],
    ['oci-archive:', `${FIXTURES}/edge.skopeo.oci-archive.tar`, `oci-archive:${FIXTURES}/edge.skopeo.oci-archive.tar`],
  ])('%s manifest and config equal skopeo inspect --raw, and hash to their digests', (_form, source, skopeoRef) => {
    const manifest = ferry(['manifest', source]);
    expect(manifest.status, manifest.stderr).toBe(0);
    expect(manifest.stderr).toBe('');
    expect(manifest.stdoutBytes.equals(skopeo('inspect', '--raw', skopeoRef))).toBe(true);
    const index = JSON.parse(source.startsWith('oci:') ? readFileSync(path.join(source.slice(4), 'index.json'), 'utf8') : tarMember(source, 'index.json').toString('utf8')) as {manifests: Array<{digest: string}>};
    expect(sha256(manifest.stdoutBytes)).toBe(index.manifests[0]!.digest);

    const config = ferry(['config', source]);
    expect(config.status, config.stderr).toBe(0);
    expect(config.stdoutBytes.equals(skopeo('inspect', '--raw', '--config', skopeoRef))).toBe(true);
    const parsed = JSON.parse(manifest.stdout) as {config: {digest: string}};
    expect(sha256(config.stdoutBytes)).toBe(parsed.config.digest);
  });

  it('a legacy docker-archive: the config as stored; the manifest ferry writes for it (said on stderr), as skopeo reads it back from ferry convert', () => {
    const legacy = `${FIXTURES}/edge.docker-save.tar`;
    const item = (JSON.parse(tarMember(legacy, 'manifest.json').toString('utf8')) as Array<{Config: string}>)[0]!;
    const config = ferry(['config', legacy]);
    expect(config.status).toBe(0);
    expect(config.stdoutBytes.equals(tarMember(legacy, item.Config))).toBe(true);
    expect(sha256(config.stdoutBytes)).toBe(`sha256:${item.Config.replace(/\.json$/, '')}`);

    const manifest = ferry(['manifest', legacy]);
    expect(manifest.status).toBe(0);
    expect(manifest.stderr).toMatch(/^ferry: .*stores no manifest \(legacy docker save layout\); printed the one ferry writes for this image/);
    const layout = path.join(dir, 'converted');
    expect(ferry(['convert', legacy, `oci:${layout}`, '--quiet']).status).toBe(0);
    const ref = (JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as {manifests: Array<{annotations: Record<string, string>}>}).manifests[0]!.annotations['org.opencontainers.image.ref.name']!;
    expect(manifest.stdoutBytes.equals(skopeo('inspect', '--raw', `oci:${layout}:${ref}`))).toBe(true);
    // And --quiet drops the note, not the document.
    const quiet = ferry(['manifest', '-q', legacy]);
    expect(quiet.stderr).toBe('');
    expect(quiet.stdoutBytes.equals(manifest.stdoutBytes)).toBe(true);
  });

  it('an index prints as the index; --platform prints that platform\'s manifest and config', () => {
    const layout = path.join(dir, 'multi');
    const made = makeMultiPlatformLayout(`${FIXTURES}/edge.podman.oci`, layout, {absentArm64: false, name: 'docker.io/ferry-test/mp:1'});
    const blob = (digest: string): Buffer => readFileSync(path.join(layout, 'blobs', 'sha256', digest.slice(7)));
    const index = ferry(['manifest', `oci:${layout}`]);
    expect(index.status, index.stderr).toBe(0);
    expect(index.stdoutBytes.equals(skopeo('inspect', '--raw', `oci:${layout}`))).toBe(true);
    expect(sha256(index.stdoutBytes)).toBe(made.indexDigest);
    const arm = ferry(['manifest', `oci:${layout}`, '--platform', 'linux/arm64/v8']);
    expect(arm.status, arm.stderr).toBe(0);
    expect(sha256(arm.stdoutBytes)).toBe(made.arm64);
    expect(arm.stdoutBytes.equals(blob(made.arm64))).toBe(true);
    const armConfig = ferry(['config', `oci:${layout}`, '--platform', 'linux/arm64/v8']);
    expect(sha256(armConfig.stdoutBytes)).toBe(made.arm64Config);
    expect(armConfig.stdoutBytes.equals(skopeo('inspect', '--raw', '--config', '--override-arch', 'arm64', '--override-variant', 'v8', `oci:${layout}`))).toBe(true);
    const none = ferry(['manifest', `oci:${layout}`, '--platform', 'linux/s390x']);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/^ferry: .*no image for platform linux\/s390x \(present: linux\/amd64, linux\/arm64\/v8\)\n$/);
  });

  it('an archive holding several images needs --image; a missing one is named', () => {
    const multi = `${FIXTURES}/edge-multi.docker-save.tar`;
    const several = ferry(['config', multi]);
    expect(several.status).toBe(2);
    expect(several.stderr).toMatch(/holds 2 images.*choose one with --image/);
    const child = ferry(['config', multi, '--image', 'ferry-fixture/edge-child:1']);
    const item = (JSON.parse(tarMember(multi, 'manifest.json').toString('utf8')) as Array<{Config: string; RepoTags: string[]}>).find((m) => m.RepoTags.includes('ferry-fixture/edge-child:1'))!;
    expect(child.stdoutBytes.equals(tarMember(multi, item.Config))).toBe(true);
    expect(ferry(['manifest', multi, '--image', 'nope:1']).status).toBe(1);
  });
});
