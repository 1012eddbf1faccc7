import {createHash, type Hash} from 'node:crypto';
import {FerryError} from '../errors.js';

/** `algorithm:encoded`, validated (OCI descriptor.md digest grammar). */
export type Digest = string & {readonly __brand: 'Digest'};

const GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const ENCODED: Record<string, RegExp> = {sha256: /^[a-f0-9]{64}$/, sha512: /^[a-f0-9]{128}$/};

export function parseDigest(value: unknown, where: string): Digest {
  if (typeof value !== 'string' || !GRAMMAR.test(value)) {
    throw new FerryError('BAD_ARCHIVE', `${where}: malformed digest ${JSON.stringify(value)}`);
  }
  const [algorithm, encoded] = splitDigest(value as Digest);
  const pattern = ENCODED[algorithm];
  if (!pattern) throw new FerryError('UNSUPPORTED', `${where}: unsupported digest algorithm "${algorithm}" in ${value}`);
  if (!pattern.test(encoded)) throw new FerryError('BAD_ARCHIVE', `${where}: malformed ${algorithm} digest ${JSON.stringify(value)}`);
  return value as Digest;
}

export function isDigest(value: unknown): value is Digest {
  if (typeof value !== 'string') return false;
  const i = value.indexOf(':');
  const pattern = ENCODED[value.slice(0, i)];
  return i > 0 && pattern !== undefined && pattern.test(value.slice(i + 1));
}

export function splitDigest(digest: Digest): [algorithm: string, encoded: string] {
  const i = digest.indexOf(':');
  return [digest.slice(0, i), digest.slice(i + 1)];
}

export function digestHex(digest: Digest): string {
  return splitDigest(digest)[1];
}

export function sha256Of(bytes: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
}

export function newHasher(digest: Digest): Hash {
  return createHash(splitDigest(digest)[0]);
}

/** ChainID per image-spec config.md: ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)). */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const diffId of diffIds) {
    const previous = out.at(-1);
    out.push(previous === undefined ? diffId : sha256Of(`${previous} ${diffId}`));
  }
  return out;
}
