/**
 * Blob jobs (src/io/blobs/pool.ts, src/io/blobs/jobs.ts) as they run in the calling thread (under the
 * test runner the worker script does not exist, so BlobPool runs them inline; test/cli/convert-
 * workers.test.ts covers the worker threads). Expected digests come from node:crypto over the test's
 * own bytes; decompression is checked with the gzip and zstd command-line tools.
 */
import {execFileSync} from 'node:child_process';
import {createHash, randomBytes} from 'node:crypto';
import {existsSync, readFileSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {Readable} from 'node:stream';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {regionLayer, runCopy, transcodeLayer, type BlobJobResult} from '../../src/io/blobs/jobs.js';
import {BlobPool} from '../../src/io/blobs/pool.js';
import type {Digest} from '../../src/model/digest.js';
import type {Compression} from '../../src/model/media-types.js';
import type {Region} from '../../src/model/region.js';
import {DEFAULT_LIMITS} from '../../src/settings.js';
import {encodeHeader, END_OF_ARCHIVE, padding} from '../../src/tar/write.js';
import {peerMissing} from '../helpers/peers.js';
import {makeTmp, removeTmp} from '../ops/convert-fixtures.js';

interface TranscodeSpec {
  label: string;
  from: Compression;
  to: Compression;
  blob: {digest: Digest; size: number};
  diffId: Digest;
  target: string;
}

/** A transcode of a region (what a worker runs) or of a stream of the blob's bytes (the in-thread path). */
function runTranscode(source: {region: Region} | {open: () => Readable}, spec: TranscodeSpec): Promise<BlobJobResult> {
  const options = {to: spec.to, target: spec.target, limits: DEFAULT_LIMITS};
  if ('region' in source) return transcodeLayer(regionLayer(source.region, spec.blob, spec.diffId, spec.label), {...options, region: source.region});
  const layer = {descriptor: {mediaType: '', ...spec.blob}, diffId: spec.diffId, label: spec.label, compression: async () => spec.from, openCompressed: source.open};
  return transcodeLayer(layer, options);
}

const sha = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
const text = Buffer.from('ferry blob pool test line, compressible and repetitive 0123456789\n'.repeat(40_000));

describe('runCopy', () => {
  let dir: string;
  let source: string;
  let bytes: Buffer;
  beforeAll(() => {
    dir = makeTmp('ferry-pool-');
    source = path.join(dir, 'source');
    bytes = Buffer.concat([randomBytes(3 << 20), text]);
    writeFileSync(source, bytes);
  });
  afterAll(() => removeTmp(dir));

  it('copies a region into a new file and into an existing file at an offset, checking its digest', async () => {
    const region = {path: source, offset: 1000, size: 2_500_000, label: 'src:region'};
    const expected = bytes.subarray(1000, 2_501_000);
    const fresh = path.join(dir, 'fresh');
    expect(await runCopy({kind: 'copy', source: region, target: {path: fresh}, verify: {digest: sha(expected), size: expected.length, what: 'region'}})).toEqual({bytes: expected.length});
    expect(readFileSync(fresh).equals(expected)).toBe(true);
    const into = path.join(dir, 'into');
    writeFileSync(into, Buffer.alloc(10, 0x61));
    await runCopy({kind: 'copy', source: region, target: {path: into, offset: 10}});
    expect(readFileSync(into).equals(Buffer.concat([Buffer.alloc(10, 0x61), expected]))).toBe(true);
  });

  it('a digest mismatch names the blob and both digests', async () => {
    const claimed = sha(Buffer.from('something else'));
    const target = path.join(dir, 'bad');
    await expect(runCopy({kind: 'copy', source: {path: source, offset: 0, size: bytes.length, label: 'x'}, target: {path: target}, verify: {digest: claimed, size: bytes.length, what: 'img.tar:layer.tar: blob'}})).rejects.toThrow(
      `img.tar:layer.tar: blob: digest mismatch: expected ${claimed}, got ${sha(bytes)}`,
    );
  });

  it('a wrong size fails before anything is written; a region past the end of its file is truncated', async () => {
    const target = path.join(dir, 'size');
    await expect(runCopy({kind: 'copy', source: {path: source, offset: 0, size: 100, label: 'x'}, target: {path: target}, verify: {digest: sha(bytes.subarray(0, 100)), size: 99, what: 'blob'}})).rejects.toThrow('blob: size mismatch: expected 99 bytes, got 100');
    expect(existsSync(target)).toBe(false);
    await expect(runCopy({kind: 'copy', source: {path: source, offset: bytes.length - 10, size: 4096, label: 'cut.tar:blob'}, target: {path: path.join(dir, 'cut')}})).rejects.toThrow(/cut\.tar:blob: truncated: the file ends after 10 of 4096 bytes/);
  });

  it('runs of zeros (left as holes) read back as zeros, at the end of a new file too', async () => {
    const zeros = path.join(dir, 'zeros-source');
    const content = Buffer.concat([randomBytes(100_000), Buffer.alloc(3 << 20), randomBytes(5000), Buffer.alloc((2 << 20) + 123)]);
    writeFileSync(zeros, content);
    const target = path.join(dir, 'zeros-copy');
    await runCopy({kind: 'copy', source: {path: zeros, offset: 0, size: content.length, label: 'z'}, target: {path: target}, verify: {digest: sha(content), size: content.length, what: 'z'}});
    expect(readFileSync(target).equals(content)).toBe(true);
  });

  it('refuses to overwrite an existing file', async () => {
    await expect(runCopy({kind: 'copy', source: {path: source, offset: 0, size: 10, label: 'x'}, target: {path: source}})).rejects.toThrow(/already exists/);
  });
});

describe.skipIf(peerMissing('gzip', 'zstd'))('runTranscode', () => {
  let dir: string;
  let layer: string;
  let tar: Buffer;
  beforeAll(() => {
    dir = makeTmp('ferry-transcode-');
    // A layer tar (a transcode walks its entries in the same pass) whose files mix random and text
    // blocks, to exercise both the stored and the deflated paths of the gzip encoder.
    const files = [text, randomBytes(5 << 20), text.subarray(0, 777_777)];
    tar = Buffer.concat([
      ...files.flatMap((body, i) => [encodeHeader({name: `file-${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: body.length}), body, padding(body.length)]),
      END_OF_ARCHIVE,
    ]);
    layer = path.join(dir, 'layer.tar');
    writeFileSync(layer, tar);
  });
  afterAll(() => removeTmp(dir));

  const decompress = (tool: string, file: string): Buffer => execFileSync(tool, ['-dc', file], {maxBuffer: 1 << 28});

  for (const to of ['gzip', 'zstd'] as const) {
    it(`none → ${to}: the output decompresses to the layer, its digest is its sha256, and it does not depend on the source`, async () => {
      const out = path.join(dir, `out.${to}`);
      const spec = {label: 'layer', from: 'none' as const, to, blob: {digest: sha(tar), size: tar.length}, diffId: sha(tar), target: out};
      const result = await runTranscode({region: {path: layer, offset: 0, size: tar.length, label: 'layer'}}, spec);
      const written = readFileSync(out);
      expect(result).toEqual({bytes: written.length, digest: sha(written)});
      expect(decompress(to, out).equals(tar)).toBe(true);
      if (to === 'gzip') expect(execFileSync('gzip', ['-t', out]).length).toBe(0);
      // The same bytes from a stream of odd-sized chunks (the in-process path) give the same output.
      const again = path.join(dir, `again.${to}`);
      const pieces: Buffer[] = [];
      for (let i = 0; i < tar.length; i += 300_001) pieces.push(tar.subarray(i, i + 300_001));
      await runTranscode({open: () => Readable.from(pieces)}, {...spec, target: again});
      expect(readFileSync(again).equals(written)).toBe(true);
    });

    it(`${to} → none checks the diffID on the way`, async () => {
      const compressed = path.join(dir, `in.${to}`);
      execFileSync('sh', ['-c', `${to} -c < "$1" > "$2"`, 'sh', layer, compressed]);
      const blob = readFileSync(compressed);
      const out = path.join(dir, `plain-from-${to}`);
      const region = {path: compressed, offset: 0, size: blob.length, label: `layer.${to}`};
      expect(await runTranscode({region}, {label: 'layer', from: to, to: 'none', blob: {digest: sha(blob), size: blob.length}, diffId: sha(tar), target: out})).toEqual({bytes: tar.length, digest: sha(tar)});
      expect(readFileSync(out).equals(tar)).toBe(true);
      const wrong = sha(Buffer.from('another layer'));
      await expect(runTranscode({region}, {label: 'layer', from: to, to: 'none', blob: {digest: sha(blob), size: blob.length}, diffId: wrong, target: path.join(dir, `wrong-${to}`)})).rejects.toThrow(`layer: diffID: digest mismatch: expected ${wrong}, got ${sha(tar)}`);
    });
  }

  it('an uncompressed blob that does not hash to its digest fails naming both', async () => {
    const claimed = sha(Buffer.from('claimed'));
    await expect(
      runTranscode({region: {path: layer, offset: 0, size: tar.length, label: 'layer'}}, {label: 'img.tar:layer.tar', from: 'none', to: 'zstd', blob: {digest: claimed, size: tar.length}, diffId: claimed, target: path.join(dir, 'mismatch')}),
    ).rejects.toThrow(`img.tar:layer.tar: blob: digest mismatch: expected ${claimed}, got ${sha(tar)}`);
  });

  it('BlobPool runs jobs where it can (here: in this thread) with the same results', async () => {
    const pool = new BlobPool(2);
    try {
      const out = path.join(dir, 'pooled.gz');
      const result = await pool.run({kind: 'transcode', source: {path: layer, offset: 0, size: tar.length, label: 'layer'}, to: 'gzip', blob: {digest: sha(tar), size: tar.length}, diffId: sha(tar), target: out, limits: DEFAULT_LIMITS});
      expect(result.digest).toBe(sha(readFileSync(out)));
      expect(readFileSync(out).equals(readFileSync(path.join(dir, 'out.gzip')))).toBe(true);
    } finally {
      await pool.close();
    }
  });
});
