import {UsageError} from '../errors.js';
import {isDigest} from './digest.js';

/**
 * A docker image reference (distribution/reference grammar, simplified): [domain/]path[:tag][@digest].
 * `full` is the normalized form containerd/Docker 25 write in io.containerd.image.name
 * (docker.io/library/demo:1); `familiar` is what Docker writes in RepoTags (demo:1).
 */
export interface Reference {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$/;

export function tryParseReference(text: string): Reference | undefined {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    // Docker validates the digest itself (go-digest): sha256 needs 64 lowercase hex digits.
    if (!isDigest(digest)) return undefined;
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return undefined;
  }
  if (rest === '') return undefined;
  const parts = rest.split('/');
  let domain = 'docker.io';
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || /[A-Z]/.test(first))) {
    if (!DOMAIN.test(first)) return undefined;
    domain = first;
    parts.shift();
  }
  if (!parts.every((p) => COMPONENT.test(p))) return undefined;
  if (domain === 'index.docker.io') domain = 'docker.io';
  if (domain === 'docker.io' && parts.length === 1) parts.unshift('library');
  const ref: Reference = {domain, path: parts.join('/')};
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** Why `text` is not a reference by docker's grammar (distribution/reference), in words; undefined when it is one. */
export function referenceProblem(text: string): string | undefined {
  if (tryParseReference(text)) return undefined;
  if (text === '') return 'it is empty';
  const at = text.indexOf('@');
  const name = at >= 0 ? text.slice(0, at) : text;
  if (at >= 0) {
    const digest = text.slice(at + 1);
    if (!isDigest(digest)) return `"${digest}" is not a digest (sha256: and 64 lowercase hex digits)`;
  }
  const colon = name.lastIndexOf(':');
  const tag = colon > name.lastIndexOf('/') ? name.slice(colon + 1) : undefined;
  const repository = tag === undefined ? name : name.slice(0, colon);
  if (tag !== undefined) {
    if (tag.length > 128) return `the tag is ${tag.length} characters long (at most 128)`;
    if (!TAG.test(tag)) return `the tag "${tag}" may hold only letters, digits, _ . and - (and not start with . or -)`;
  }
  if (repository === '') return 'it has no repository name';
  const parts = repository.split('/');
  const first = parts[0]!;
  const hasDomain = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasDomain && !DOMAIN.test(first)) return `"${first}" is not a registry host[:port]`;
  const path = hasDomain ? parts.slice(1) : parts;
  if (path.some((p) => /[A-Z]/.test(p))) return 'repository names must be lowercase';
  const bad = path.find((p) => !COMPONENT.test(p));
  if (bad !== undefined) return `"${bad}" is not a valid repository path component (lowercase letters, digits, and . _ __ - between them)`;
  return 'it does not follow docker\'s reference grammar';
}

export function parseReference(text: string): Reference {
  const ref = tryParseReference(text);
  if (!ref) throw new UsageError(`invalid image reference "${text}": ${referenceProblem(text)}`);
  return ref;
}

/** Adds `:latest` when neither tag nor digest is given (docker's TagNameOnly). */
export function withDefaultTag(ref: Reference): Reference {
  return ref.tag === undefined && ref.digest === undefined ? {...ref, tag: 'latest'} : ref;
}

export function fullName(ref: Reference): string {
  return `${ref.domain}/${ref.path}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

export function familiarName(ref: Reference): string {
  let name = `${ref.domain}/${ref.path}`;
  if (ref.domain === 'docker.io') name = ref.path.startsWith('library/') && ref.path.split('/').length === 2 ? ref.path.slice(8) : ref.path;
  return `${name}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** The repository part in familiar form, as `repositories` keys use it. */
export function familiarRepository(ref: Reference): string {
  return familiarName({domain: ref.domain, path: ref.path});
}

/** True when two spellings name the same image (demo:1 ≡ docker.io/library/demo:1). */
export function sameReference(a: string, b: string): boolean {
  if (a === b) return true;
  const ra = tryParseReference(a);
  const rb = tryParseReference(b);
  if (!ra || !rb) return false;
  return fullName(withDefaultTag(ra)) === fullName(withDefaultTag(rb));
}
