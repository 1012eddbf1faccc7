import {createHash} from 'node:crypto';
import {FerryError} from '../../errors.js';
import type {FileRange} from '../../io/bytes/file-range.js';
import {RangeLayer} from '../../io/layers/range-layer.js';
import type {Digest} from '../../model/digest.js';
import {appendLayer, emptyImage} from '../../model/empty.js';
import type {ReadResult} from '../../model/image.js';
import {MediaType} from '../../model/media-types.js';
import type {Platform} from '../../model/platform.js';
import {cleanPath, walkTar} from '../../tar/walk.js';
import type {ReadContext} from '../layout/read.js';

/** Validates the tar by its headers (no data read); returns the newest mtime and its top-level names. */
async function scanRootfs(range: FileRange): Promise<{entries: number; newestMtime: number; top: Set<string>}> {
  const {reader, close} = await range.openReader();
  let entries = 0;
  let newestMtime = 0;
  const top = new Set<string>();
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
      const first = cleanPath(next.value.name).split('/')[0];
      if (first) top.add(first);
    }
  } finally {
    await close();
  }
  return {entries, newestMtime, top};
}

/** What an image archive given where a file system tar was expected looks like, or undefined. */
function imageArchiveKind(top: ReadonlySet<string>): string | undefined {
  if (top.has('oci-layout') && top.has('index.json')) return top.has('manifest.json') ? 'a docker save archive (Docker 25+)' : 'an OCI image layout';
  if (top.has('manifest.json') && (top.has('repositories') || [...top].some((n) => /^[a-f0-9]{64}(\.json)?$/.test(n)))) return 'a docker save archive';
  return undefined;
}

async function sha256OfRange(range: FileRange): Promise<Digest> {
  const h = createHash('sha256');
  for await (const chunk of range.stream()) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}` as Digest;
}

export interface RootfsLayer {
  /** The tar's bytes untouched, as one layer: diffID = digest = sha256 of them (what docker import does). */
  layer: RangeLayer;
  /** RFC 3339 of the newest entry mtime: the same tar always gives the same `created`, hence image ID. */
  created: string;
  /** Set when the tar looks like an image archive rather than a file system (a likely mistake). */
  looksLike?: string;
}

/** A flattened filesystem tar as one layer (`docker export` output, `docker import` input). */
export async function readRootfsLayer(range: FileRange, context: ReadContext): Promise<RootfsLayer> {
  const {newestMtime, top} = await scanRootfs(range);
  const diffId = await sha256OfRange(range);
  const layer = new RangeLayer({mediaType: MediaType.ociLayer, digest: diffId, size: range.size}, diffId, range, context.limits);
  const looksLike = imageArchiveKind(top);
  return {layer, created: new Date(newestMtime * 1000).toISOString().replace('.000Z', 'Z'), ...(looksLike ? {looksLike} : {})};
}

/**
 * A rootfs tar read as an image: "FROM scratch" plus the tar as its one layer, with the config
 * `docker import` would write (comment "Imported from -").
 */
export async function readRootfs(range: FileRange, context: ReadContext & {platform: Platform}): Promise<ReadResult> {
  const {layer, created} = await readRootfsLayer(range, context);
  const image = appendLayer(emptyImage({platform: context.platform, created}), layer, {created, comment: 'Imported from -'});
  return {entries: [{names: [], root: image}], warnings: [], problems: []};
}
