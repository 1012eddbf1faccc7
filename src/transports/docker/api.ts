import {FerryError, UsageError} from '../../errors.js';
import {parseJson} from '../../model/config.js';
import {isRecord} from '../../model/descriptor.js';
import {RegistryClient} from './client.js';
import {eraseCredential, storeCredential} from './credentials.js';
import type {RegistryOptions} from './options.js';
import {parseRegistryRef, type RegistryRef} from './reference.js';
import {MANIFEST_ACCEPT, pullScope} from './source.js';

/** A tags/list page is small; one this big is not a registry's answer. */
const MAX_TAGS_PAGE_BYTES = 16 << 20;
const MAX_TAGS_PAGES = 10_000;

/** `REPO` or `docker://REPO` (a tag or digest is refused: a repository is listed). */
export function parseRepository(text: string): RegistryRef {
  const ref = parseRegistryRef(text);
  const body = text.replace(/^docker:\/\//, '');
  if (ref.digest !== undefined || /:[\w][\w.-]*$/.test(body.slice(body.lastIndexOf('/') + 1))) throw new UsageError(`"${text}": name a repository, without a tag or digest`);
  return ref;
}

/**
 * A list the registry hands out in pages (`tags`, `repositories`), following `Link: <…>; rel="next"`
 * on the same host; each page capped, a loop refused.
 */
async function pagedList(client: RegistryClient, first: string, key: 'tags' | 'repositories', scopes: string[], what: string): Promise<string[]> {
  const items: string[] = [];
  const visited = new Set<string>();
  let target: string | URL = first;
  for (let page = 0; page < MAX_TAGS_PAGES; page++) {
    const res = await client.request({method: 'GET', target, scopes, ok: [200], what, followRedirects: true});
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_TAGS_PAGE_BYTES) {
        res.body.destroy();
        throw new FerryError('LIMIT_EXCEEDED', `${what}: a page of the list is over ${MAX_TAGS_PAGE_BYTES} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    const parsed = parseJson(Buffer.concat(chunks), what);
    const list = isRecord(parsed) ? parsed[key] : undefined;
    // A repository without tags answers `"tags": null`.
    if (!isRecord(parsed) || !(list === null || list === undefined || (Array.isArray(list) && list.every((t) => typeof t === 'string')))) {
      throw new FerryError('REGISTRY', `${what}: the registry's answer has no list of ${key}`);
    }
    items.push(...((list as string[] | null | undefined) ?? []));
    const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(String(res.headers.link ?? ''))?.[1];
    if (!next) return [...new Set(items)];
    const url = new URL(next, res.url);
    if (url.host !== res.url.host) throw new FerryError('REGISTRY', `${what}: the next page is on another host (${url.host}); refused`);
    if (visited.has(url.toString())) throw new FerryError('REGISTRY', `${what}: the registry's pages loop`);
    visited.add(url.toString());
    target = url;
  }
  throw new FerryError('REGISTRY', `${what}: more than ${MAX_TAGS_PAGES} pages`);
}

/**
 * Every tag of a repository (GET /v2/NAME/tags/list), following the `Link: <…>; rel="next"` pages
 * registries hand out (distribution 2.8 ignores `n`/`last` and answers in one page).
 */
export async function listTags(repository: string, options: RegistryOptions): Promise<{repository: string; tags: string[]}> {
  const ref = parseRepository(repository);
  const client = new RegistryClient(ref.registry, options);
  try {
    const tags = await pagedList(client, `/v2/${ref.repository}/tags/list?n=1000`, 'tags', [pullScope(ref.repository)], `${ref.registry}/${ref.repository}: tags`);
    return {repository: `${ref.registry}/${ref.repository}`, tags};
  } finally {
    client.close();
  }
}

/**
 * `docker login`: the credentials are checked against the registry (GET /v2/, answering its Basic
 * or token challenge with them), then stored where docker keeps them. Returns where they went.
 */
export async function login(host: string, credential: {username: string; password: string}, options: RegistryOptions): Promise<{registry: string; storedIn: string}> {
  const registry = registryHost(host);
  const client = new RegistryClient(registry, {...options, credentials: credential, retries: options.retries ?? 2});
  try {
    const res = await client.request({method: 'GET', target: '/v2/', scopes: [], ok: [200], what: `login to ${registry}`});
    res.body.resume();
  } finally {
    client.close();
  }
  return {registry, storedIn: await storeCredential(registry, credential, options)};
}

/** `docker logout`: forgets the host's credential; false when there was none. */
export function logout(host: string, options: RegistryOptions): Promise<boolean> {
  return eraseCredential(registryHost(host), options);
}

/** A registry named as users write it for login: `host[:port]`, a URL, or docker.io. */
export function registryHost(text: string): string {
  let host = text.trim();
  if (/^https?:\/\//.test(host)) host = new URL(host).host;
  host = host.replace(/\/+$/, '');
  if (host === '' || host.includes('/') || /\s/.test(host)) throw new UsageError(`"${text}": name a registry host, like registry.example:5000`);
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}

/**
 * Every repository of a registry (GET /v2/_catalog, following its `Link` pages), those below
 * `prefix` when one is given. Registries may refuse the catalog (401/404): then the caller must name
 * the repositories.
 */
export async function listRepositories(registry: string, prefix: string, options: RegistryOptions): Promise<string[]> {
  const client = new RegistryClient(registry, options);
  try {
    const repositories = await pagedList(client, '/v2/_catalog?n=1000', 'repositories', ['registry:catalog:*'], `${registry}: catalog`);
    return repositories.filter((r) => prefix === '' || r === prefix || r.startsWith(`${prefix}/`)).sort();
  } finally {
    client.close();
  }
}

/**
 * Makes sure `repository` of `registry` holds each blob: HEAD, else a mount from one of the
 * repositories it is known to be in. Returns the digests it could not find (nothing is uploaded).
 */
export async function ensureBlobsPresent(registry: string, repository: string, blobs: ReadonlyArray<{digest: string; from: readonly string[]}>, options: RegistryOptions): Promise<string[]> {
  const client = new RegistryClient(registry, options);
  const missing: string[] = [];
  try {
    for (const {digest, from} of blobs) {
      const what = `${registry}/${repository}: blob ${digest}`;
      const head = await client.request({method: 'HEAD', target: `/v2/${repository}/blobs/${digest}`, scopes: [`repository:${repository}:pull,push`], ok: [200, 404], what, followRedirects: true});
      head.body.resume();
      if (head.status === 200) continue;
      let mounted = false;
      for (const source of from.filter((r) => r !== repository)) {
        const res = await client.request({method: 'POST', target: `/v2/${repository}/blobs/uploads/?mount=${digest}&from=${encodeURIComponent(source)}`, headers: {'Content-Length': '0'}, scopes: [`repository:${repository}:pull,push`, `repository:${source}:pull`], ok: [201, 202], what});
        res.body.resume();
        if (res.status === 201) {
          mounted = true;
          break;
        }
        // 202: the registry opened an upload instead; it expires unused.
      }
      if (!mounted) missing.push(digest);
    }
    return missing;
  } finally {
    client.close();
  }
}

/** The digest a registry serves for a reference (HEAD on the manifest), for checking what was pushed. */
export async function manifestDigest(text: string, options: RegistryOptions): Promise<string | undefined> {
  const ref = parseRegistryRef(text);
  const client = new RegistryClient(ref.registry, options);
  try {
    const res = await client.request({method: 'HEAD', target: `/v2/${ref.repository}/manifests/${ref.digest ?? ref.tag ?? 'latest'}`, headers: {Accept: MANIFEST_ACCEPT}, scopes: [pullScope(ref.repository)], ok: [200, 404], what: `${text}: manifest`, followRedirects: true});
    res.body.resume();
    const digest = res.headers['docker-content-digest'];
    return res.status === 200 && typeof digest === 'string' ? digest : undefined;
  } finally {
    client.close();
  }
}
