import {Readable} from 'node:stream';
import {FerryError} from '../errors.js';
import type {Archive} from '../model/image.js';
import type {Platform} from '../model/platform.js';
import {cleanPath} from '../tar/walk.js';
import {readContent} from './overlay/content.js';
import {mergeLayers} from './overlay/merge.js';
import {isFailure} from './overlay/tree.js';
import {pickImage} from './select.js';

export interface CatOptions {
  images?: readonly string[];
  platform?: Platform;
  note?: (message: string) => void;
}

export interface CatResult {
  /** The file's bytes, streamed from the layer member that holds them. */
  stream: Readable;
  size: number;
  warnings: string[];
}

/**
 * `ferry cat`: one file of the merged image. Symlinks are followed inside the image root only — an
 * absolute target starts again at the image root and `..` stops there, as in a chroot — and hard
 * links are just other names of the same file.
 */
export async function catFile(archive: Archive, filePath: string, options: CatOptions = {}): Promise<CatResult> {
  const picked = await pickImage(archive, options.images ?? [], {...(options.platform ? {platform: options.platform} : {}), ...(options.note ? {note: options.note} : {})});
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
  return {stream: Readable.from(readContent(picked.image.layers, source), {objectMode: false}), size: source.size, warnings: view.warnings};
}
