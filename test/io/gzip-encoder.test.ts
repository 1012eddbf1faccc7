import {spawnSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import zlib from 'node:zlib';
import {describe, expect, it} from 'vitest';
import {GzipBlockEncoder, type GzipOptions} from '../../src/io/compress/gzip.js';

/** The encoder fed `input` in chunks of `chunk` bytes; its output gathered (copied: it reuses views). */
async function gzipParallel(input: Buffer, options: GzipOptions = {}, chunk = 65536): Promise<Buffer> {
  const parts: Buffer[] = [];
  const encoder = new GzipBlockEncoder(options, (data) => {
    parts.push(Buffer.from(data));
  });
  for (let i = 0; i < input.length; i += chunk) await encoder.write(input.subarray(i, i + chunk));
  await encoder.end();
  return Buffer.concat(parts);
}

function gzipT(data: Buffer): number | null {
  return spawnSync('gzip', ['-t'], {input: data}).status;
}

const text = Buffer.from('the quick brown fox jumps over the lazy dog 0123456789\n'.repeat(60_000));

describe('GzipBlockEncoder', () => {
  it('produces one standard gzip member that gunzip and gzip -t accept', async () => {
    const input = Buffer.concat([text, randomBytes(3 << 20), Buffer.alloc(2 << 20), text.subarray(0, 12345)]);
    const out = await gzipParallel(input, {blockSize: 256 * 1024});
    expect(out.subarray(0, 3)).toEqual(Buffer.from([0x1f, 0x8b, 0x08]));
    expect(zlib.gunzipSync(out).equals(input)).toBe(true);
    expect(gzipT(out)).toBe(0);
    // one member: the trailer's ISIZE is the whole input
    expect(out.readUInt32LE(out.length - 4)).toBe(input.length % 2 ** 32);
    expect(out.readUInt32LE(out.length - 8)).toBe(zlib.crc32(input));
  });

  it('compresses text about as well as single-threaded zlib at the same level', async () => {
    const out = await gzipParallel(text, {blockSize: 128 * 1024});
    const reference = zlib.gzipSync(text, {level: 6});
    expect(out.length).toBeLessThan(reference.length * 1.1);
  });

  it('stores incompressible blocks instead of deflating them', async () => {
    const input = randomBytes(2 << 20);
    const out = await gzipParallel(input, {blockSize: 512 * 1024});
    expect(zlib.gunzipSync(out).equals(input)).toBe(true);
    // stored blocks add 5 bytes per 64 KiB plus framing; deflate of random data would also expand slightly
    expect(out.length).toBeLessThan(input.length + 1024);
  });

  it('is deterministic whatever the chunking of the input and the concurrency', async () => {
    const input = Buffer.concat([text, randomBytes(1 << 20), text]);
    const a = await gzipParallel(input, {blockSize: 200_000, concurrency: 1}, 7777);
    const b = await gzipParallel(input, {blockSize: 200_000, concurrency: 4}, 65536);
    expect(a.equals(b)).toBe(true);
  });

  it('long runs of zeros (whose blocks deflate once and repeat) decompress exactly', async () => {
    const input = Buffer.concat([text.subarray(0, 100_000), Buffer.alloc(6 * 65536 + 17), text.subarray(0, 5000), Buffer.alloc(4 * 65536)]);
    const out = await gzipParallel(input, {blockSize: 65536});
    expect(zlib.gunzipSync(out).equals(input)).toBe(true);
    expect(gzipT(out)).toBe(0);
  });

  it('handles empty input and inputs on block boundaries', async () => {
    for (const size of [0, 1, 65536, 65537, 131072]) {
      const input = text.subarray(0, size);
      const out = await gzipParallel(input, {blockSize: 65536});
      expect(zlib.gunzipSync(out).equals(input)).toBe(true);
      expect(gzipT(out)).toBe(0);
    }
  });
});
