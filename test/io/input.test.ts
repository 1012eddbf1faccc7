import {existsSync, readdirSync, readFileSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {Readable} from 'node:stream';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FerryError} from '../../src/errors.js';
import {openInput} from '../../src/io/fs/input.js';
import {resolveSettings} from '../../src/settings.js';
import {FIXTURES} from '../helpers/cli.js';
import {makeTmp, removeTmp} from '../ops/convert-fixtures.js';

describe('a spool that fails settles, and leaves nothing behind', () => {
  let dir: string;
  let temp: string;
  beforeAll(() => {
    dir = makeTmp('ferry-input-');
    temp = path.join(dir, 'tmp');
    writeFileSync(path.join(dir, '.keep'), '');
  });
  afterAll(() => removeTmp(dir));

  it('a gzip file corrupted half-way rejects with one error naming it; its temp dir is gone', async () => {
    const gz = readFileSync(path.join(FIXTURES, 'edge.docker-save.tar.gz'));
    const broken = Buffer.from(gz);
    for (let i = Math.floor(gz.length / 2); i < Math.floor(gz.length / 2) + 64; i++) broken[i] = broken[i]! ^ 0xff;
    const file = path.join(dir, 'broken.tar.gz');
    writeFileSync(file, broken);
    const settings = resolveSettings({tempDir: dir});
    await expect(openInput(file, {settings})).rejects.toThrow(FerryError);
    await expect(openInput(file, {settings})).rejects.toThrow(/broken\.tar\.gz: corrupt gzip data/);
    expect(readdirSync(dir).filter((n) => n.startsWith('ferry-in-'))).toEqual([]);
    expect(existsSync(temp)).toBe(false);
  });

  it('a decompression bomb stops at the limit passed in (not one read from the environment)', async () => {
    const settings = resolveSettings({tempDir: dir, limits: {maxDecompressedBytes: 4096}});
    const stdin = Readable.from([readFileSync(path.join(FIXTURES, 'edge.docker-save.tar.gz'))]);
    await expect(openInput('-', {settings, stdin})).rejects.toThrow(/stdin: decompressed size exceeds the limit/);
    expect(readdirSync(dir).filter((n) => n.startsWith('ferry-in-'))).toEqual([]);
  });
});
