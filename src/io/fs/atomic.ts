import {randomBytes} from 'node:crypto';
import {createReadStream, createWriteStream} from 'node:fs';
import {link, lstat, mkdir, readdir, rename, rm, stat, unlink, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type {Writable} from 'node:stream';
import {FerryError, ioError} from '../../errors.js';
import {disposeTemp, makeTempDir, registerTemp, releaseTemp} from './temp.js';

export type OutputKind = 'file' | 'dir';

/**
 * An output written under a temp name beside its destination and renamed into place at the end, so
 * a reader never sees half an archive: on error, abort() or Ctrl-C (cleanup.ts) the temp is removed.
 */
export interface AtomicOutput {
  readonly destination: string;
  /** Where the writer writes: a hidden name in the destination's directory (same filesystem). */
  readonly tempPath: string;
  /** A scratch directory beside the destination for intermediate files, created on first use. */
  scratchDir(): Promise<string>;
  /** Renames the temp into place (replacing an old destination only if `force` was given). */
  commit(): Promise<void>;
  /** Removes the temp and scratch; safe to call twice. */
  abort(): Promise<void>;
}

export interface AtomicOptions {
  force?: boolean;
  /** Where a temp file goes when it cannot sit beside the destination (a device, a FIFO). */
  tempDir?: string;
}

/**
 * A small file ferry keeps (a state file, a push journal, credentials) replaced whole: written to
 * `FILE.ferry-PID.tmp` beside it, then renamed over it, so a reader sees the old bytes or the new,
 * never a part. A failure removes the temp file.
 */
export async function replaceSmallFile(file: string, bytes: string | Uint8Array, options: {mode?: number} = {}): Promise<void> {
  const temp = `${file}.ferry-${process.pid}.tmp`;
  try {
    await writeFile(temp, bytes, options.mode === undefined ? {} : {mode: options.mode});
    await rename(temp, file);
  } catch (e) {
    await rm(temp, {force: true});
    throw ioError(e, file);
  }
}

/**
 * A report the user named (`--report`, `--html`, `--junit`) written atomically: under a temp name
 * beside it, renamed into place at the end. Reports are regenerated on every run, so an existing
 * file is replaced (a file only, never a directory), and a device or FIFO is written into, never
 * replaced (beginAtomicOutput).
 */
export async function writeReportFile(destination: string, text: string): Promise<void> {
  const out = await beginAtomicOutput(destination, 'file', {force: true});
  try {
    await writeFile(out.tempPath, text, {mode: 0o644}).catch((e: unknown) => {
      throw ioError(e, destination);
    });
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
}

function tempName(destination: string, suffix: string): string {
  const dir = path.dirname(destination);
  const base = path.basename(destination);
  return path.join(dir, `.${base}.ferry-${process.pid}-${randomBytes(4).toString('hex')}.${suffix}`);
}

/**
 * Refuses a destination that exists (unless `force`) or whose directory is missing. With `force`,
 * a file only replaces a file, and a directory only replaces an empty directory or an OCI layout:
 * `--force` must never delete someone's unrelated directory.
 */
/** A destination that is written into, never replaced: a character or block device, a FIFO (`> /dev/null`). */
async function isStreamTarget(destination: string): Promise<boolean> {
  try {
    const target = await stat(destination);
    return target.isCharacterDevice() || target.isBlockDevice() || target.isFIFO();
  } catch {
    return false;
  }
}

export async function checkDestination(destination: string, kind: OutputKind, options: AtomicOptions = {}): Promise<void> {
  const parent = path.dirname(path.resolve(destination));
  const parentStat = await stat(parent).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new FerryError('NOT_FOUND', `${destination}: directory ${path.dirname(destination)} does not exist`);
    throw ioError(e, path.dirname(destination));
  });
  if (!parentStat.isDirectory()) throw new FerryError('IO', `${destination}: ${path.dirname(destination)} is not a directory`);
  let existing;
  try {
    existing = await lstat(destination);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError(e, destination);
  }
  if (existing.isSocket()) throw new FerryError('EXISTS', `${destination}: is a socket; refusing to write an archive there`);
  if (kind === 'file' && (await isStreamTarget(destination))) return; // written into, like `> /dev/null`: nothing is replaced
  if (!existing.isFile() && !existing.isDirectory() && !existing.isSymbolicLink() && !existing.isCharacterDevice() && !existing.isBlockDevice() && !existing.isFIFO()) {
    throw new FerryError('EXISTS', `${destination}: is a special file; refusing to write an archive there`);
  }
  if (!options.force) throw new FerryError('EXISTS', `${destination}: already exists (pass --force to replace it)`);
  if (kind === 'file' && existing.isDirectory()) throw new FerryError('EXISTS', `${destination}: is a directory; refusing to replace it with an archive file`);
  if (kind === 'dir') {
    if (!existing.isDirectory()) throw new FerryError('EXISTS', `${destination}: exists and is not a directory; refusing to replace it with an OCI layout`);
    const names = await readdir(destination).catch((e) => {
      throw ioError(e, destination);
    });
    if (names.length > 0 && !names.includes('oci-layout') && !names.includes('index.json')) {
      throw new FerryError('EXISTS', `${destination}: is a non-empty directory that is not an OCI layout; refusing to replace it`);
    }
  }
}

/**
 * An output for a destination that is a stream: the archive is finished in a temp file first (a
 * failure never leaves half an archive in a pipe), then copied into the stream on commit. The
 * destination itself is opened for writing, never renamed over or removed.
 */
export async function beginStreamedOutput(destination: string, tempDir: string, sink: () => Writable, options: {end: boolean}): Promise<AtomicOutput> {
  const dir = await makeTempDir(tempDir, 'ferry-out-');
  const tempPath = path.join(dir, 'archive');
  return {
    destination,
    tempPath,
    scratchDir: async () => dir,
    async commit(): Promise<void> {
      try {
        await copyInto(tempPath, sink(), destination, options.end);
      } finally {
        disposeTemp(dir);
      }
    },
    async abort(): Promise<void> {
      disposeTemp(dir);
    },
  };
}

/**
 * An output that is no file at all (a registry): only scratch space for intermediate files, in
 * `tempDir`, removed on commit and abort. The writer sends its result elsewhere.
 */
export function beginScratchOutput(destination: string, tempDir: string): AtomicOutput {
  let scratch: string | undefined;
  const cleanup = async (): Promise<void> => {
    if (scratch) disposeTemp(scratch);
    scratch = undefined;
  };
  return {
    destination,
    tempPath: destination,
    async scratchDir(): Promise<string> {
      scratch ??= await makeTempDir(tempDir, 'ferry-work-');
      return scratch;
    },
    commit: cleanup,
    abort: cleanup,
  };
}

/**
 * Where the blobs of a transfer into `destination` are kept until it is written: beside it, under a
 * hidden name that is the same on every run (not a temp: a killed run leaves it for the next one to
 * continue from). Removed once the destination is in place. None for a device or FIFO.
 */
export async function transferCacheBeside(destination: string): Promise<string | undefined> {
  if (await isStreamTarget(destination)) return undefined; // /dev/null has no place beside it for us
  return path.join(path.dirname(destination), `.${path.basename(destination)}.ferry-pull`);
}

/** Copies a finished file into a stream, ending it when `end` (a stream the caller keeps, like stdout, is left open). */
function copyInto(file: string, out: Writable, label: string, end: boolean): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const source = createReadStream(file, {highWaterMark: 1 << 20});
    const fail = (e: unknown): void => {
      source.destroy();
      out.off('error', fail);
      reject(ioError(e, label));
    };
    out.on('error', fail);
    source.on('error', (e) => fail(e));
    source.on('end', () => {
      out.off('error', fail);
      if (!end) return resolve();
      out.end(() => resolve());
    });
    source.pipe(out, {end: false});
  });
}

export async function beginAtomicOutput(destination: string, kind: OutputKind, options: AtomicOptions = {}): Promise<AtomicOutput> {
  await checkDestination(destination, kind, options);
  if (await isStreamTarget(destination)) {
    if (kind === 'dir') throw new FerryError('EXISTS', `${destination}: is a device or FIFO; an OCI layout is a directory`);
    // `> /dev/null` semantics: written into, with or without --force, never replaced.
    return beginStreamedOutput(destination, options.tempDir ?? os.tmpdir(), () => createWriteStream(destination, {flags: 'w'}), {end: true});
  }
  const tempPath = tempName(destination, kind === 'dir' ? 'tmpdir' : 'tmp');
  registerTemp(tempPath);
  if (kind === 'dir') {
    await mkdir(tempPath).catch((e) => {
      disposeTemp(tempPath);
      throw ioError(e, tempPath);
    });
  }
  let scratch: string | undefined;
  let done = false;
  const cleanup = (): void => {
    if (scratch) disposeTemp(scratch);
    scratch = undefined;
  };
  return {
    destination,
    tempPath,
    async scratchDir(): Promise<string> {
      if (scratch) return scratch;
      const dir = tempName(destination, 'work');
      registerTemp(dir);
      await mkdir(dir).catch((e) => {
        disposeTemp(dir);
        throw ioError(e, dir);
      });
      scratch = dir;
      return dir;
    },
    async commit(): Promise<void> {
      if (done) return;
      cleanup();
      // Re-check: the destination may have appeared while we were writing.
      await checkDestination(destination, kind, options);
      try {
        if (kind === 'dir' && (await exists(destination))) await replaceDirectory(tempPath, destination);
        else if (kind === 'file' && !options.force) await renameNoReplace(tempPath, destination);
        else await rename(tempPath, destination);
      } catch (e) {
        throw ioError(e, destination);
      }
      releaseTemp(tempPath);
      done = true;
    },
    async abort(): Promise<void> {
      cleanup();
      if (!done) disposeTemp(tempPath);
      done = true;
    },
  };
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Moves a file into place only if nothing is there: link(2) fails with EEXIST instead of replacing
 * (rename would silently clobber a file that appeared since the check). Filesystems without hard
 * links (FAT/exFAT USB disks) fall back to rename after the check above.
 */
async function renameNoReplace(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new FerryError('EXISTS', `${to}: already exists (pass --force to replace it)`);
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EXDEV' || code === 'EMLINK') {
      await rename(from, to);
      return;
    }
    throw e;
  }
  await unlink(from);
}

/** rename(2) cannot replace a non-empty directory: move the old one aside, move in, then delete it. */
async function replaceDirectory(from: string, to: string): Promise<void> {
  // The old copy is not registered for cleanup: if we are killed between the renames it survives
  // under its hidden name rather than being deleted with nothing in its place.
  const old = tempName(to, 'old');
  await rename(to, old);
  try {
    await rename(from, to);
  } catch (e) {
    await rename(old, to).catch(() => {});
    throw e;
  }
  disposeTemp(old);
}
