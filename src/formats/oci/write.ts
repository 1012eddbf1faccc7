import {chmod, mkdir, open, rename, writeFile} from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import {FerryError, ioError, SizeMismatchError} from '../../errors.js';
import type {ArchiveEntry} from '../../model/image.js';
import {copyBlobMember, type Member, type MemberWriteOptions} from '../../tar/archive-writer.js';
import {layoutMembers, ociLayoutNames, planLayout, type FormatWriteOptions, type FormatWriteResult} from '../layout/write.js';

/**
 * An OCI image layout directory (`oci:DIR`) written into `dir` (an empty temp directory the caller
 * renames into place). Blobs are copied concurrently, each checked against its digest as it streams.
 */
export async function writeOciDirectory(entries: readonly ArchiveEntry[], dir: string, options: FormatWriteOptions = {}): Promise<FormatWriteResult> {
  const plan = await planLayout(entries);
  const bytes = await writeMembersToDirectory(dir, layoutMembers(plan, ociLayoutNames), options);
  return {images: plan.images, blobs: plan.blobs.size, bytes};
}

/**
 * Writes members as files under `dir` (directories first); returns the bytes written. A scratch
 * file of ours (`owned`, recompressed beside the destination) is renamed into place, not copied.
 */
export async function writeMembersToDirectory(dir: string, members: readonly Member[], options: MemberWriteOptions = {}): Promise<number> {
  const target = (name: string): string => path.join(dir, ...name.split('/'));
  for (const m of members) {
    if (m.type === 'dir') await mkdir(target(m.name), {recursive: true, mode: 0o755}).catch((e) => {
      throw ioError(e, target(m.name));
    });
  }
  const limit = pLimit(Math.max(1, options.concurrency ?? 1));
  const onBytes = options.onBytes ?? ((): void => {});
  let bytes = 0;
  await Promise.all(
    members.map((m) =>
      limit(async () => {
        if (options.signal?.aborted) throw new FerryError('INTERRUPTED', `${dir}: writing aborted`);
        if (m.type === 'file') {
          await writeFile(target(m.name), m.bytes, {flag: 'wx', mode: 0o644}).catch((e) => {
            throw ioError(e, target(m.name));
          });
          bytes += m.bytes.length;
        } else if (m.type === 'stream') {
          // (not `bytes += await …`: that reads `bytes` before the await and loses concurrent updates)
          const copied = await copyStream(m, target(m.name), onBytes);
          bytes += copied;
        } else if (m.type === 'blob') {
          if (m.owned && (await moveIntoPlace(m, target(m.name)))) onBytes(m.size);
          else await copyBlobMember(m, {path: target(m.name)}, {...options, onBytes});
          bytes += m.size;
        } else if (m.type === 'symlink') {
          throw new FerryError('UNSUPPORTED', `${m.name}: symlinks are not written into OCI layouts`);
        }
      }),
    ),
  ).catch((e: unknown) => {
    limit.clearQueue();
    throw e;
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

async function copyStream(m: Extract<Member, {type: 'stream'}>, file: string, onBytes: (bytes: number) => void): Promise<number> {
  const handle = await open(file, 'wx', 0o644).catch((e) => {
    throw ioError(e, file);
  });
  let got = 0;
  try {
    for await (const chunk of m.open() as AsyncIterable<Buffer>) {
      if (got + chunk.length > m.size) throw new SizeMismatchError(m.name, m.size, got + chunk.length);
      let done = 0;
      while (done < chunk.length) {
        const {bytesWritten} = await handle.write(chunk, done, chunk.length - done, got + done).catch((e) => {
          throw ioError(e, file);
        });
        done += bytesWritten;
      }
      got += chunk.length;
      onBytes(chunk.length);
    }
    if (got !== m.size) throw new SizeMismatchError(m.name, m.size, got);
  } finally {
    await handle.close();
  }
  return got;
}
