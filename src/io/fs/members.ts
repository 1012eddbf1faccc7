import {chmod, mkdir, open, rename, unlink, writeFile, type FileHandle} from 'node:fs/promises';
import path from 'node:path';
import {Readable} from 'node:stream';
import pLimit from 'p-limit';
import {FerryError, ioError, SizeMismatchError} from '../../errors.js';
import type {Digest} from '../../model/digest.js';
import type {Region} from '../../model/region.js';
import {encodeHeader, END_OF_ARCHIVE, padding} from '../../tar/write.js';
import {writeFull} from '../bytes/chunks.js';
import {FileRange} from '../bytes/file-range.js';
import {BlobCheck} from '../blobs/digest-check.js';
import {executeJob, type CopyJob, type OnBytes} from '../blobs/jobs.js';
import type {BlobPool} from '../blobs/pool.js';

/**
 * One member of an archive ferry writes (tar or directory). Stream and blob members name their size
 * up front (a tar header needs it) and are read only when their turn comes, so no blob is held in
 * memory. A `blob` is a byte range of a file, which lets its copy run on a worker thread and at a
 * known offset of the output; `verify` makes the copy check the bytes against their digest, and
 * `owned` marks a whole scratch file of ours whose digest was computed from these very bytes (it
 * needs no second hashing, and a directory writer may move it into place).
 */
export type Member =
  | {type: 'dir'; name: string}
  | {type: 'file'; name: string; bytes: Buffer}
  | {type: 'stream'; name: string; size: number; open(): Readable}
  | {type: 'blob'; name: string; size: number; source: Region; verify?: {digest: Digest; what: string}; owned?: boolean}
  | {type: 'symlink'; name: string; target: string};

type BodyMember = Extract<Member, {type: 'stream' | 'blob'}>;

/** How bodies are copied: concurrency and the worker pool come from the op (ops decide on concurrency). */
export interface MemberWriteOptions {
  signal?: AbortSignal;
  /** Bodies copied at once (default 1). */
  concurrency?: number;
  /** Worker threads for blob copies; without one they run in this thread. */
  pool?: BlobPool;
  /** Reports body bytes as they are written (progress). */
  onBytes?: OnBytes;
}

/** Fixed header fields: output depends only on names and contents (deterministic). */
const MODE = {dir: 0o755, file: 0o644, symlink: 0o777} as const;

/** Members in byte order of their names, as Docker's writer (a sorted directory walk) emits them. */
export function sortMembers(members: Member[]): Member[] {
  return [...members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function headerOf(member: Member): Buffer {
  const common = {uid: 0, gid: 0, mtime: 0};
  switch (member.type) {
    case 'dir':
      return encodeHeader({...common, name: member.name.endsWith('/') ? member.name : `${member.name}/`, type: 'dir', mode: MODE.dir, size: 0});
    case 'symlink':
      return encodeHeader({...common, name: member.name, type: 'symlink', mode: MODE.symlink, size: 0, linkname: member.target});
    case 'file':
      return encodeHeader({...common, name: member.name, type: 'file', mode: MODE.file, size: member.bytes.length});
    case 'stream':
    case 'blob':
      return encodeHeader({...common, name: member.name, type: 'file', mode: MODE.file, size: member.size});
  }
}

/** Positional writes gathered into runs of adjacent bytes, each run written with one writev. */
class RunWriter {
  #runs: Array<{position: number; buffers: Buffer[]; length: number}> = [];
  add(position: number, data: Buffer): void {
    if (data.length === 0) return;
    const last = this.#runs.at(-1);
    if (last && last.position + last.length === position) {
      last.buffers.push(data);
      last.length += data.length;
    } else this.#runs.push({position, buffers: [data], length: data.length});
  }
  async flush(handle: FileHandle, file: string): Promise<void> {
    for (const run of this.#runs.splice(0)) {
      let done = 0;
      let buffers = run.buffers;
      while (done < run.length) {
        const {bytesWritten} = await handle.writev(buffers, run.position + done).catch((e: unknown) => {
          throw ioError(e, file);
        });
        done += bytesWritten;
        if (done < run.length) buffers = [Buffer.concat(run.buffers).subarray(done)];
      }
    }
  }
}

/** Streams a member's body into `handle` at `offset`, holding it to its declared size. */
async function writeStreamAt(handle: FileHandle, file: string, member: Extract<Member, {type: 'stream'}>, offset: number, onBytes: OnBytes): Promise<number> {
  let got = 0;
  for await (const chunk of member.open() as AsyncIterable<Buffer>) {
    // The header promised `size` bytes: more would corrupt every member after this one.
    if (got + chunk.length > member.size) throw new SizeMismatchError(member.name, member.size, got + chunk.length);
    await writeFull(handle, chunk, offset + got).catch((e: unknown) => {
      throw ioError(e, file);
    });
    got += chunk.length;
    onBytes(chunk.length);
  }
  if (got !== member.size) throw new SizeMismatchError(member.name, member.size, got);
  return got;
}

/** Copies a blob member's range to `target` (a new file, or an existing one at `offset`). */
async function copyBlobMember(member: Extract<Member, {type: 'blob'}>, target: {path: string; offset?: number}, options: MemberWriteOptions): Promise<void> {
  if (!member.verify && member.source.size !== member.size) throw new SizeMismatchError(member.name, member.size, member.source.size);
  const job: CopyJob = {kind: 'copy', source: member.source, target, ...(member.verify ? {verify: {...member.verify, size: member.size}} : {})};
  // Copies that hash go to the workers; a plain copy is I/O the thread pool does anyway.
  await (options.pool && member.verify ? options.pool.run(job, options.onBytes) : executeJob(job, options.onBytes));
}

/** Runs body copies concurrently; the first failure ends the write and queued copies never start. */
async function copyBodies<T>(items: readonly T[], options: MemberWriteOptions, where: string, copy: (item: T) => Promise<void>): Promise<void> {
  const limit = pLimit(Math.max(1, options.concurrency ?? 1));
  await Promise.all(
    items.map((item) =>
      limit(async () => {
        if (options.signal?.aborted) throw new FerryError('INTERRUPTED', `${where}: writing aborted`);
        await copy(item);
      }),
    ),
  ).catch((e: unknown) => {
    limit.clearQueue();
    throw e;
  });
}

/**
 * Writes `members` (in the order given) as a tar file at `file`; returns its size. USTAR headers
 * with mtime 0, uid/gid 0, no user/group names, fixed modes (PAX only when a name needs it),
 * Go-style end (two zero blocks, no record padding). Every size is known up front, so the whole
 * layout is computed first: headers, small files and padding are written in a few large writes,
 * then the bodies are copied concurrently, each at its own offset.
 */
export async function writeTarFile(file: string, members: Member[], options: MemberWriteOptions = {}): Promise<number> {
  const handle = await open(file, 'wx', 0o644).catch((e: unknown) => {
    throw ioError(e, file);
  });
  const onBytes = options.onBytes ?? ((): void => {});
  try {
    const runs = new RunWriter();
    const bodies: Array<{member: BodyMember; offset: number}> = [];
    let position = 0;
    const put = (data: Buffer): void => {
      runs.add(position, data);
      position += data.length;
    };
    for (const member of members) {
      put(headerOf(member));
      if (member.type === 'file') put(member.bytes);
      if (member.type === 'stream' || member.type === 'blob') {
        bodies.push({member, offset: position});
        position += member.size;
      }
      if (member.type === 'file' || member.type === 'stream' || member.type === 'blob') put(padding(member.type === 'file' ? member.bytes.length : member.size));
    }
    put(END_OF_ARCHIVE);
    await runs.flush(handle, file);
    // A scratch file of ours is removed as soon as its last copy is in (the removal overlaps the
    // other copies instead of adding up at the end: unlinking 1.5 GB took 0.8 s on the main thread).
    const uses = new Map<string, number>();
    for (const {member} of bodies) if (member.type === 'blob' && member.owned) uses.set(member.source.path, (uses.get(member.source.path) ?? 0) + 1);
    await copyBodies(bodies, options, file, async ({member, offset}) => {
      if (member.type === 'stream') {
        await writeStreamAt(handle, file, member, offset, onBytes);
        return;
      }
      await copyBlobMember(member, {path: file, offset}, {...options, onBytes});
      const left = (uses.get(member.source.path) ?? 0) - 1;
      uses.set(member.source.path, left);
      if (member.owned && left === 0) await unlink(member.source.path).catch(() => {}); // the scratch dir goes at the end anyway
    });
    return position;
  } finally {
    await handle.close().catch(() => {});
  }
}

/** A body member's size in bytes (0 for a directory or symlink). */
export function memberSize(member: Member): number {
  return member.type === 'file' ? member.bytes.length : member.type === 'blob' || member.type === 'stream' ? member.size : 0;
}

/**
 * A member's bytes from `start` to `end` (exclusive), streamed: by offset for a byte range of a file,
 * by skipping for a stream (an upload chunk, a `Range` request). Unchecked: the receiver checks digests.
 */
export function memberBytes(member: Member, start: number, end: number): Readable {
  if (member.type === 'file') return Readable.from([member.bytes.subarray(start, end)]);
  if (member.type === 'blob') return FileRange.of(member.source).stream(start, end);
  if (member.type !== 'stream') throw new FerryError('UNSUPPORTED', `${member.name}: not a blob`);
  const source = member.open();
  return Readable.from(
    (async function* () {
      let at = 0;
      for await (const chunk of source as AsyncIterable<Buffer>) {
        const from = Math.max(0, start - at);
        const to = Math.min(chunk.length, end - at);
        at += chunk.length;
        if (to > from) yield chunk.subarray(from, to);
        if (at >= end) break;
      }
    })(),
  );
}

/**
 * The same tar as writeTarFile, as a stream produced in order (a daemon's load endpoint reads it as
 * it is written: no copy of the whole archive on disk). Bodies are read one after another, each
 * checked against its digest as it passes when the member asks for it; progress per body byte.
 */
export function streamTar(members: readonly Member[], options: MemberWriteOptions = {}): Readable {
  const onBytes = options.onBytes ?? ((): void => {});
  async function* generate(): AsyncGenerator<Buffer> {
    for (const member of members) {
      if (options.signal?.aborted) throw new FerryError('INTERRUPTED', 'writing aborted');
      yield headerOf(member);
      if (member.type === 'file') yield member.bytes;
      if (member.type === 'stream' || member.type === 'blob') {
        const check = member.type === 'blob' && member.verify ? new BlobCheck(member.verify.what, {digest: member.verify.digest, size: member.size}) : undefined;
        const body = member.type === 'stream' ? member.open() : FileRange.of(member.source).stream();
        let got = 0;
        for await (const chunk of body as AsyncIterable<Buffer>) {
          got += chunk.length;
          if (got > member.size) throw new SizeMismatchError(member.name, member.size, got);
          check?.update(chunk);
          onBytes(chunk.length);
          yield chunk;
        }
        if (got !== member.size) throw new SizeMismatchError(member.name, member.size, got);
        check?.finish();
      }
      if (member.type === 'file' || member.type === 'stream' || member.type === 'blob') {
        const pad = padding(member.type === 'file' ? member.bytes.length : member.size);
        if (pad.length > 0) yield pad;
      }
    }
    yield END_OF_ARCHIVE;
  }
  return Readable.from(generate(), {objectMode: false, highWaterMark: 1 << 20});
}

/**
 * Writes members as files under `dir` (directories first); returns the bytes written. A scratch
 * file of ours (`owned`, recompressed beside the destination) is renamed into place, not copied.
 */
export async function writeMembersToDirectory(dir: string, members: readonly Member[], options: MemberWriteOptions = {}): Promise<number> {
  const target = (name: string): string => path.join(dir, ...name.split('/'));
  for (const m of members) {
    if (m.type !== 'dir') continue;
    await mkdir(target(m.name), {recursive: true, mode: 0o755}).catch((e: unknown) => {
      throw ioError(e, target(m.name));
    });
  }
  const onBytes = options.onBytes ?? ((): void => {});
  let bytes = 0;
  await copyBodies(members, options, dir, async (m) => {
    const file = target(m.name);
    if (m.type === 'file') {
      await writeFile(file, m.bytes, {flag: 'wx', mode: 0o644}).catch((e: unknown) => {
        throw ioError(e, file);
      });
      bytes += m.bytes.length;
    } else if (m.type === 'stream') {
      const handle = await open(file, 'wx', 0o644).catch((e: unknown) => {
        throw ioError(e, file);
      });
      try {
        // (not `bytes += await …`: that reads `bytes` before the await and loses concurrent updates)
        const written = await writeStreamAt(handle, file, m, 0, onBytes);
        bytes += written;
      } finally {
        await handle.close();
      }
    } else if (m.type === 'blob') {
      if (m.owned && (await moveIntoPlace(m, file))) onBytes(m.size);
      else await copyBlobMember(m, {path: file}, {...options, onBytes});
      bytes += m.size;
    } else if (m.type === 'symlink') {
      throw new FerryError('UNSUPPORTED', `${m.name}: symlinks are not written into OCI layouts`);
    }
  });
  return bytes;
}

/** Renames a whole scratch file into place; false when it cannot (another filesystem): copy instead. */
async function moveIntoPlace(m: Extract<Member, {type: 'blob'}>, file: string): Promise<boolean> {
  if (m.source.offset !== 0 || m.source.size !== m.size) return false;
  try {
    await rename(m.source.path, file);
    await chmod(file, 0o644); // as every copied blob (scratch files are private)
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EXDEV') return false;
    throw ioError(e, file);
  }
}
