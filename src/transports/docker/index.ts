import {UsageError} from '../../errors.js';
import type {RegistryOptions} from '../../settings.js';
import type {Transport} from '../types.js';
import type {RegistryClient} from './client.js';
import {DEFAULT_JOBS} from './options.js';
import {formatRegistryRef, parseRegistryRef} from './reference.js';
import {readRegistry} from './source.js';

/** The HTTP client is loaded when a registry is first reached: local commands never load node's http, https and tls. */
async function openRegistryClient(registry: string, options: RegistryOptions): Promise<RegistryClient> {
  return new (await import('./client.js')).RegistryClient(registry, options);
}

/**
 * `docker://[HOST[:PORT]/]REPO[:TAG|@DIGEST]` — an image in a registry (the OCI distribution API),
 * read as a source (manifests and configs at once, layers on demand) and written as a destination
 * (a push: blobs, then manifests children first, then the tag). docs/registries.md.
 */
export const docker: Transport = {
  name: 'docker',
  usage: 'docker://[HOST[:PORT]/]REPO[:TAG|@DIGEST]',
  parse(rest, text) {
    if (!rest.startsWith('//')) throw new UsageError(`"${text}": a registry reference is written docker://[HOST/]REPO[:TAG|@DIGEST]`);
    const ref = parseRegistryRef(`docker:${rest}`);
    // A pinned `name:tag@digest` keeps its tag: the image is read by the digest and named by the tag.
    const path = ref.tag !== undefined && ref.digest !== undefined ? `${ref.registry}/${ref.repository}:${ref.tag}@${ref.digest}` : formatRegistryRef(ref);
    return {transport: 'docker', path, text};
  },
  remote: {
    async read(ref, options) {
      const registryRef = parseRegistryRef(`docker://${ref.path}`);
      const client = await openRegistryClient(registryRef.registry, options.settings.registry);
      try {
        const known = options.settings.registry.knownBlobs;
        const result = await readRegistry(registryRef, client, {limits: options.settings.limits, jobs: options.settings.registry.jobs ?? DEFAULT_JOBS, ...(options.referrers ? {referrers: true} : {}), ...(known ? {knownBlobs: known} : {})});
        return {...result, close: async () => client.close()};
      } catch (e) {
        client.close();
        throw e;
      }
    },
  },
  writer: (ref, options) => ({
    format: 'docker',
    output: 'remote',
    namedByReference: true,
    indexes: 'keep',
    // A registry stores any blob; what its pullers load as it is: gzip, zstd and plain tars.
    accepts: (c) => c === 'none' || c === 'gzip' || c === 'zstd',
    canMount: (blob) => blob.origin !== undefined && blob.origin.registry === parseRegistryRef(`docker://${ref.path}`).registry,
    async write(entries, _target, o) {
      const registryRef = parseRegistryRef(`docker://${ref.path}`);
      // Blobs read from another repository of this registry (recorded in knownBlobs as they were read) are mounted from there.
      const registry = options.registry ?? {};
      const client = await openRegistryClient(registryRef.registry, registry);
      try {
        const {pushEntries} = await import('./push.js');
        return await pushEntries(entries, registryRef, client, {registry, ...(o.manifestFormat ? {manifestFormat: o.manifestFormat} : {}), ...(o.omitBlobs ? {omitBlobs: o.omitBlobs} : {}), ...(o.trackBlob ? {trackBlob: o.trackBlob} : {}), ...(o.onBytes ? {onBytes: o.onBytes} : {}), ...(o.signal ? {signal: o.signal} : {})});
      } finally {
        client.close();
      }
    },
  }),
};
