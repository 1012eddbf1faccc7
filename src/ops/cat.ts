import type {Writable} from 'node:stream';
import {Readable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {FerryError, ioError} from '../errors.js';
import type {Archive} from '../model/image.js';
import {cleanPath} from '../tar/walk.js';
import {readContent} from './overlay/content.js';
import {mergeLayers} from './overlay/merge.js';
import {pickImage} from './overlay/pick-image.js';
import {isFailure} from './overlay/tree.js';

export interface CatOptions {
  images?: readonly string[];
  out?: Writable;
}

/**
 * `ferry cat`: streams one file of the merged image to `out`. Symlinks are followed inside the image
 * root only — an absolute target starts again at the image root and `..` stops there, as in a chroot
 * — and hard links are just other names of the same file.
 */
export async function catFile(archive: Archive, filePath: string, options: CatOptions = {}): Promise<{bytes: number; warnings: string[]}> {
  const picked = pickImage(archive, options.images ?? []);
  const view = await mergeLayers(picked.image.layers);
  const where = `${filePath} in ${picked.names[0] ?? picked.image.config.digest}`;
  const node = view.tree.resolveFollow(cleanPath(filePath.replace(/^\/+/, '')));
  if (isFailure(node)) {
    if (node.problem === 'symlink-loop') throw new FerryError('NOT_FOUND', `${where}: too many levels of symbolic links`);
    throw new FerryError('NOT_FOUND', `${where}: no such file`);
  }
  if (node.type === 'dir') throw new FerryError('UNSUPPORTED', `${where}: is a directory`);
  if (node.type !== 'file') throw new FerryError('UNSUPPORTED', `${where}: is a ${node.type === 'fifo' ? 'fifo' : `${node.type} device`}, not a regular file`);
  const source = node.inode.source!;
  let bytes = 0;
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of readContent(picked.image.layers, source)) {
      bytes += chunk.length;
      yield chunk;
    }
  };
  const out = options.out ?? process.stdout;
  await pipeline(Readable.from(counted(), {objectMode: false}), out, {end: out !== process.stdout}).catch((e: unknown) => {
    throw ioError(e, 'stdout');
  });
  return {bytes, warnings: view.warnings};
}
