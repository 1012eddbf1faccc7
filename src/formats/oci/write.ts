import {mkdir, open, writeFile} from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import {FerryError, ioError, SizeMismatchError} from '../../errors.js';
import type {ArchiveEntry} from '../../model/image.js';
import type {Member} from '../../tar/archive-writer.js';
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

/** Writes members as files under `dir` (directories first); returns the bytes written. */
export async function writeMembersToDirectory(dir: string, members: readonly Member[], options: FormatWriteOptions = {}): Promise<number> {
  const target = (name: string): string => path.join(dir, ...name.split('/'));
  for (const m of members) {
    if (m.type === 'dir') await mkdir(target(m.name), {recursive: true, mode: 0o755}).catch((e) => {
      throw ioError(e, target(m.name));
    });
  }
  const limit = pLimit(Math.max(1, options.concurrency ?? 1));
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
          const copied = await copyStream(m, target(m.name));
          bytes += copied;
        } else if (m.type === 'symlink') {
          throw new FerryError('UNSUPPORTED', `${m.name}: symlinks are not written into OCI layouts`);
        }
      }),
    ),
  );
  return bytes;
}

async function copyStream(m: Extract<Member, {type: 'stream'}>, file: string): Promise<number> {
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
    }
    if (got !== m.size) throw new SizeMismatchError(m.name, m.size, got);
  } finally {
    await handle.close();
  }
  return got;
}
