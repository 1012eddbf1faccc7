import {createHash} from 'node:crypto';
import {FerryError} from '../../errors.js';
import type {FileRange} from '../../io/byte-source.js';
import {RangeLayer} from '../../io/blob-layer.js';
import {walkTar} from '../../tar/walk.js';
import {configPlatform, parseConfig} from '../../model/config.js';
import type {Digest} from '../../model/digest.js';
import type {ArchiveEntry} from '../../model/image.js';
import {MediaType} from '../../model/media-types.js';
import {hostPlatform, type Platform} from '../../model/platform.js';
import {importedConfigBytes, type ContainerConfigChanges} from '../../model/synthesize.js';

export interface RootfsOptions {
  platform?: Platform;
  config?: ContainerConfigChanges;
  comment?: string;
  names?: string[];
}

/** Validates the tar by its headers (no data read) and returns the newest mtime. */
export async function scanRootfs(range: FileRange): Promise<{entries: number; newestMtime: number}> {
  const {reader, close} = await range.openReader();
  let entries = 0;
  let newestMtime = 0;
  try {
    const walk = walkTar(reader);
    for (;;) {
      const next = await walk.next();
      if (next.done) {
        if (!next.value.hasEndMarker && entries === 0) throw new FerryError('BAD_TAR', `${range.label}: not a tar archive`);
        // Nothing vouches for a rootfs tar's length (its diffID is the hash of whatever bytes are
        // there): a copy cut at a member boundary must not become a smaller image.
        if (!next.value.hasEndMarker) throw new FerryError('BAD_TAR', `${range.label}: tar ends without the end-of-archive marker (cut short?)`);
        break;
      }
      entries++;
      newestMtime = Math.max(newestMtime, Math.floor(next.value.mtime));
    }
  } finally {
    await close();
  }
  return {entries, newestMtime};
}

export async function sha256OfRange(range: FileRange): Promise<Digest> {
  const h = createHash('sha256');
  for await (const chunk of range.stream()) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}` as Digest;
}

/**
 * A flattened filesystem tar presented as a one-layer image, as `docker import` would make it. The
 * layer is the tar's bytes untouched (diffID = sha256 of them); `created` is the newest entry mtime so
 * the same tar always yields the same image ID.
 */
export async function readRootfsEntries(range: FileRange, options: RootfsOptions = {}): Promise<ArchiveEntry[]> {
  const {newestMtime} = await scanRootfs(range);
  const diffId = await sha256OfRange(range);
  const platform = options.platform ?? {...hostPlatform(), os: 'linux'};
  const created = new Date(newestMtime * 1000).toISOString().replace('.000Z', 'Z');
  const bytes = importedConfigBytes({diffId, platform, created, comment: options.comment ?? 'Imported from -', ...(options.config ? {config: options.config} : {})});
  const config = parseConfig(bytes, MediaType.ociConfig, `${range.label}: synthesized config`);
  const layer = new RangeLayer({mediaType: MediaType.ociLayer, digest: diffId, size: range.size}, diffId, range);
  return [{names: options.names ?? [], root: {names: [], manifest: null, config, layers: [layer], platform: configPlatform(config.parsed)}}];
}
