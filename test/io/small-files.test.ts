import {execFileSync, spawn} from 'node:child_process';
import {mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, describe, expect, it} from 'vitest';
import {replaceSmallFile, writeReportFile} from '../../src/io/fs/atomic.js';

/**
 * The two ways ferry writes a whole small file (src/io/fs/atomic.ts): reports the user names, and the
 * files ferry keeps for itself. Neither leaves a temp file; a report never replaces a device or FIFO.
 */
describe('writeReportFile and replaceSmallFile', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-small-files-'));
  afterAll(() => rmSync(dir, {recursive: true, force: true}));

  it('a report replaces an existing file whole and leaves nothing beside it', async () => {
    const file = path.join(dir, 'report.json');
    writeFileSync(file, 'old report, longer than the new one\n');
    await writeReportFile(file, '[]\n');
    expect(readFileSync(file, 'utf8')).toBe('[]\n');
    expect(readdirSync(dir)).toEqual(['report.json']);
  });

  it('a report to a FIFO is written into it, and the FIFO stays a FIFO', async () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = spawn('cat', [fifo], {stdio: ['ignore', 'pipe', 'ignore']});
    const chunks: Buffer[] = [];
    reader.stdout.on('data', (c: Buffer) => chunks.push(c));
    const closed = new Promise<void>((resolve) => reader.on('close', () => resolve()));
    await writeReportFile(fifo, '{"ok":true}\n');
    await closed;
    expect(Buffer.concat(chunks).toString('utf8')).toBe('{"ok":true}\n');
    expect(statSync(fifo).isFIFO()).toBe(true);
    rmSync(fifo);
  });

  it('a report onto a directory is refused, and the directory is left as it was', async () => {
    const taken = path.join(dir, 'taken');
    mkdirSync(taken);
    writeFileSync(path.join(taken, 'keep'), 'x');
    await expect(writeReportFile(taken, '[]\n')).rejects.toThrow(/taken/);
    expect(readdirSync(taken)).toEqual(['keep']);
  });

  it('a small file is replaced whole with the mode asked for; a failure leaves no temp file', async () => {
    const sub = path.join(dir, 'state');
    mkdirSync(sub);
    const file = path.join(sub, 'state.json');
    writeFileSync(file, '{"old":true}');
    await replaceSmallFile(file, '{"new":true}', {mode: 0o600});
    expect(readFileSync(file, 'utf8')).toBe('{"new":true}');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(sub)).toEqual(['state.json']);
    // Renaming over a directory fails: the error names the file and the temp file is gone.
    const blocked = path.join(sub, 'blocked');
    mkdirSync(blocked);
    writeFileSync(path.join(blocked, 'inside'), 'x');
    await expect(replaceSmallFile(blocked, 'x')).rejects.toThrow(/blocked/);
    expect(readdirSync(sub).sort()).toEqual(['blocked', 'state.json']);
  });
});
