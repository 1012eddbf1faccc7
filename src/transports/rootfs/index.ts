import {FerryError, UsageError} from '../../errors.js';
import {readRootfs, readRootfsLayer, type RootfsLayer} from '../../formats/rootfs/read.js';
import {hostPlatform} from '../../model/platform.js';
import {openLocal} from '../local.js';
import type {LocalSource, ReadOptions, Transport} from '../types.js';

function rootfsRange(source: LocalSource) {
  if (source.input.kind !== 'file') throw new FerryError('BAD_ARCHIVE', `${source.label}: is a directory, but rootfs: expects a tar file`);
  return source.input.range;
}

/**
 * `rootfs:PATH` — a flattened filesystem tar (`docker export` output), read as a one-layer image the
 * way `docker import` makes one. Anything that is a tar but no image archive is read as this.
 */
export const rootfs: Transport = {
  name: 'rootfs',
  usage: 'rootfs:PATH',
  parse(rest, text) {
    if (rest === '') throw new UsageError(`"${text}": missing path after rootfs:`);
    return {transport: 'rootfs', path: rest, text};
  },
  local: {
    accepts: 'file',
    read: (source, _ref, options) => readRootfs(rootfsRange(source), {limits: options.settings.limits, platform: options.platform ?? {...hostPlatform(), os: 'linux'}}),
  },
};

/** Opens a rootfs tar as one layer (what `ferry import` builds its image from); dispose() releases spooled input. */
export async function openRootfsLayer(path: string, options: ReadOptions): Promise<RootfsLayer & {dispose(): Promise<void>}> {
  const source = await openLocal(path, options, {index: false});
  try {
    const layer = await readRootfsLayer(rootfsRange(source), {limits: options.settings.limits});
    return {...layer, dispose: () => source.input.dispose()};
  } catch (e) {
    await source.input.dispose();
    throw e;
  }
}
