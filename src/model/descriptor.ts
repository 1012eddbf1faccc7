import {FerryError} from '../errors.js';
import {parseDigest, type Digest} from './digest.js';
import type {Platform} from './platform.js';

/** OCI content descriptor (descriptor.md). */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
  data?: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates a descriptor from untrusted JSON; `where` names it in errors. */
export function parseDescriptor(value: unknown, where: string): Descriptor {
  if (!isRecord(value)) throw new FerryError('BAD_JSON', `${where}: descriptor is not an object`);
  const {mediaType, digest, size, urls, annotations, platform, artifactType, data} = value;
  if (typeof mediaType !== 'string') throw new FerryError('BAD_JSON', `${where}: descriptor has no mediaType`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new FerryError('BAD_JSON', `${where}: descriptor size ${JSON.stringify(size)} is not a non-negative integer`);
  const d: Descriptor = {mediaType, digest: parseDigest(digest, where), size};
  if (Array.isArray(urls) && urls.every((u) => typeof u === 'string')) d.urls = urls as string[];
  if (isRecord(annotations)) d.annotations = Object.fromEntries(Object.entries(annotations).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
  if (isRecord(platform) && typeof platform.os === 'string' && typeof platform.architecture === 'string') d.platform = platform as unknown as Platform;
  if (typeof artifactType === 'string') d.artifactType = artifactType;
  if (typeof data === 'string') d.data = data;
  return d;
}

export {isRecord};
