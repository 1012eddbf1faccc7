import {createHash} from 'node:crypto';
import {open} from 'node:fs/promises';
import os from 'node:os';
import pLimit from 'p-limit';
import {FerryError, ioError} from '../../errors.js';
import type {Layer} from '../../model/image.js';
import {walkTar} from '../../tar/walk.js';
import {openLayerTar} from '../overlay/layer-tar.js';
import type {ContentSource} from '../overlay/tree.js';

/** Identifies one member of one layer of one image. */
export function memberKey(source: ContentSource): string {
  return `${source.layer}:${source.headerOffset}`;
}

export interface HashSummary {
  /** sha256 hex by memberKey. */
  digests: Map<string, string>;
  files: number;
  bytes: number;
}

const CHUNK = 1 << 20;

/**
 * The sha256 of some members' bodies, each layer read once: in place by offset when the layer sits
 * uncompressed in a file (nothing else of it is read), else by streaming the layer through the
 * checked read up to its last wanted member. Layers are read concurrently.
 */
export async function hashMembers(layers: readonly Layer[], sources: Iterable<ContentSource>, options: {concurrency?: number} = {}): Promise<HashSummary> {
  const byLayer = new Map<number, Map<number, ContentSource>>();
  for (const s of sources) {
    let m = byLayer.get(s.layer);
    if (!m) byLayer.set(s.layer, (m = new Map()));
    m.set(s.headerOffset, s);
  }
  const digests = new Map<string, string>();
  let files = 0;
  let bytes = 0;
  const limit = pLimit(Math.max(1, options.concurrency ?? Math.min(4, os.availableParallelism())));
  await Promise.all(
    [...byLayer].map(([index, wanted]) =>
      limit(async () => {
        const layer = layers[index]!;
        const sorted = [...wanted.values()].sort((a, b) => a.headerOffset - b.headerOffset);
        const found = layer.region && (await layer.compression()) === 'none' ? await hashInPlace(layer, sorted) : await hashStreamed(layer, sorted);
        for (const [s, hex] of found) {
          digests.set(memberKey(s), hex);
          files++;
          bytes += s.size;
        }
      }),
    ),
  );
  return {digests, files, bytes};
}

async function hashInPlace(layer: Layer, sources: ContentSource[]): Promise<Array<[ContentSource, string]>> {
  const region = layer.region!;
  const out: Array<[ContentSource, string]> = [];
  const handle = await open(region.path, 'r').catch((e: unknown) => {
    throw ioError(e, region.label);
  });
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (const s of sources) {
      if (s.dataOffset + s.size > region.size) throw new FerryError('BAD_TAR', `${layer.label}: member "${s.name}" runs past the end of the layer`);
      const hash = createHash('sha256');
      let done = 0;
      while (done < s.size) {
        const want = Math.min(CHUNK, s.size - done);
        const {bytesRead} = await handle.read(buf, 0, want, region.offset + s.dataOffset + done);
        if (bytesRead === 0) throw new FerryError('BAD_TAR', `${layer.label}: member "${s.name}" is cut short (changed while being read?)`);
        hash.update(buf.subarray(0, bytesRead));
        done += bytesRead;
      }
      out.push([s, hash.digest('hex')]);
    }
  } catch (e) {
    throw ioError(e, region.label);
  } finally {
    await handle.close();
  }
  return out;
}

async function hashStreamed(layer: Layer, sources: ContentSource[]): Promise<Array<[ContentSource, string]>> {
  const out: Array<[ContentSource, string]> = [];
  const tar = await openLayerTar(layer);
  try {
    const walk = walkTar(tar.reader);
    let i = 0;
    while (i < sources.length) {
      const next = await walk.next();
      const s = sources[i]!;
      if (next.done || next.value.headerOffset > s.headerOffset) {
        throw new FerryError('BAD_TAR', `${layer.label}: member "${s.name}" is no longer at offset ${s.headerOffset} (changed while being read?)`);
      }
      if (next.value.headerOffset < s.headerOffset) continue;
      if (next.value.name !== s.name || next.value.size !== s.size) throw new FerryError('BAD_TAR', `${layer.label}: member "${s.name}" is no longer at offset ${s.headerOffset} (changed while being read?)`);
      const hash = createHash('sha256');
      for await (const chunk of tar.reader.chunks(s.size, `member "${s.name}"`)) hash.update(chunk);
      out.push([s, hash.digest('hex')]);
      i++;
    }
  } finally {
    await tar.close();
  }
  return out;
}
