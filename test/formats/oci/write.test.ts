/**
 * The OCI layout directory writer: files land under their layout names, blobs are checked against
 * their descriptors while they are copied, and a short or long stream fails the write.
 */
import {readdirSync, readFileSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {Readable} from 'node:stream';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {openCheckedBlob} from '../../../src/io/blobs/checked-read.js';
import {FileRange} from '../../../src/io/bytes/file-range.js';
import {writeMembersToDirectory} from '../../../src/io/fs/members.js';
import {RangeLayer} from '../../../src/io/layers/range-layer.js';
import {DEFAULT_LIMITS} from '../../../src/settings.js';
import {sha256Of, type Digest} from '../../../src/model/digest.js';
import {makeTmp, removeTmp} from '../../ops/convert-fixtures.js';

describe('writeMembersToDirectory', () => {
  let dir: string;
  beforeAll(() => {
    dir = makeTmp('ferry-ow-');
  });
  afterAll(() => removeTmp(dir));

  it('writes directories first, then files and streams concurrently, and counts the bytes', async () => {
    const out = path.join(dir, 'ok');
    const bytes = await writeMembersToDirectory(
      out,
      [
        {type: 'file', name: 'oci-layout', bytes: Buffer.from('{}')},
        {type: 'dir', name: 'blobs'},
        {type: 'dir', name: 'blobs/sha256'},
        ...[1, 2, 3].map((n) => ({type: 'stream' as const, name: `blobs/sha256/${n}`, size: n * 1000, open: () => Readable.from([Buffer.alloc(n * 1000, n)])})),
      ],
      {concurrency: 2},
    );
    expect(bytes).toBe(2 + 6000);
    expect(readdirSync(path.join(out, 'blobs', 'sha256')).sort()).toEqual(['1', '2', '3']);
    expect(readFileSync(path.join(out, 'blobs', 'sha256', '3'))).toEqual(Buffer.alloc(3000, 3));
  });

  it('fails when a stream is shorter or longer than announced', async () => {
    for (const [name, given] of [['short', 10], ['long', 30]] as const) {
      await expect(writeMembersToDirectory(path.join(dir, name), [{type: 'dir', name: 'b'}, {type: 'stream', name: 'b/x', size: 20, open: () => Readable.from([Buffer.alloc(given)])}])).rejects.toThrow(/size mismatch: expected 20 bytes/);
    }
  });

  it('a blob whose bytes do not match its descriptor fails naming it (verify while copying)', async () => {
    const file = path.join(dir, 'blob');
    writeFileSync(file, 'actual content');
    const claimed = sha256Of('other content') as Digest;
    const layer = new RangeLayer({mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: claimed, size: 14}, claimed, new FileRange(file, 0, 14, 'src.tar:blobs/sha256/x'), DEFAULT_LIMITS);
    await expect(writeMembersToDirectory(path.join(dir, 'bad'), [{type: 'dir', name: 'b'}, {type: 'stream', name: 'b/x', size: 14, open: () => openCheckedBlob(layer)}])).rejects.toThrow(`src.tar:blobs/sha256/x: blob: digest mismatch: expected ${claimed}, got ${sha256Of('actual content')}`);
  });
});
