import {open, unlink, type FileHandle} from 'node:fs/promises';
import type {Readable} from 'node:stream';
import pLimit from 'p-limit';
import {FerryError, ioError, SizeMismatchError} from '../errors.js';
import {executeJob, type BlobPool, type OnBytes, type Region} from '../io/blob-pool.js';
import type {Digest} from '../model/digest.js';
import {encodeHeader, END_OF_ARCHIVE, padding} from './write.js';

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

/** Fixed header fields: output depends only on names and contents (FORMATS.md §6, deterministic). */
const MODE = {dir: 0o755, file: 0o644, symlink: 0o777} as const;

/** Members in byte order of their names, as Docker's writer (a sorted directory walk) emits them. */
export function sortMembers(members: Member[]): Member[] {
  return [...members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function headerOf(member: Member): Buffer {
  switch (member.type) {
    case 'dir':
      return encodeHeader({name: member.name.endsWith('/') ? member.name : `${member.name}/`, type: 'dir', mode: MODE.dir, uid: 0, gid: 0, size: 0, mtime: 0});
    case 'symlink':
      return encodeHeader({name: member.name, type: 'symlink', mode: MODE.symlink, uid: 0, gid: 0, size: 0, mtime: 0, linkname: member.target});
    case 'file':
      return encodeHeader({name: member.name, type: 'file', mode: MODE.file, uid: 0, gid: 0, size: member.bytes.length, mtime: 0});
    case 'stream':
    case 'blob':
      return encodeHeader({name: member.name, type: 'file', mode: MODE.file, uid: 0, gid: 0, size: member.size, mtime: 0});
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
  async flush(handle: FileHandle, path: string): Promise<void> {
    for (const run of this.#runs.splice(0)) {
      let done = 0;
      let buffers = run.buffers;
      while (done < run.length) {
        const {bytesWritten} = await handle.writev(buffers, run.position + done).catch((e) => {
          throw ioError(e, path);
        });
        done += bytesWritten;
        if (done < run.length) buffers = [Buffer.concat(run.buffers).subarray(done)];
      }
    }
  }
}

/** Streams a member's body into `handle` at `offset`, holding it to its declared size. */
async function writeStreamBody(handle: FileHandle, path: string, member: Extract<Member, {type: 'stream'}>, offset: number, onBytes: OnBytes): Promise<void> {
  let got = 0;
  for await (const chunk of member.open() as AsyncIterable<Buffer>) {
    // The header promised `size` bytes: more would corrupt every member after this one.
    if (got + chunk.length > member.size) throw new SizeMismatchError(member.name, member.size, got + chunk.length);
    let done = 0;
    while (done < chunk.length) {
      const {bytesWritten} = await handle.write(chunk, done, chunk.length - done, offset + got + done).catch((e) => {
        throw ioError(e, path);
      });
      done += bytesWritten;
    }
    got += chunk.length;
    onBytes(chunk.length);
  }
  if (got !== member.size) throw new SizeMismatchError(member.name, member.size, got);
}

/** Copies a blob member's range to `target` (a new file, or an existing one at `offset`). */
export async function copyBlobMember(member: Extract<Member, {type: 'blob'}>, target: {path: string; offset?: number}, options: MemberWriteOptions): Promise<void> {
  if (!member.verify && member.source.size !== member.size) throw new SizeMismatchError(member.name, member.size, member.source.size);
  const job = {kind: 'copy' as const, source: member.source, target, ...(member.verify ? {verify: {...member.verify, size: member.size}} : {})};
  // Copies that hash go to the workers; a plain copy is I/O the thread pool does anyway.
  await (options.pool && member.verify ? options.pool.run(job, options.onBytes) : executeJob(job, options.onBytes));
}

/**
 * Writes `members` (in the order given) as a tar file at `path`; returns its size. USTAR headers
 * with mtime 0, uid/gid 0, no user/group names, fixed modes (PAX only when a name needs it),
 * Go-style end (two zero blocks, no record padding). Every size is known up front, so the whole
 * layout is computed first: headers, small files and padding are written in a few large writes,
 * then the bodies are copied concurrently, each at its own offset.
 */
export async function writeTarFile(path: string, members: Member[], options: MemberWriteOptions = {}): Promise<number> {
  const handle = await open(path, 'wx', 0o644).catch((e) => {
    throw ioError(e, path);
  });
  const onBytes = options.onBytes ?? ((): void => {});
  const limit = pLimit(Math.max(1, options.concurrency ?? 1));
  try {
    const runs = new RunWriter();
    const bodies: Array<{member: Extract<Member, {type: 'stream' | 'blob'}>; offset: number}> = [];
    let position = 0;
    for (const member of members) {
      const header = headerOf(member);
      runs.add(position, header);
      position += header.length;
      if (member.type === 'file') {
        runs.add(position, member.bytes);
        position += member.bytes.length;
        runs.add(position, padding(member.bytes.length));
        position += padding(member.bytes.length).length;
      } else if (member.type === 'stream' || member.type === 'blob') {
        bodies.push({member, offset: position});
        position += member.size;
        runs.add(position, padding(member.size));
        position += padding(member.size).length;
      }
    }
    runs.add(position, END_OF_ARCHIVE);
    position += END_OF_ARCHIVE.length;
    await runs.flush(handle, path);
    // A scratch file of ours is removed as soon as its last copy is in (the removal overlaps the
    // other copies instead of adding up at the end: unlinking 1.5 GB took 0.8 s on the main thread).
    const uses = new Map<string, number>();
    for (const {member} of bodies) if (member.type === 'blob' && member.owned) uses.set(member.source.path, (uses.get(member.source.path) ?? 0) + 1);
    await Promise.all(
      bodies.map(({member, offset}) =>
        limit(async () => {
          if (options.signal?.aborted) throw new FerryError('INTERRUPTED', `${path}: writing aborted`);
          if (member.type === 'stream') await writeStreamBody(handle, path, member, offset, onBytes);
          else {
            await copyBlobMember(member, {path, offset}, {...options, onBytes});
            const left = (uses.get(member.source.path) ?? 0) - 1;
            uses.set(member.source.path, left);
            if (member.owned && left === 0) await unlink(member.source.path).catch(() => {}); // the scratch dir goes at the end anyway
          }
        }),
      ),
    ).catch((e: unknown) => {
      limit.clearQueue(); // the first failure ends the write; queued copies never start
      throw e;
    });
    return position;
  } finally {
    await handle.close().catch(() => {});
  }
}
