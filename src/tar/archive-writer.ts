import {open, type FileHandle} from 'node:fs/promises';
import type {Readable} from 'node:stream';
import {FerryError, ioError, SizeMismatchError} from '../errors.js';
import {encodeHeader, END_OF_ARCHIVE, padding} from './write.js';

/**
 * One member of an archive ferry writes (tar or directory). Stream members name their size up front
 * (a tar header needs it) and are opened only when their turn comes, so no blob is held in memory.
 */
export type Member =
  | {type: 'dir'; name: string}
  | {type: 'file'; name: string; bytes: Buffer}
  | {type: 'stream'; name: string; size: number; open(): Readable}
  | {type: 'symlink'; name: string; target: string};

/** Fixed header fields: output depends only on names and contents (FORMATS.md §6, deterministic). */
const MODE = {dir: 0o755, file: 0o644, symlink: 0o777} as const;

/** Members in byte order of their names, as Docker's writer (a sorted directory walk) emits them. */
export function sortMembers(members: Member[]): Member[] {
  return [...members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Writes a tar file member by member: USTAR headers with mtime 0, uid/gid 0, no user/group names,
 * fixed modes (PAX only when a name needs it), Go-style end (two zero blocks, no record padding).
 */
export class TarFileWriter {
  #position = 0;
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
  ) {}

  static async create(path: string): Promise<TarFileWriter> {
    const handle = await open(path, 'wx').catch((e) => {
      throw ioError(e, path);
    });
    return new TarFileWriter(handle, path);
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.#position;
  }

  async #write(buffer: Buffer): Promise<void> {
    let done = 0;
    while (done < buffer.length) {
      const {bytesWritten} = await this.handle.write(buffer, done, buffer.length - done, this.#position + done).catch((e) => {
        throw ioError(e, this.path);
      });
      done += bytesWritten;
    }
    this.#position += buffer.length;
  }

  async add(member: Member): Promise<void> {
    switch (member.type) {
      case 'dir':
        await this.#write(encodeHeader({name: member.name.endsWith('/') ? member.name : `${member.name}/`, type: 'dir', mode: MODE.dir, uid: 0, gid: 0, size: 0, mtime: 0}));
        return;
      case 'symlink':
        await this.#write(encodeHeader({name: member.name, type: 'symlink', mode: MODE.symlink, uid: 0, gid: 0, size: 0, mtime: 0, linkname: member.target}));
        return;
      case 'file':
        await this.#write(encodeHeader({name: member.name, type: 'file', mode: MODE.file, uid: 0, gid: 0, size: member.bytes.length, mtime: 0}));
        await this.#write(member.bytes);
        await this.#write(padding(member.bytes.length));
        return;
      case 'stream': {
        await this.#write(encodeHeader({name: member.name, type: 'file', mode: MODE.file, uid: 0, gid: 0, size: member.size, mtime: 0}));
        let got = 0;
        for await (const chunk of member.open() as AsyncIterable<Buffer>) {
          got += chunk.length;
          // The header promised `size` bytes: more would corrupt every member after this one.
          if (got > member.size) throw new SizeMismatchError(member.name, member.size, got);
          await this.#write(chunk);
        }
        if (got !== member.size) throw new SizeMismatchError(member.name, member.size, got);
        await this.#write(padding(member.size));
        return;
      }
    }
  }

  /** Writes the end-of-archive marker and closes the file. */
  async finish(): Promise<number> {
    await this.#write(END_OF_ARCHIVE);
    await this.close();
    return this.#position;
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => {});
  }
}

/** Writes `members` (in the order given) as a tar file at `path`; returns its size. */
export async function writeTarFile(path: string, members: Member[], signal?: AbortSignal): Promise<number> {
  const writer = await TarFileWriter.create(path);
  try {
    for (const member of members) {
      if (signal?.aborted) throw new FerryError('INTERRUPTED', `${path}: writing aborted`);
      await writer.add(member);
    }
    return await writer.finish();
  } catch (e) {
    await writer.close();
    throw e;
  }
}
