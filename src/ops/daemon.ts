import {UsageError} from '../errors.js';
import {isArtifact} from '../model/image.js';
import {fullName, referenceProblem, sameReference, tryParseReference, withDefaultTag} from '../model/reference.js';
import {resolveSettings} from '../settings.js';
import {readDaemon} from '../transports/docker-daemon/index.js';
import {openArchive} from '../transports/table.js';
import {archiveDestination} from './registry.js';
import {selectEntries} from './select.js';
import {writeArchive, type WriteOptions, type WriteSummary} from './write-archive.js';

/**
 * `ferry load` and `ferry save`: docker load and docker save without the docker CLI, for any form
 * ferry reads or writes, against dockerd or the podman service (settings.daemon).
 */

export interface LoadOptions extends Omit<WriteOptions, 'tags'> {
  /** Load only the images matching these names, IDs or digests (default all). */
  images?: string[];
  /** Names added to the one image loaded, as `docker tag` would (its own names stay). */
  tags?: string[];
  stdin?: NodeJS.ReadableStream;
}

/**
 * Loads every selected image of SOURCE into the daemon, in what that daemon loads (the layout and
 * compressions of its version: src/transports/docker-daemon/index.ts). An OCI layout's names
 * (io.containerd.image.name, else a full ref.name) become the loaded image's names.
 */
export async function loadImages(source: string, options: LoadOptions = {}): Promise<WriteSummary> {
  const added = (options.tags ?? []).map((tag) => {
    const ref = tryParseReference(tag);
    if (!ref || ref.digest !== undefined) throw new UsageError(`invalid --tag "${tag}": ${ref ? 'a digest cannot name a loaded image' : referenceProblem(tag)}`);
    return fullName(withDefaultTag(ref));
  });
  const settings = resolveSettings(options.settings);
  const archive = await openArchive(source, {settings, ...(options.stdin ? {stdin: options.stdin} : {})});
  try {
    for (const w of archive.warnings) options.note?.(`warning: ${w}`);
    let entries = await selectEntries(archive, options.images ?? []);
    if (added.length > 0) {
      const images = entries.filter((e) => !isArtifact(e.root));
      if (images.length !== 1) throw new UsageError(`--tag names one image, but ${images.length} are selected: pick one with --image`);
      entries = entries.map((e) => (e === images[0] ? {...e, names: [...new Set([...e.names, ...added])]} : e));
    }
    const {tags: _tags, ...write} = options;
    void _tags;
    return await writeArchive('docker-daemon:', entries, {...write, settings});
  } finally {
    await archive.close();
  }
}

const IMAGE_ID = /^(?:sha256:)?[a-f0-9]{12,64}$/;

/** `asked` as written, without its tag or digest (`ferry-test/app` for `ferry-test/app:1`). */
function repositoryAsWritten(asked: string): string {
  const name = asked.replace(/@.*$/, '');
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(0, colon) : name;
}

/**
 * Whether the daemon's name `name` is one that `asked` asked for, as docker save and podman save
 * name what they write: the same reference (no tag: latest); every tag of a repository asked
 * without one (`docker save REPO` saves them all); and, for a name asked without a registry, the
 * daemon's own resolution of it under one (podman answers `app:1` with `localhost/app:1`).
 */
function answers(name: string, asked: string): boolean {
  if (sameReference(name, asked)) return true;
  const have = tryParseReference(name);
  const want = tryParseReference(asked);
  if (!have || !want || have.digest !== undefined || want.digest !== undefined) return false;
  if (want.tag === undefined && have.domain === want.domain && have.path === want.path) return true;
  if (asked.startsWith(`${want.domain}/`)) return false; // a registry was named: only it answers
  const written = repositoryAsWritten(asked);
  return (have.path === want.path || have.path === written) && have.tag === (want.tag ?? 'latest');
}

/**
 * `docker save NAME... DEST` into any form (a PATH is a docker-archive). The archive names exactly
 * the names asked for, as docker save does (an image asked for by ID is unnamed).
 */
export async function saveImages(names: readonly string[], destination: string, options: WriteOptions = {}): Promise<WriteSummary> {
  if (names.length === 0) throw new UsageError('name at least one image to save');
  for (const name of names) if (!IMAGE_ID.test(name) && !tryParseReference(name)) throw new UsageError(`"${name}": not an image name or ID: ${referenceProblem(name)}`);
  const settings = resolveSettings(options.settings);
  const saved = await readDaemon(names, {settings});
  try {
    const asked = names.filter((n) => !IMAGE_ID.test(n));
    const entries = saved.entries.map((e) => ({...e, names: e.names.filter((n) => asked.some((a) => answers(n, a)))}));
    return await writeArchive(archiveDestination(destination), entries, {...options, settings});
  } finally {
    await saved.close();
  }
}
