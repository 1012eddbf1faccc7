import {describeError, FerryError, UsageError} from '../errors.js';
import {isArtifact, referrersAmong, type Archive, type ArchiveEntry} from '../model/image.js';
import {tryParseReference, withDefaultTag} from '../model/reference.js';
import {resolveSettings, type Settings} from '../settings.js';
import {listTags as listRegistryTags, login as registryLogin, logout as registryLogout} from '../transports/docker/api.js';
import {formatRegistryRef, parseRegistryRef} from '../transports/docker/reference.js';
import {openArchive, parseDestination, parseTransportRef} from '../transports/table.js';
import {selectEntries} from './select.js';
import {writeArchive, type TransferSummary, type WriteOptions, type WriteSummary} from './write-archive.js';
import {writeReportFile} from '../io/fs/atomic.js';

/**
 * The registry shorthands docker users reach for: pull, push, tags, login, logout. Both transfers
 * keep manifest, index and config bytes (writeArchive's keepDigests), take several images at once
 * (blobs once), and with keepGoing finish what they can: the promise then resolves, and each
 * reference that failed carries its `error` (the CLI exits 1).
 */

/** One reference of a bulk transfer: what it named, and the digest it moved or why it failed. */
export interface TransferItem {
  ref: string;
  digest?: string;
  error?: string;
}

export interface RegistryTransferOptions extends WriteOptions {
  /** Carry on past a reference that fails; the summary (and report) say which. */
  keepGoing?: boolean;
  /** Write a JSON report ({ref, digest} or {ref, error} per reference) to this file. */
  report?: string;
  /** Also copy the signatures, SBOMs and attestations that refer to the images. */
  referrers?: boolean;
  /** What a SOURCE of `-` reads (push). */
  stdin?: NodeJS.ReadableStream;
}

export interface PullSummary extends WriteSummary {
  refs: TransferItem[];
}

export interface PushSummary {
  refs: TransferItem[];
  rewritten: Array<{from: string; to: string}>;
  transfer: TransferSummary;
}

/** `alpine:3.20` or `docker://alpine:3.20` → `docker://alpine:3.20`, checked (a bad name is a usage error). */
export function registrySource(text: string): string {
  const withPrefix = text.startsWith('docker://') ? text : `docker://${text}`;
  parseRegistryRef(withPrefix);
  return withPrefix;
}

/** A pull's or save's DEST: a transport reference, or a path meaning docker-archive:PATH (what every consumer loads). */
export function archiveDestination(text: string): string {
  return parseTransportRef(text).transport === undefined ? `docker-archive:${text}` : text;
}

function withRunState(options: RegistryTransferOptions): {settings: Settings; retries: () => number} {
  const settings = resolveSettings(options.settings);
  let retries = 0;
  const registry = {
    ...settings.registry,
    knownBlobs: settings.registry.knownBlobs ?? new Map<string, string>(),
    onRetry: (message: string): void => {
      retries++;
      settings.registry.onRetry?.(message);
    },
  };
  return {settings: {...settings, registry}, retries: () => retries};
}

async function writeReport(file: string | undefined, items: readonly TransferItem[]): Promise<void> {
  if (file === undefined) return;
  await writeReportFile(file, `${JSON.stringify(items, null, 2)}\n`);
}

/** A reference's failure as a note: its error already names the reference (as ferry writes it), else the reference goes first. */
function failureNote(ref: string, error: string): string {
  const bare = ref.replace(/^docker:\/\//, '');
  let canonical = bare;
  try {
    canonical = formatRegistryRef(parseRegistryRef(`docker://${bare}`));
  } catch {
    // not a registry reference (a push SOURCE): compared as written
  }
  return error.startsWith(`${bare}:`) || error.startsWith(`${canonical}:`) ? error : `${ref}: ${error}`;
}

/** A run that stopped: the report still says what was done, and the reference in flight carries the error. */
async function reportFailure(file: string | undefined, items: TransferItem[], error: unknown): Promise<void> {
  if (file === undefined) return;
  const current = items.at(-1);
  if (current && current.digest === undefined && current.error === undefined) current.error = describeError(error);
  await writeReport(file, items).catch(() => {});
}

function failure(items: readonly TransferItem[]): FerryError | undefined {
  const failed = items.filter((i) => i.error !== undefined);
  if (failed.length === 0) return undefined;
  return new FerryError('REGISTRY', failed.length === 1 ? failed[0]!.error! : `${failed.length} of ${items.length} references failed: ${failed.map((f) => f.ref).join(', ')} (first: ${failed[0]!.error})`);
}

/**
 * `ferry pull REF... DEST`: every reference read from its registry (manifests checked against their
 * digests), then written as one archive — each blob fetched once, beside DEST so a killed pull
 * continues where it stopped. With keepGoing, references that fail are left out (and the run fails
 * after writing the rest).
 */
export async function pullImages(refs: readonly string[], destination: string, options: RegistryTransferOptions = {}): Promise<PullSummary> {
  if (refs.length === 0) throw new UsageError('name at least one image to pull');
  const sources = refs.map(registrySource);
  const dest = archiveDestination(destination);
  parseDestination(dest);
  const {settings, retries} = withRunState(options);
  const items: TransferItem[] = [];
  const archives: Archive[] = [];
  const byDigest = new Map<string, ArchiveEntry>();
  const entries: ArchiveEntry[] = [];
  try {
    for (const [i, source] of sources.entries()) {
      const item: TransferItem = {ref: refs[i]!};
      items.push(item);
      try {
        const archive = await openArchive(source, {settings, ...(options.stdin ? {stdin: options.stdin} : {}), ...(options.referrers ? {referrers: true} : {})});
        archives.push(archive);
        if (!archive.entries.some((e) => !isArtifact(e.root))) options.note?.(`${item.ref}: an artifact (${archive.entries.map((e) => (isArtifact(e.root) ? e.root.artifactType : '')).join(', ')}), not a runnable image: written as content`);
        for (const entry of archive.entries) {
          const digest = entry.descriptor?.digest;
          if (!isArtifact(entry.root) && digest !== undefined) item.digest = digest;
          // The same image under two references is one entry with both names (its blobs once).
          const same = digest === undefined ? undefined : byDigest.get(digest);
          if (same) same.names = [...new Set([...same.names, ...entry.names])];
          else {
            const copy = {...entry, names: [...entry.names]};
            if (digest !== undefined) byDigest.set(digest, copy);
            entries.push(copy);
          }
        }
      } catch (e) {
        if (!options.keepGoing || e instanceof UsageError) throw e;
        item.error = describeError(e);
        options.note?.(failureNote(item.ref, item.error));
      }
    }
    if (entries.length === 0) throw failure(items) ?? new FerryError('NOT_FOUND', 'nothing to pull');
    const summary = await writeArchive(dest, entries, {...options, settings, keepDigests: true});
    if (summary.transfer) summary.transfer.retries += retries();
    // The digest each reference now has in DEST (a --platform pick makes a new index).
    for (const item of items) {
      const to = summary.rewritten.find((r) => r.from === item.digest)?.to;
      if (to !== undefined) item.digest = to;
    }
    await writeReport(options.report, items);
    // With keepGoing the failures are in refs (and the report): the rest was written.
    return {...summary, refs: items};
  } catch (e) {
    await reportFailure(options.report, items, e);
    throw e;
  } finally {
    for (const archive of archives) await archive.close();
  }
}

export interface PushOptions extends RegistryTransferOptions {
  /** The images of the sources to push (by name, ID or digest; default: all, which needs `all` when several). */
  images?: string[];
  /**
   * Push every selected image under its own names, with TARGET a registry (and path prefix) they move
   * into: docker.io/library/alpine:3.20 → TARGET/library/alpine:3.20.
   */
  all?: boolean;
}

/** `HOST[:PORT][/PREFIX]` for push --all: the registry (and path) images are re-homed under. */
function parsePrefix(text: string): {registry: string; prefix: string} {
  const body = text.replace(/^docker:\/\//, '').replace(/\/+$/, '');
  const [registry, ...rest] = body.split('/');
  if (!registry || !(registry.includes('.') || registry.includes(':') || registry.startsWith('localhost'))) {
    throw new UsageError(`"${text}": with --all, name the registry the images go to (HOST[:PORT][/PREFIX]); each keeps its own repository path and tag below it`);
  }
  const prefix = rest.join('/');
  if (prefix !== '' && !/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(prefix)) throw new UsageError(`"${text}": "${prefix}" is not a repository path (lowercase letters, digits, . _ - and /)`);
  return {registry, prefix};
}

/** Where `push --all` puts an image named `name` below TARGET (`HOST[:PORT][/PREFIX]`); undefined for a name that is no reference. */
export function pushTarget(name: string, target: string): string | undefined {
  return rehome(name, parsePrefix(target));
}

/** Where an image named `name` goes under a prefix: the repository path and tag kept, the registry replaced. */
function rehome(name: string, target: {registry: string; prefix: string}): string | undefined {
  const ref = tryParseReference(name);
  if (!ref || ref.digest !== undefined) return undefined;
  const tagged = withDefaultTag(ref);
  return `${target.registry}/${target.prefix ? `${target.prefix}/` : ''}${tagged.path}:${tagged.tag}`;
}

/**
 * `ferry push SOURCE... TARGET`: one image (picked with `images` when the sources hold several) to
 * the reference TARGET, or with `all` every image under its own names below TARGET. Blobs the
 * registry has are skipped (HEAD), blobs pushed to one repository are mounted into the next, and
 * manifests keep their bytes: the digests the source names are the ones the registry serves.
 */
export async function pushImages(sources: readonly string[], target: string, options: PushOptions = {}): Promise<PushSummary> {
  if (sources.length === 0) throw new UsageError('name an archive (or image) to push');
  const prefix = options.all ? parsePrefix(target) : undefined;
  const single = prefix ? undefined : registrySource(target);
  const {settings, retries} = withRunState(options);
  const items: TransferItem[] = [];
  const archives: Archive[] = [];
  const rewritten: PushSummary['rewritten'] = [];
  const transfer: TransferSummary = {fetchedBytes: 0, reusedBytes: 0, uploadedBytes: 0, skippedBytes: 0, uploaded: 0, skipped: 0, mounted: 0, retries: 0};
  const add = (summary: WriteSummary): void => {
    rewritten.push(...summary.rewritten);
    for (const key of Object.keys(transfer) as Array<keyof TransferSummary>) transfer[key] += summary.transfer?.[key] ?? 0;
  };
  /** [target reference, entries to push there] in order. */
  const plan: Array<{ref: string; label: string; entries: ArchiveEntry[]}> = [];
  try {
    for (const source of sources) {
      const archive = await openArchive(source, {settings, ...(options.stdin ? {stdin: options.stdin} : {}), ...(options.referrers ? {referrers: true} : {})});
      archives.push(archive);
      const selected = await selectEntries(archive, options.images ?? []);
      const images = selected.filter((e) => !isArtifact(e.root));
      if (!prefix) {
        plan.push({ref: single!, label: target, entries: selected});
        continue;
      }
      for (const entry of images) {
        const companions = referrersAmong(archive, [entry]);
        const names = entry.names.map((n) => rehome(n, prefix)).filter((n): n is string => n !== undefined);
        if (names.length === 0) {
          items.push({ref: `${source} (an image without a name)`, error: `${source}: an image has no name to push it under (--all keeps each image's own name); push it alone to a reference`});
          continue;
        }
        for (const name of [...new Set(names)]) plan.push({ref: `docker://${name}`, label: name, entries: [entry, ...companions]});
      }
    }
    if (!prefix) {
      const entries = plan.flatMap((p) => p.entries);
      const count = entries.filter((e) => !isArtifact(e.root)).length;
      if (count !== 1) throw new UsageError(`${sources.join(' ')}: ${count} images selected for one reference: pick one with --image, or push each under its own name with --all (TARGET is then a registry)`);
      plan.splice(0, plan.length, {ref: single!, label: target, entries: [...new Set(entries)]});
    }
    for (const step of plan) {
      const item: TransferItem = {ref: step.label};
      items.push(item);
      try {
        const summary = await writeArchive(step.ref, step.entries, {...options, settings, keepDigests: true});
        if (summary.digest !== undefined) item.digest = summary.digest;
        add(summary);
      } catch (e) {
        if (!options.keepGoing || e instanceof UsageError) throw e;
        item.error = describeError(e);
        options.note?.(failureNote(item.ref, item.error));
      }
    }
    transfer.retries += retries();
    await writeReport(options.report, items);
    return {refs: items, rewritten, transfer};
  } catch (e) {
    await reportFailure(options.report, items, e);
    throw e;
  } finally {
    for (const archive of archives) await archive.close();
  }
}

/** `ferry tags REPO`: every tag of a repository. */
export function listTags(repository: string, options: {settings?: WriteOptions['settings']} = {}): Promise<{repository: string; tags: string[]}> {
  return listRegistryTags(repository, resolveSettings(options.settings).registry);
}

/** `ferry login HOST`: checks the credentials against the registry, then stores them as docker login does. */
export function login(host: string, credential: {username: string; password: string}, options: {settings?: WriteOptions['settings']} = {}): Promise<{registry: string; storedIn: string}> {
  return registryLogin(host, credential, resolveSettings(options.settings).registry);
}

/** `ferry logout HOST`: forgets the stored credential; false when there was none. */
export function logout(host: string, options: {settings?: WriteOptions['settings']} = {}): Promise<boolean> {
  return registryLogout(host, resolveSettings(options.settings).registry);
}
