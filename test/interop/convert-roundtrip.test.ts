/**
 * Issue 3, "Done when" 1: for every fixture and every pair of forms, A → B → A keeps the config
 * digest (image ID), the diffIDs and the names. Expected values are read from the source fixture with
 * tar/gzip/zstd and JSON parsing (and, for the rootfs tar, sha256 of the file), never with ferry; the
 * final archive is read the same way and also by skopeo.
 */
import {readFileSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {convertArchive} from '../../src/ops/convert.js';
import {peerMissing} from '../helpers/peers.js';
import {describeArchive, FIXTURES, makeTmp, removeTmp, sha256, skopeoConfigDigest, type ExpectedImage} from '../ops/convert-fixtures.js';

type Form = 'docker-archive' | 'docker-archive-legacy' | 'oci-archive' | 'oci';
const FORMS: Form[] = ['docker-archive', 'docker-archive-legacy', 'oci-archive', 'oci'];

const FIXTURE_FORMS: Record<string, 'docker-archive' | 'oci' | 'rootfs'> = {
  'edge.docker-save.tar': 'docker-archive',
  'edge.docker-save.tar.gz': 'docker-archive',
  'edge.docker-save.tar.zst': 'docker-archive',
  'edge.skopeo.docker-archive.tar': 'docker-archive',
  'edge.skopeo.oci-archive.tar': 'oci',
  'edge.podman.oci': 'oci',
  'edge-multi.docker-save.tar': 'docker-archive',
  'edge.docker-export.tar': 'rootfs',
};

function destination(form: Form, dir: string, name: string): {dest: string; path: string; read: 'docker-archive' | 'oci'} {
  const file = path.join(dir, name);
  switch (form) {
    case 'docker-archive':
      return {dest: `docker-archive:${file}.tar`, path: `${file}.tar`, read: 'docker-archive'};
    case 'docker-archive-legacy':
      return {dest: `docker-archive:${file}.legacy.tar`, path: `${file}.legacy.tar`, read: 'docker-archive'};
    case 'oci-archive':
      return {dest: `oci-archive:${file}.oci.tar`, path: `${file}.oci.tar`, read: 'oci'};
    case 'oci':
      return {dest: `oci:${file}.layout`, path: `${file}.layout`, read: 'oci'};
  }
}

async function convert(source: string, form: Form, dir: string, name: string): Promise<{path: string; read: 'docker-archive' | 'oci'}> {
  const d = destination(form, dir, name);
  await convertArchive(source, d.dest, form === 'docker-archive-legacy' ? {dockerLayout: 'legacy'} : {});
  return d;
}

/** skopeo references for each image of an output (by position for docker-archive, by name for OCI). */
function skopeoRefs(out: {path: string; read: 'docker-archive' | 'oci'}, images: ExpectedImage[], isDir: boolean): string[] {
  if (out.read === 'docker-archive') return images.map((_, i) => `docker-archive:${out.path}:@${i}`);
  const transport = isDir ? 'oci' : 'oci-archive';
  // ferry writes the full name in ref.name; skopeo matches it verbatim (README "Names in archives").
  return images.map((img) => (img.names.length > 0 ? `${transport}:${out.path}:${img.names[0]}` : `${transport}:${out.path}`));
}

describe.skipIf(peerMissing('skopeo', 'jq', 'gzip', 'zstd', 'python3'))('convert round trips keep config digest, diffIDs and names', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = makeTmp();
  });
  afterAll(() => removeTmp(tmp));

  for (const [fixture, form] of Object.entries(FIXTURE_FORMS)) {
    describe(fixture, () => {
      const source = path.join(FIXTURES, fixture);
      let expected: ExpectedImage[];
      beforeAll(async () => {
        if (form !== 'rootfs') {
          expected = describeArchive(source, form);
          return;
        }
        // A rootfs tar is one layer whose diffID is the file's sha256; its config is synthesized
        // once (read back from the first conversion by tar + JSON), then must survive every trip.
        const first = await convert(source, 'oci', tmp, `${fixture}-first`);
        expected = describeArchive(first.path, 'oci');
        expect(expected).toHaveLength(1);
        expect(expected[0]!.diffIds).toEqual([sha256(readFileSync(source))]);
      });

      it('has images to compare', () => {
        expect(expected.length).toBeGreaterThan(0);
        for (const image of expected) expect(image.diffIds.length).toBeGreaterThan(0);
      });

      for (const a of FORMS) {
        for (const b of FORMS) {
          if (a === b) continue;
          it(`${a} → ${b} → ${a}`, async () => {
            const dir = makeTmp(`ferry-rt-`);
            try {
              const first = await convert(source, a, dir, 'a');
              expect(describeArchive(first.path, first.read)).toEqual(expected);
              const middle = await convert(first.path.endsWith('.layout') ? `oci:${first.path}` : first.path, b, dir, 'b');
              expect(describeArchive(middle.path, middle.read)).toEqual(expected);
              const last = await convert(middle.path.endsWith('.layout') ? `oci:${middle.path}` : middle.path, a, dir, 'c');
              const got = describeArchive(last.path, last.read);
              expect(got).toEqual(expected);
              // skopeo reads the final archive and sees the same config bytes.
              const refs = skopeoRefs(last, got, a === 'oci');
              expect(refs.map((r) => skopeoConfigDigest(r)).sort()).toEqual(got.map((g) => g.configDigest).sort());
            } finally {
              removeTmp(dir);
            }
          });
        }
      }
    });
  }
});
