import {UsageError} from '../../errors.js';
import {isDigest} from '../../model/digest.js';
import {referenceProblem, tryParseReference, withDefaultTag} from '../../model/reference.js';

/**
 * A registry reference, `docker://[HOST[:PORT]/]REPO[:TAG|@DIGEST]`, by Docker's name rules: no host
 * means docker.io, a one-component name on docker.io is library/NAME, `localhost[:port]` and anything
 * with a `.` or `:` before the first `/` is a host, and no tag means `latest`.
 */
export interface RegistryRef {
  /** host[:port] as written (docker.io for Docker Hub). */
  registry: string;
  /** repository path, e.g. library/alpine. */
  repository: string;
  tag?: string;
  digest?: string;
  /** The reference as the user wrote it. */
  text: string;
}

export function parseRegistryRef(text: string): RegistryRef {
  const body = text.startsWith('docker://') ? text.slice('docker://'.length) : text;
  if (body.startsWith('//')) throw new UsageError(`"${text}": write docker://HOST/REPO, not docker:///`);
  const parsed = tryParseReference(body);
  if (!parsed) throw new UsageError(`"${text}": not an image reference: ${referenceProblem(body)}`);
  const ref = withDefaultTag(parsed);
  const out: RegistryRef = {registry: ref.domain, repository: ref.path, text};
  if (ref.tag !== undefined) out.tag = ref.tag;
  if (ref.digest !== undefined) out.digest = ref.digest;
  return out;
}

/** The reference part a registry API call names: the digest when there is one, else the tag. */
export function manifestReference(ref: RegistryRef): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** `host/repo:tag` or `host/repo@digest`, for messages and names. */
export function formatRegistryRef(ref: Pick<RegistryRef, 'registry' | 'repository' | 'tag' | 'digest'>): string {
  return `${ref.registry}/${ref.repository}${ref.digest ? `@${ref.digest}` : `:${ref.tag ?? 'latest'}`}`;
}

/** Docker Hub's API lives at registry-1.docker.io; every other registry at its own name. */
export function apiHost(registry: string): string {
  return registry === 'docker.io' || registry === 'index.docker.io' ? 'registry-1.docker.io' : registry;
}

/** Hosts that may be spoken to in plain HTTP without being asked (loopback only: crane's private-range downgrade is not copied). */
export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

export function isRegistryDigest(value: string | undefined): boolean {
  return value !== undefined && isDigest(value);
}
