import {FerryError, UsageError} from '../../errors.js';
import {hasDockerManifest, readDockerArchive} from '../../formats/docker-archive/read.js';
import type {ArchiveEntry, ReadResult} from '../../model/image.js';
import type {Compression} from '../../model/media-types.js';
import {fullName, parseReference, referenceProblem, tryParseReference} from '../../model/reference.js';
import {DEFAULT_DAEMON_HOST, type DaemonOptions} from '../../settings.js';
import {containerProblems, openStream} from '../local.js';
import type {ArchiveWriter, IndexPolicy, ReadOptions, Transport} from '../types.js';
import {apiAtLeast, type DaemonInfo} from './api-version.js';
import type {DaemonClient} from './client.js';

/**
 * `docker-daemon:NAME[:TAG]` or `docker-daemon:IMAGE_ID` (skopeo's spelling) — an image in a Docker
 * Engine API daemon (dockerd, or the podman service). Read: `docker save`'s stream, spooled once and
 * read like any docker-archive. Written: `docker load`, the archive streamed to the daemon as it is
 * made, in the layout and compressions that daemon version loads (docs/daemons.md).
 */

const IMAGE_ID = /^(?:sha256:)?[a-f0-9]{12,64}$/;

/** The Engine API client is loaded when a daemon is first reached: local commands never load node's http and https. */
async function openDaemonClient(daemon: DaemonOptions): Promise<DaemonClient> {
  return new (await import('./client.js')).DaemonClient(daemon);
}

/** `docker save NAME...` read as an archive: the daemon's stream spooled to a temp file, indexed, read. */
export async function readDaemon(names: readonly string[], options: ReadOptions): Promise<ReadResult & {close(): Promise<void>}> {
  const client = await openDaemonClient(options.settings.daemon);
  const label = names.map((n) => `docker-daemon:${n}`).join(', ');
  try {
    const body = await client.save(names);
    const local = await openStream(body, label, options);
    try {
      if (!local.tree || !(await hasDockerManifest(local.tree))) throw new FerryError('DAEMON', `${label}: the daemon's save is not a docker-archive`);
      const result = await readDockerArchive(local.tree, {limits: options.settings.limits});
      const problems = [...containerProblems(local, {transport: 'docker-archive', path: label, text: label}), ...result.problems];
      return {...result, problems, close: () => local.input.dispose()};
    } catch (e) {
      await local.input.dispose();
      throw e;
    }
  } finally {
    client.close();
  }
}

/** Compressions a daemon loads as they are: podman every one ferry writes; docker gzip and plain, zstd from 23.0 (API 1.42). */
function daemonAccepts(info: DaemonInfo, compression: Compression): boolean {
  if (compression === 'none' || compression === 'gzip') return true;
  if (compression === 'zstd') return info.engine === 'podman' || apiAtLeast(info, '1.42');
  return info.engine === 'docker' && (compression === 'bzip2' || compression === 'xz');
}

/** Docker ≤ 24 (API < 1.44) gets the layout it writes itself; Docker 25+ and podman the OCI one. */
function legacyFor(info: DaemonInfo): boolean {
  return info.engine === 'docker' && !apiAtLeast(info, '1.44');
}

/**
 * Loads entries into the daemon. The names the load will set are looked up first; when the daemon
 * refuses the archive part way (docker after loading the images before the bad one, podman with
 * one error and no word of what it kept), each name that now names another image than before is
 * removed again or pointed back at the image it named, so a failure leaves no half-loaded name.
 */
async function loadEntries(client: DaemonClient, info: DaemonInfo, entries: readonly ArchiveEntry[], options: Parameters<ArchiveWriter['write']>[2]): Promise<Awaited<ReturnType<ArchiveWriter['write']>>> {
  const layout = legacyFor(info) ? 'legacy' : 'oci';
  // The writer is loaded on first use (a read never loads it).
  const [{dockerArchiveMembers, repoTags}, {streamTar}] = await Promise.all([import('../../formats/docker-archive/write.js'), import('../../io/fs/members.js')]);
  // podman reads a short RepoTag (app:1) as localhost/app:1, though its API otherwise gives short
  // names docker.io: manifest.json names full names, so an image is docker.io/app:1 however named.
  const built = await dockerArchiveMembers(entries, {...options, layout, fullRepoTags: info.engine === 'podman'});
  const members = built.members;
  // Full names: exact in both engines (podman would resolve a short one to localhost/ first).
  const names = [...new Set(entries.flatMap((e) => repoTags(e.names)).map((t) => fullName(parseReference(t))))];
  const before = new Map<string, string | undefined>();
  for (const name of names) before.set(name, (await client.inspectImage(name))?.id);
  let bytes = 0;
  const archive = streamTar(members, {...options, onBytes: (n) => {
    bytes += n;
    options.onBytes?.(n);
  }});
  try {
    const loaded = await client.load(archive, `docker-daemon:${client.where}`);
    return {...built.result, bytes, loaded};
  } catch (e) {
    for (const [name, previous] of before) {
      const now = await client.inspectImage(name).then((i) => i?.id, () => previous);
      if (now === previous) continue;
      const colon = name.lastIndexOf(':');
      if (previous === undefined) await client.removeImage(name).catch(() => {});
      else await client.tagImage(previous, name.slice(0, colon), name.slice(colon + 1)).catch(() => {});
    }
    throw e;
  }
}

function daemonWriter(daemon: DaemonOptions): ArchiveWriter {
  let client: DaemonClient | undefined;
  let info: DaemonInfo | undefined;
  const known = (): DaemonInfo => {
    if (!info) throw new FerryError('DAEMON', 'internal: the daemon writer was used before prepare()');
    return info;
  };
  return {
    format: 'docker-daemon',
    output: 'remote',
    keepsManifests: false,
    get indexes(): IndexPolicy {
      return legacyFor(known()) ? 'one' : 'keep+primary';
    },
    accepts: (c) => daemonAccepts(known(), c),
    async prepare() {
      client ??= await openDaemonClient(daemon);
      info ??= await client.info();
    },
    async write(entries, _target, o) {
      await this.prepare!();
      try {
        return await loadEntries(client!, known(), entries, o);
      } finally {
        client!.close();
      }
    },
  };
}

export const dockerDaemon: Transport = {
  name: 'docker-daemon',
  usage: 'docker-daemon:NAME[:TAG]|IMAGE_ID',
  destination: 'docker-daemon:[NAME[:TAG]]',
  parse(rest, text) {
    if (rest === '') return {transport: 'docker-daemon', path: '', text};
    if (IMAGE_ID.test(rest)) return {transport: 'docker-daemon', path: rest, text};
    if (rest.includes('@')) throw new UsageError(`"${text}": a daemon names images by NAME[:TAG] or image ID, not by digest`);
    if (!tryParseReference(rest)) throw new UsageError(`"${text}": not an image name or ID: ${referenceProblem(rest)}`);
    // As a destination the name is the one the loaded image gets (writeArchive's `:NAME` rule).
    return {transport: 'docker-daemon', path: rest, name: rest, text};
  },
  remote: {
    async read(ref, options) {
      if (ref.path === '') throw new UsageError(`"${ref.text}": name an image: docker-daemon:NAME[:TAG] or docker-daemon:IMAGE_ID`);
      return readDaemon([ref.path], options);
    },
  },
  writer: (_ref, options) => daemonWriter(options.daemon ?? {host: DEFAULT_DAEMON_HOST}),
};
