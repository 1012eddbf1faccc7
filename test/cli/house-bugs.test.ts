/**
 * Regressions of issue 9's bugs, as a user meets them: usage errors that exited 1, invalid limits
 * that hung or were ignored, one manifest reported as several images, and an unnamed image written
 * to an OCI layout without a word.
 */
import {spawnSync} from 'node:child_process';
import {readFileSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry, FIXTURES, requireBuiltCli} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';
import {makeMultiPlatformLayout, makeTmp, removeTmp, sha256} from '../ops/convert-fixtures.js';

let dir: string;
beforeAll(() => {
  dir = makeTmp('ferry-house-');
});
afterAll(() => removeTmp(dir));

function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^ferry: /);
  return lines[0]!;
}

describe.skipIf(peerMissing('script'))('usage errors exit 2, whatever raised them', () => {
  it('`ferry inspect -` with a terminal on stdin', () => {
    // script(1) gives the command a pseudo-terminal; -e returns the command's own exit code.
    const r = spawnSync('script', ['-qec', `${process.execPath} ${requireBuiltCli()} inspect -`, '/dev/null'], {encoding: 'utf8', input: ''});
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(/ferry: refusing to read an archive from a terminal/);
  });
});

describe('limits from the environment are checked before any work', () => {
  for (const [name, value] of [
    ['FERRY_MAX_RATIO', 'abc'],
    ['FERRY_MAX_JSON', 'abc'],
    ['FERRY_RATIO_SLACK', '-1'],
    ['FERRY_MAX_DECOMPRESSED', '0'],
    ['FERRY_WORKERS', 'two'],
  ] as const) {
    it(`${name}=${value} is a usage error naming it (exit 2, one line), also where it was never reached before`, () => {
      const r = ferry(['inspect', path.join(FIXTURES, 'edge.docker-save.tar.gz')], {env: {[name]: value}, timeout: 30_000});
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(oneLine(r.stderr)).toContain(`${name}="${value}"`);
    });
  }

  it('FERRY_MAX_JSON is applied, not ignored: a limit below manifest.json refuses the archive', () => {
    const manifestSize = spawnSync('tar', ['-xOf', path.join(FIXTURES, 'edge.docker-save.tar'), 'manifest.json']).stdout.length;
    const r = ferry(['inspect', path.join(FIXTURES, 'edge.docker-save.tar')], {env: {FERRY_MAX_JSON: String(manifestSize - 1)}});
    expect(r.status).toBe(1);
    expect(oneLine(r.stderr)).toMatch(/manifest\.json: \d+ bytes exceeds the \d+-byte limit for metadata/);
  });
});

describe('one image per manifest, with every name, in every form', () => {
  let layout: string;
  let made: ReturnType<typeof makeMultiPlatformLayout>;
  beforeAll(() => {
    // An index (two platforms) named multi:1, and its amd64 manifest also listed on its own under two
    // names: three index.json descriptors, two distinct manifests (by construction).
    layout = path.join(dir, 'layout');
    made = makeMultiPlatformLayout(path.join(FIXTURES, 'edge.podman.oci'), layout, {absentArm64: false, name: 'docker.io/ferry-test/multi:1'});
    const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as {manifests: Array<Record<string, unknown>>};
    const amd = readFileSync(path.join(layout, 'blobs', 'sha256', made.amd64.slice(7)));
    expect(sha256(amd)).toBe(made.amd64);
    for (const name of ['docker.io/ferry-test/single:1', 'docker.io/ferry-test/single:latest']) {
      index.manifests.push({mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: made.amd64, size: amd.length, annotations: {'io.containerd.image.name': name}});
    }
    writeFileSync(path.join(layout, 'index.json'), JSON.stringify(index));
  });

  function images(source: string): Array<{manifestDigest: string | null; configDigest: string; names: string[]}> {
    const r = ferry(['inspect', '--json', source]);
    expect(r.status, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as {images: Array<{manifestDigest: string | null; configDigest: string; names: string[]}>}).images;
  }

  it('inspect lists each manifest once with the names of every descriptor that reaches it', () => {
    const found = images(`oci:${layout}`);
    expect(found.map((i) => i.manifestDigest)).toEqual([made.amd64, made.arm64]);
    expect(found[0]!.names.sort()).toEqual(['docker.io/ferry-test/multi:1', 'docker.io/ferry-test/single:1', 'docker.io/ferry-test/single:latest']);
    expect(found[1]!.names).toEqual(['docker.io/ferry-test/multi:1']);
  });

  it('inspect → convert → inspect shows the same images in every form', () => {
    const before = images(`oci:${layout}`).map((i) => i.configDigest);
    for (const dest of [`oci:${path.join(dir, 'o')}`, `oci-archive:${path.join(dir, 'o.tar')}`, `docker-archive:${path.join(dir, 'd.tar')}`]) {
      const r = ferry(['convert', `oci:${layout}`, dest]);
      expect(r.status, r.stderr).toBe(0);
      expect(images(dest).map((i) => i.configDigest), dest).toEqual(before);
    }
  });
});

describe('an image without a name written to an OCI layout', () => {
  it('is written without ref.name (the spec allows it), with a note saying so and naming --tag', () => {
    const out = path.join(dir, 'unnamed');
    const r = ferry(['convert', `rootfs:${path.join(FIXTURES, 'edge.docker-export.tar')}`, `oci:${out}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/ferry: an image without a name has no org\.opencontainers\.image\.ref\.name in oci: .*--tag NAME:TAG/);
    const index = JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8')) as {manifests: Array<{annotations?: Record<string, string>}>};
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]!.annotations).toBeUndefined();
    const named = ferry(['convert', `rootfs:${path.join(FIXTURES, 'edge.docker-export.tar')}`, `oci:${path.join(dir, 'named')}`, '--tag', 'flat:1']);
    expect(named.status).toBe(0);
    expect(named.stderr).not.toMatch(/without a name/);
  });
});
