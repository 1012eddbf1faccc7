import {UsageError} from '../errors.js';
import {parseChanges} from '../model/changes.js';
import {appendLayer, emptyImage, type ContainerConfigChanges} from '../model/empty.js';
import {hostPlatform, type Platform} from '../model/platform.js';
import {resolveSettings} from '../settings.js';
import {openRootfsLayer} from '../transports/rootfs/index.js';
import {writeArchive, type WriteOptions, type WriteSummary} from './write-archive.js';

export interface ImportOptions extends Omit<WriteOptions, 'tags' | 'platform'> {
  /** Names for the image (at least one). */
  tags: string[];
  /** Dockerfile instructions, applied in order (`--change`, src/model/changes.ts). */
  changes?: readonly string[];
  /** Written in the config (default: linux and this machine's architecture). */
  platform?: Platform;
  /** The history comment (`docker import --message`); default "Imported from -" as docker writes. */
  message?: string;
  /** What a SOURCE of `-` reads. */
  stdin?: NodeJS.ReadableStream;
}

export interface ImportSummary {
  written: WriteSummary;
  config: ContainerConfigChanges;
}

/**
 * `ferry import`: "FROM scratch" plus the rootfs tar (plain or compressed, or stdin) as its one
 * layer, like `docker import`: the layer is the tar's bytes as given (decompressed when compressed),
 * the config is docker import's with the --change settings. Written through the archive writer.
 */
export async function importRootfs(source: string, destination: string, options: ImportOptions): Promise<ImportSummary> {
  const {tags, changes, platform, message, stdin, ...writeOptions} = options;
  if (tags.length === 0) throw new UsageError('--tag is required: name the imported image');
  const config = parseChanges(changes ?? []);
  const settings = resolveSettings(options.settings);
  const path = source.startsWith('rootfs:') ? source.slice('rootfs:'.length) : source;
  const rootfs = await openRootfsLayer(path, {settings, stdin});
  try {
    if (rootfs.looksLike) {
      options.note?.(`${source} looks like ${rootfs.looksLike}, not a file system: the image will hold the archive's members as files (to work on the image inside it, use ferry convert or load)`);
    }
    const base = emptyImage({platform: platform ?? {...hostPlatform(), os: 'linux'}, created: rootfs.created, config});
    const image = appendLayer(base, rootfs.layer, {created: rootfs.created, comment: message ?? 'Imported from -'});
    return {written: await writeArchive(destination, [{names: [], root: image}], {...writeOptions, tags}), config};
  } finally {
    await rootfs.dispose();
  }
}
