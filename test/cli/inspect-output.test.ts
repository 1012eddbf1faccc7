import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {inspectArchive} from '../../src/ops/inspect.js';
import {openArchive} from '../../src/transports/table.js';
import {FIXTURES, ferry} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';

/** `ferry inspect` prints what the library computes (test/ops/inspect.test.ts checks that against skopeo). */

interface JsonImage {
  names: string[];
  configDigest: string;
  manifestDigest: string | null;
  platform: {os: string; architecture: string; variant?: string};
  layers: Array<{digest: string; diffId: string; size: number; mediaType: string}>;
  config: {rootfs: {diff_ids: string[]}};
}
interface JsonResult {
  format: string;
  images: JsonImage[];
}

/** What `ferry inspect --json` prints, computed in-process (the CLI prints this object as is). */
async function inspectJson(source: string): Promise<JsonResult> {
  const archive = await openArchive(source);
  try {
    return JSON.parse(JSON.stringify(await inspectArchive(archive))) as JsonResult;
  } finally {
    await archive.close();
  }
}

/** The same through the real CLI (node bin/run.js): stdout is the JSON, stderr empty. */
function inspectCli(source: string, input?: Buffer): JsonResult {
  const r = ferry(['inspect', '--json', source], input ? {input} : {});
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as JsonResult;
}

/** The --json contract of issue 2: these keys, these types (more keys may be added). */
function expectJsonShape(result: JsonResult): void {
  expect(['docker-archive', 'oci-archive', 'oci', 'rootfs']).toContain(result.format);
  expect(Array.isArray(result.images)).toBe(true);
  for (const image of result.images) {
    expect(Array.isArray(image.names) && image.names.every((n) => typeof n === 'string')).toBe(true);
    expect(image.configDigest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(image.manifestDigest === null || /^sha256:[a-f0-9]{64}$/.test(image.manifestDigest)).toBe(true);
    expect(Object.keys(image.platform).sort()).toEqual(image.platform.variant === undefined ? ['architecture', 'os'] : ['architecture', 'os', 'variant']);
    expect(typeof image.platform.os).toBe('string');
    expect(typeof image.platform.architecture).toBe('string');
    for (const l of image.layers) {
      expect(l.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
      expect(l.diffId).toMatch(/^sha256:[a-f0-9]{64}$/);
      expect(Number.isSafeInteger(l.size) && l.size >= 0).toBe(true);
      expect(typeof l.mediaType).toBe('string');
    }
    expect(typeof image.config).toBe('object');
    expect(image.config.rootfs.diff_ids).toEqual(image.layers.map((l) => l.diffId));
  }
}

describe.skipIf(peerMissing('gzip'))('ferry inspect prints the library\'s result', () => {
  let plain: JsonResult;
  beforeAll(async () => {
    plain = await inspectJson(path.join(FIXTURES, 'edge.docker-save.tar'));
  });

  it('the CLI prints exactly that JSON, from a file and from a pipe', () => {
    const cli = inspectCli(path.join(FIXTURES, 'edge.docker-save.tar'));
    expectJsonShape(cli);
    expect(cli).toEqual(plain);
    expect(inspectCli('-', fs.readFileSync(path.join(FIXTURES, 'edge.docker-save.tar.gz')))).toEqual(plain);
  });

  it('the readable summary names the format, the image and its layers', () => {
    const r = ferry(['inspect', path.join(FIXTURES, 'edge-multi.docker-save.tar')]);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^format: docker-archive/);
    expect(r.stdout).toContain('ferry-fixture/edge:1, ferry-fixture/edge:latest');
    expect(r.stdout).toContain('ferry-fixture/edge-child:1');
    expect(r.stdout).toContain('fixtures.sh: layer1');
    expect(r.stdout).toContain('["/bin/cat"]');
  });

  it('--image selects by name in any spelling, and an unknown name is an error listing what exists', () => {
    const file = path.join(FIXTURES, 'edge-multi.docker-save.tar');
    const r = ferry(['inspect', '--json', '--image', 'docker.io/ferry-fixture/edge-child:1', file]);
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as JsonResult).images.map((i) => i.names)).toEqual([['ferry-fixture/edge-child:1']]);
    const missing = ferry(['inspect', '--image', 'nope:1', file]);
    expect(missing.status).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toMatch(/^ferry: .*no image matches "nope:1".*ferry-fixture\/edge-child:1/);
    expect(missing.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});

describe.skipIf(peerMissing('python3'))('a ~2 GiB layer (sparse, test/helpers/tarmake.py)', () => {
  let tmp: string;
  let archive: string;
  let facts: {layerSize: number};
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-huge-'));
    archive = path.join(tmp, 'huge.docker-archive.tar');
    facts = JSON.parse(execFileSync('python3', [fileURLToPath(new URL('../helpers/tarmake.py', import.meta.url)), 'docker-huge', archive], {encoding: 'utf8'})) as typeof facts;
  });
  afterAll(() => {
    fs.rmSync(tmp, {recursive: true, force: true});
  });

  it('the CLI answers the same for it', () => {
    const result = inspectCli(archive);
    expectJsonShape(result);
    expect(result.images[0]!.names).toEqual(['huge:1']);
    expect(result.images[0]!.layers[0]!.size).toBe(facts.layerSize);
  });
});
