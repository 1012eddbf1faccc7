import {readdir, rm, rmdir} from 'node:fs/promises';
import path from 'node:path';
import type {Writable} from 'node:stream';
import pLimit from 'p-limit';
import {FerryError, TrailingDataError, UsageError} from '../errors.js';
import type {BlobJobResult} from '../io/blobs/jobs.js';
import {transcodeLayer} from '../io/blobs/jobs.js';
import {checkCompressionLevel} from '../io/compress/encoder.js';
import {BlobPool} from '../io/blobs/pool.js';
import {beginAtomicOutput, beginScratchOutput, beginStreamedOutput, transferCacheBeside, type AtomicOutput, type OutputKind} from '../io/fs/atomic.js';
import {fetchLayers, needsFetch, type FetchStats} from '../io/layers/fetch.js';
import {checkLayerContent, checkLayerContents} from '../io/layers/scan.js';
import {isScratchLayer, ScratchLayer} from '../io/layers/range-layer.js';
import {absentOf, artifactsOf, describeNode, imagesOf, isArtifact, isImageIndex, type ArchiveEntry, type Image, type ImageIndex, type IndexChild, type Layer, type Node} from '../model/image.js';
import {isNondistributable, layerMediaType, MediaType, type Compression} from '../model/media-types.js';
import {formatPlatform, hostPlatform, platformMatches, type Platform} from '../model/platform.js';
import {familiarName, fullName, referenceProblem, tryParseReference, withDefaultTag} from '../model/reference.js';
import {resolveSettings, type Settings, type SettingsInput} from '../settings.js';
import {DEFAULT_JOBS} from '../transports/docker/options.js';
import {openArchive, parseDestination, writerFor} from '../transports/table.js';
import type {ArchiveWriter, ManifestFormat, UploadStats} from '../transports/types.js';
import {replaceLayers} from '../model/swap.js';
import {silentProgress, type Progress} from './progress.js';

export interface WriteOptions {
  /** Layer compression: `keep` (default) copies blobs as they are where the destination's consumers load them. */
  compress?: 'keep' | 'gzip' | 'zstd' | 'none';
  /** The level of the layers ferry compresses: gzip 1–9 (default 6), zstd 1–19 (default 3). Another level gives other digests. */
  compressLevel?: number;
  /** docker-archive only: `oci` (default: OCI layout + manifest.json + repositories) or `legacy` (Docker ≤24). */
  dockerLayout?: 'oci' | 'legacy';
  /** Replace an existing destination. */
  force?: boolean;
  /** Pick this platform out of multi-platform indexes (the output then holds single images). */
  platform?: Platform;
  /** Several platforms: each index keeps those (a new index; its digest changes). With `platform`, both count. */
  platforms?: Platform[];
  /** Rewrite manifests and indexes into this vocabulary (their digests change, reported in `rewritten`). */
  manifestFormat?: ManifestFormat;
  /**
   * Refuse, instead of noting, a change of manifest bytes nobody asked for (a layer stored another way
   * because the destination cannot load it, the legacy layout that keeps no manifest): on for
   * transfers to and from registries, where `image@sha256:…` references must keep resolving.
   */
  keepDigests?: boolean;
  /** Never recompress: every blob is stored as it is, with a note where the form's consumers cannot load one (bundle parts). */
  keepBlobs?: boolean;
  /** Layer blobs the manifests list but the output does not store: the destination has them (a differential bundle). */
  omitBlobs?: ReadonlySet<string>;
  /** An index with no image for this machine still gets one in docker's manifest.json: its first (bundle parts made for other machines). */
  anyPrimary?: boolean;
  /** Layers stored with no manifest listing them here (a bundle part carrying some layers of an image another part completes). */
  looseLayers?: readonly Layer[];
  /** Names for the output; only with one entry. Replace the entry's own names. */
  tags?: string[];
  /** Notes for stderr; the caller decides whether to print them. */
  note?: (message: string) => void;
  /** Bytes done per phase (recompressing, writing); the CLI draws a bar from it. */
  progress?: Progress;
  signal?: AbortSignal;
  settings?: SettingsInput;
  /** Where a destination PATH of `-` goes (the CLI passes process.stdout; nothing is written to a stream not given). */
  stdout?: Writable;
}

export interface WriteSummary {
  format: string;
  path: string;
  images: number;
  blobs: number;
  bytes: number;
  /** The manifest or index digest the destination names (a registry reference). */
  digest?: string;
  /** Manifests and indexes written with new bytes (old → new digest). */
  rewritten: Array<{from: string; to: string}>;
  /** Bytes moved over the network and bytes that did not need to be. */
  transfer?: TransferSummary;
  /** What a daemon said it loaded (docker-daemon: destinations). */
  loaded?: string[];
}

/** What crossed the network: the upload counts (UploadStats) plus what a registry source fetched. */
export interface TransferSummary extends UploadStats {
  /** Layer bytes downloaded in this run, and found here from an earlier one. */
  fetchedBytes: number;
  reusedBytes: number;
}

/**
 * Writes `entries` to `destination` ('docker-archive:PATH' | 'oci-archive:PATH' | 'oci:DIR'; PATH
 * '-' = stdout for the tar forms). Steps: names normalised, platforms chosen, layers that must change
 * compression transcoded concurrently into scratch files beside the destination (source blob digest,
 * diffID and output digest checked in the same pass), then the format's writer copies every blob,
 * hashing it against its descriptor, into a temp name that is renamed into place only at the end.
 */
export async function writeArchive(destination: string, entries: ArchiveEntry[], options: WriteOptions = {}): Promise<WriteSummary> {
  const dest = parseDestination(destination);
  if (options.dockerLayout !== undefined && dest.transport !== 'docker-archive') throw new UsageError(`--docker-layout applies to docker-archive: destinations, not ${dest.transport}:`);
  if (options.compress !== undefined && !['keep', 'gzip', 'zstd', 'none'].includes(options.compress)) throw new UsageError(`invalid compression "${options.compress}": expected keep, gzip, zstd or none`);
  if (options.compressLevel !== undefined) checkCompressionLevel(options.compress, options.compressLevel);
  const settings = resolveSettings(options.settings);
  const writer = writerFor(dest, {...(options.dockerLayout ? {dockerLayout: options.dockerLayout} : {}), registry: settings.registry, daemon: settings.daemon});
  await writer.prepare?.();
  const note = options.note ?? ((): void => {});
  if (entries.length === 0 && !options.looseLayers?.length) throw new FerryError('NOT_FOUND', 'nothing to write: no image selected');
  const remote = writer.output === 'remote';
  const imageEntries = entries.filter((e) => !isArtifact(e.root)).length;
  if (writer.namedByReference && options.tags && options.tags.length > 0) throw new UsageError(`"${destination}" names the image in the registry; --tag names images in archives and daemons`);
  if (options.tags && options.tags.length > 0 && imageEntries !== 1) {
    throw new UsageError(`--tag names one image, but ${imageEntries} are selected: pick one with --image`);
  }
  // skopeo's destination suffix names the image: docker-archive:PATH:NAME is a tag, oci:DIR:REF and
  // oci-archive:PATH:REF the ref.name written as given (and the full name beside it when REF is one).
  if (dest.index !== undefined) throw new UsageError(`"${destination}": @INDEX picks an image of a source; a destination takes :NAME`);
  const suffix = dest.name;
  if (suffix !== undefined && options.tags && options.tags.length > 0) throw new UsageError(`"${destination}" names the image already; drop --tag or the :NAME suffix`);
  if (suffix !== undefined && imageEntries !== 1) throw new UsageError(`"${destination}" names one image, but ${imageEntries} are selected: pick one with --image`);
  const tags = suffix !== undefined && (writer.format === 'docker-archive' || tryParseReference(suffix)) ? [suffix] : options.tags;
  // A registry destination is named by its reference: the entries' names are not written, so what is
  // wrong with them (a tag-only OCI ref.name, as skopeo's oci:DIR:TAG writes) is no news for a push.
  const named = nameEntries(entries, tags, writer.format === 'oci' || writer.format === 'oci-archive', remote ? () => {} : note);
  const wanted = [...(options.platform ? [options.platform] : []), ...(options.platforms ?? [])];
  const chosen = choosePlatforms(named, writer, wanted, note, options.anyPrimary === true);
  const toStdout = !remote && dest.path === '-';
  if (toStdout && !options.stdout) throw new UsageError(`"${destination}": "-" writes to stdout, but no stdout stream was given`);
  if (toStdout && (options.stdout as NodeJS.WriteStream).isTTY) throw new UsageError('refusing to write an archive to a terminal: redirect stdout or name a file');

  if (writer.output === 'dir') await describeReplacedLayout(dest.path, options.force === true, settings, note);
  // stdout, like a device or FIFO destination, gets the archive once it is whole: nothing partial reaches a pipe.
  const output = remote
    ? beginScratchOutput(dest.path, settings.tempDir)
    : toStdout
      ? await beginStreamedOutput('stdout', settings.tempDir, () => options.stdout!, {end: false})
      : await beginAtomicOutput(dest.path, writer.output as OutputKind, {force: options.force ?? false, tempDir: settings.tempDir});
  const progress = options.progress ?? silentProgress;
  const concurrency = Math.max(1, settings.workers);
  // Hashing and compressing run on worker threads, one blob each, so every core works
  // (docs/benchmarks.md); the main thread only plans and hands out jobs. (One worker more than there
  // are cores packs five equal layers better onto two, but cost 20-40 MB of peak RSS: not taken.)
  const pool = new BlobPool(settings.workers);
  // What verify would refuse inside a layer (an entry escaping the root, a duplicate path, a tar
  // that does not hash to its diffID) is checked beside the copy; a failure stops the writer and
  // nothing is committed (issue 6; docs/bad-input.md has the cost for compressed blobs).
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  let contents: Promise<void> = Promise.resolve();
  let cache: string | undefined;
  try {
    const want = options.compress ?? 'keep';
    // Layers that live in a registry are fetched into files first (restart-safe beside a local destination).
    // Layers the destination takes without their bytes (a registry mounting them from another of its
    // repositories) are neither fetched, checked nor recompressed: the registry has them, checked.
    const omitted = new Set<string>(options.omitBlobs ?? []);
    const mounted = new Set(want === 'keep' ? storedLayers(chosen.entries, omitted).filter((l) => writer.canMount?.(l) === true).map((l) => l.descriptor.digest) : []);
    const skipped = new Set([...omitted, ...mounted]);
    // A change of manifest bytes nobody asked for is refused before anything is fetched. Only `keep`
    // transcodes implicitly; --compress gzip|zstd|none is the change asked for.
    if (options.keepDigests && !options.manifestFormat && writer.keepsManifests !== false) {
      const implicit = want === 'keep' ? await planRecompression(chosen.entries, writer, want, skipped, options.keepBlobs === true, () => {}) : [];
      refuseImplicitRewrites(chosen.entries, writer, implicit, options.dockerLayout);
    }
    const fetching = await fetchRemoteLayers(chosen, options.looseLayers ?? [], skipped, remote || toStdout ? undefined : dest.path, output, settings, signal, progress);
    cache = fetching.cache;
    const {entries: planned, primary, loose} = fetching;
    const jobs = await planRecompression(planned, writer, want, skipped, options.keepBlobs === true, note);
    const checked = await repairs(planned, want, jobs, omitted, settings, note);
    // A recompressed blob loses whatever followed its compressed stream (a repair): not refused there.
    // A recompressed layer is checked by its transcode, in the same pass that encodes it.
    const transcoded = new Set(jobs.map((j) => j.layer.descriptor.digest));
    const layers = [...storedLayers(planned, omitted), ...loose].filter((l) => !checked.has(l.descriptor.digest) && !transcoded.has(l.descriptor.digest) && !mounted.has(l.descriptor.digest));
    // A local writer hashes each blob as it copies it (formats/layout/write.ts blobMember); a registry
    // is sent only what it lacks, so a push checks every blob here.
    contents = checkLayerContents(layers, settings.limits, concurrency, {blobCheckedElsewhere: !remote}).catch((e: unknown) => {
      stop.abort(e);
      throw e;
    });
    contents.catch(() => {});
    const replaced = await recompressLayers(jobs, `→ ${want}`, {...options, signal}, output, settings, pool, progress);
    const final = replaceLayers(planned, primary, replaced);
    // The writer consumes scratch layers (moves them into place, or removes them once copied): a
    // check still reading one (squash's new layer) must be done first.
    if (allImages(planned).some((image) => image.layers.some(isScratchLayer))) await contents;
    progress.start(remote ? 'pushing' : 'writing', distinctBytes([...storedLayers(final.entries, omitted), ...loose]));
    const refName = suffix !== undefined && writer.format !== 'docker-archive' ? {refName: suffix} : {};
    const result = await writer.write(final.entries, output.tempPath, {
      primary: final.primary,
      concurrency,
      pool,
      onBytes: (n) => progress.advance(n),
      signal,
      ...refName,
      ...(options.manifestFormat ? {manifestFormat: options.manifestFormat} : {}),
      ...(omitted.size > 0 ? {omitBlobs: omitted} : {}),
      ...(loose.length > 0 ? {looseBlobs: loose} : {}),
      ...(progress.blob ? {trackBlob: (label: string, total: number) => progress.blob!(label, total)} : {}),
    });
    await contents;
    progress.stop();
    await output.commit();
    if (cache) await rm(cache, {recursive: true, force: true});
    if (!remote && writer.format !== 'docker-archive' && named.some((e) => e.names.length === 0 && !isArtifact(e.root))) {
      // The spec allows an unnamed image, but umoci and skopeo address images by ref.name only.
      note(`an image without a name has no org.opencontainers.image.ref.name in ${writer.format}: (umoci and skopeo cannot pick it out by name); give it one with --tag NAME:TAG`);
    }
    const rewritten = result.rewritten ?? [];
    for (const {from, to} of rewritten) note(`manifest ${from} → ${to}`);
    const transfer = fetching.stats || result.uploads ? transferSummary(fetching.stats, result.uploads) : undefined;
    return {format: writer.format, path: dest.path, images: result.images, blobs: result.blobs, bytes: result.bytes, rewritten, ...(result.digest ? {digest: result.digest} : {}), ...(transfer ? {transfer} : {}), ...(result.loaded ? {loaded: result.loaded} : {})};
  } catch (e) {
    progress.stop();
    await output.abort();
    if (cache && (await readdir(cache).catch(() => [])).length > 0) note(`what was fetched stays in ${cache}: the same command continues from it`);
    throw stop.signal.aborted ? stop.signal.reason : e;
  } finally {
    await pool.close();
  }
}

function transferSummary(fetched: FetchStats | undefined, uploads: UploadStats | undefined): TransferSummary {
  return {
    fetchedBytes: fetched?.fetchedBytes ?? 0,
    reusedBytes: fetched?.reusedBytes ?? 0,
    uploadedBytes: uploads?.uploadedBytes ?? 0,
    skippedBytes: uploads?.skippedBytes ?? 0,
    uploaded: uploads?.uploaded ?? 0,
    skipped: uploads?.skipped ?? 0,
    mounted: uploads?.mounted ?? 0,
    retries: uploads?.retries ?? 0,
  };
}

/**
 * Fetches layers that live elsewhere (a registry) into files: beside a local destination, where a
 * rerun after a crash finds them (atomic.ts transferCacheBeside), else in the output's scratch space.
 */
async function fetchRemoteLayers(
  chosen: {entries: ArchiveEntry[]; primary: Map<ArchiveEntry, Image>},
  loose: readonly Layer[],
  omitted: ReadonlySet<string>,
  destination: string | undefined,
  output: AtomicOutput,
  settings: Settings,
  signal: AbortSignal,
  progress: Progress,
): Promise<{entries: ArchiveEntry[]; primary: Map<ArchiveEntry, Image>; loose: Layer[]; cache?: string; stats?: FetchStats}> {
  const layers = [...storedLayers(chosen.entries, omitted), ...loose].filter(needsFetch);
  if (layers.length === 0) return {...chosen, loose: [...loose]};
  const beside = destination === undefined ? undefined : await transferCacheBeside(destination);
  const dir = beside ?? path.join(await output.scratchDir(), 'fetched');
  progress.start('fetching', distinctBytes(layers));
  const {fetched, stats} = await fetchLayers(layers, dir, {limits: settings.limits, jobs: settings.registry.jobs ?? DEFAULT_JOBS, onBytes: (n) => progress.advance(n), ...(progress.blob ? {trackBlob: (label: string, total: number) => progress.blob!(label, total)} : {}), signal}).catch(async (e: unknown) => {
    // What was fetched right stays for the rerun; a directory left with nothing in it does not.
    if (beside) await rmdir(beside).catch(() => {});
    throw e;
  });
  progress.stop();
  return {...replaceLayers(chosen.entries, chosen.primary, fetched), loose: loose.map((l) => fetched.get(l.descriptor.digest) ?? l), ...(beside ? {cache: beside} : {}), stats};
}

/**
 * With keepDigests: a manifest that would change without being asked is refused, naming why and
 * what would make it a choice (--compress, --manifest-format, another form).
 */
function refuseImplicitRewrites(entries: readonly ArchiveEntry[], writer: ArchiveWriter, jobs: readonly Recompression[], dockerLayout: WriteOptions['dockerLayout']): void {
  const manifests = allImages(entries).filter((image) => image.manifest !== null);
  if (manifests.length === 0) return;
  if (dockerLayout === 'legacy') {
    throw new FerryError('UNSUPPORTED', `the legacy docker-archive layout keeps no manifest: ${manifests[0]!.manifest!.digest} would not survive (write the default layout, which keeps it, or pass --manifest-format docker to accept new digests)`);
  }
  if (jobs.length > 0) {
    const job = jobs[0]!;
    const owner = manifests.find((image) => image.layers.includes(job.layer));
    throw new FerryError('UNSUPPORTED', `${job.layer.label}: ${writer.format} consumers cannot load this layer as it is, and storing it ${job.to === 'none' ? 'uncompressed' : `as ${job.to}`} changes manifest ${owner?.manifest?.digest ?? ''}; write oci: or oci-archive: (they keep it), or accept new digests with --compress ${job.to === 'none' ? 'none' : job.to} or --manifest-format`);
  }
}

/** The bytes of these layers, each distinct blob once (a phase's progress total). */
function distinctBytes(layers: readonly Layer[]): number {
  let total = 0;
  for (const size of new Map(layers.map((l) => [l.descriptor.digest, l.descriptor.size])).values()) total += size;
  return total;
}

/** Every layer the output stores: each image's layers but the ones omitted (the destination has them). */
function storedLayers(entries: readonly ArchiveEntry[], omitted: ReadonlySet<string>): Layer[] {
  return allImages(entries).flatMap((image) => image.layers).filter((l) => !omitted.has(l.descriptor.digest));
}

/**
 * An OCI layout already at the destination may hold images other than the ones being written: the
 * refusal (and, with --force, a note) says which, since the whole layout is replaced.
 */
async function describeReplacedLayout(dir: string, force: boolean, settings: Settings, note: (m: string) => void): Promise<void> {
  let held: string[];
  try {
    const existing = await openArchive(`oci:${dir}`, {settings});
    try {
      held = existing.entries.map((e) => (e.names.length > 0 ? e.names.map((n) => {
        const ref = tryParseReference(n);
        return ref ? familiarName(ref) : n;
      }).join(', ') : describeNode(e.root)));
    } finally {
      await existing.close();
    }
  } catch {
    return; // not a readable layout (or nothing there): the usual checks speak for it
  }
  if (held.length === 0) return;
  const what = `${dir} holds ${held.length} ${held.length === 1 ? 'image' : 'images'} (${held.join('; ')})`;
  if (!force) throw new FerryError('EXISTS', `${what}; --force replaces ${held.length === 1 ? 'it' : 'them all'}`);
  note(`replacing ${what}`);
}

/**
 * Names normalised to full references with a tag (docker.io/library/demo:1), the form writers turn
 * into RepoTags (familiar) and index.json annotations. `tags` replace the entry's names. A tag-only
 * OCI ref.name stays as it is where the output is an OCI layout (`keepTagOnly`), which names by it too.
 */
function nameEntries(entries: readonly ArchiveEntry[], tags: readonly string[] | undefined, keepTagOnly: boolean, note: (m: string) => void): ArchiveEntry[] {
  if (tags && tags.length > 0) {
    const names = tags.map((tag) => {
      const ref = tryParseReference(tag);
      if (!ref) throw new UsageError(`invalid --tag "${tag}": not an image reference: ${referenceProblem(tag)}`);
      if (ref.digest !== undefined) throw new UsageError(`invalid --tag "${tag}": a digest cannot name an image in an archive; give name:tag`);
      return fullName(withDefaultTag(ref));
    });
    return entries.map((entry) => (isArtifact(entry.root) ? entry : {...entry, names: [...new Set(names)]}));
  }
  return entries.map((entry) => {
    if (isArtifact(entry.root)) return entry; // a tool's names (a chart version, sha256-HEX.sig), kept as written
    const names: string[] = [];
    for (const name of entry.names) {
      const ref = tryParseReference(name);
      if (!ref) {
        note(`name "${name}" is not an image reference; it is left out of the output`);
        continue;
      }
      if (ref.digest !== undefined) {
        note(`name "${name}" is a digest reference, which archives cannot name images by; it is left out of the output`);
        continue;
      }
      if (ref.tag === undefined && !name.includes('/')) {
        // An OCI ref.name that is a tag alone ("v1", "latest": the spec's example, skopeo's and
        // umoci's oci:DIR:TAG) names no repository; read as one it would become the image v1:latest.
        if (keepTagOnly) {
          if (!names.includes(name)) names.push(name);
          continue;
        }
        note(`"${name}" is a tag, not an image name (an OCI ref.name); the image is written without it (name it with --tag)`);
        continue;
      }
      const full = fullName(withDefaultTag(ref));
      if (!names.includes(full)) names.push(full);
    }
    return {...entry, names};
  });
}

function entryLabel(entry: ArchiveEntry): string {
  return entry.names.length > 0 ? entry.names.join(', ') : describeNode(entry.root);
}

/** An index without its absent children (kind#3795: Docker 25 `save --platform` writes such indexes). */
function pruneAbsent(index: ImageIndex, memo: Map<ImageIndex, ImageIndex | null>): ImageIndex | null {
  const done = memo.get(index);
  if (done !== undefined) return done;
  const children: IndexChild[] = [];
  for (const child of index.children) {
    if (!child.target) continue;
    if (!isImageIndex(child.target)) {
      children.push(child);
      continue;
    }
    const nested = pruneAbsent(child.target, memo);
    if (nested) children.push({descriptor: child.descriptor, target: nested});
  }
  const pruned = children.length === 0 ? null : children.length === index.children.length && children.every((c, i) => c.target === index.children[i]!.target) ? index : {document: index.document, children};
  memo.set(index, pruned);
  return pruned;
}

function platformList(images: readonly Image[]): string {
  return images.map((i) => formatPlatform(i.platform)).join(', ') || 'none';
}

/** Attestations in an index that describe `image` (buildx and Docker 25+ list them beside it). */
function attestationsOf(index: ImageIndex, image: Image): IndexChild[] {
  const digest = image.manifest?.digest;
  return index.children.filter((c) => c.target && isArtifact(c.target) && c.target.kind === 'attestation' && digest !== undefined && c.target.subject?.digest === digest);
}

/** The entries with --platform applied and absent platforms dropped, index structure kept (what a bundle plans with). */
export function pickPlatforms(entries: readonly ArchiveEntry[], platforms: readonly Platform[], note: (m: string) => void): ArchiveEntry[] {
  return choosePlatforms(entries, {indexes: 'keep'}, platforms, note).entries;
}

/**
 * Fits multi-platform indexes and artifacts to the destination. With --platform every entry becomes
 * that one image — or, when the index holds attestations of it, an index of the image and its
 * attestations (regenerated: its digest changes, as the note says); several --platform give a new
 * index of those images and their attestations. Otherwise indexes are kept whole
 * where the form holds them (absent platforms dropped with a note), and where docker's manifest.json
 * needs one image per name the host platform's is chosen (the only present image wins when there is
 * just one); no match is an error listing what exists. Artifacts are kept where an OCI layout is
 * written (not by the legacy layout), and dropped with a note when --platform leaves their subject out.
 */
function choosePlatforms(entries: readonly ArchiveEntry[], writer: Pick<ArchiveWriter, 'indexes'>, wanted: readonly Platform[], note: (m: string) => void, anyPrimary = false): {entries: ArchiveEntry[]; primary: Map<ArchiveEntry, Image>} {
  const out: ArchiveEntry[] = [];
  const primary = new Map<ArchiveEntry, Image>();
  const memo = new Map<ImageIndex, ImageIndex | null>();
  const artifacts: ArchiveEntry[] = [];
  for (const entry of entries) {
    const label = entryLabel(entry);
    const root = entry.root;
    if (isArtifact(root)) {
      if (writer.indexes === 'one') note(`${label}: the legacy docker-archive layout cannot hold a ${root.kind}; left out (write the default layout or an OCI form to keep it)`);
      else artifacts.push(entry);
      continue;
    }
    if (wanted.length > 0) {
      const images = imagesOf(root);
      const hits = [
        ...new Set(
          wanted.map((want) => {
            const hit = images.find((i) => platformMatches(i.platform, want));
            if (hit) return hit;
            const absent = absentOf(root).filter((c) => c.descriptor.platform && platformMatches(c.descriptor.platform, want));
            const why = absent.length > 0 ? ` (the index lists it, but its blobs are not in the source)` : '';
            throw new FerryError('NOT_FOUND', `${label}: no image for platform ${formatPlatform(want)}${why}; present: ${platformList(images)}`);
          }),
        ),
      ];
      const index = isImageIndex(root) ? root : undefined;
      if (index && hits.length > 1) {
        if (writer.indexes === 'one') throw new UsageError(`${label}: the legacy docker-archive layout holds one image per name; pick one --platform`);
        // The images asked for and their attestations, as a new index (registries refuse an index naming what they lack).
        const children = index.children.filter((c) => c.target && ((!isArtifact(c.target) && !isImageIndex(c.target) && hits.includes(c.target)) || hits.some((hit) => attestationsOf(index, hit).includes(c))));
        note(`${label}: kept ${platformList(hits)} in a new index (the index digest ${index.document.digest} changes)`);
        const kept: ArchiveEntry = {names: entry.names, root: {document: index.document, children}};
        const host = hostPlatform();
        primary.set(kept, hits.find((i) => platformMatches(i.platform, host)) ?? hits[0]!);
        out.push(kept);
        continue;
      }
      const hit = hits[0]!;
      const attestations = index ? attestationsOf(index, hit) : [];
      if (index && attestations.length > 0 && writer.indexes !== 'one') {
        const child = index.children.find((c) => c.target === hit)!;
        note(`${label}: kept ${formatPlatform(hit.platform)} and its ${attestations.length} attestation(s) in a new index (the index digest ${index.document.digest} changes)`);
        const kept: ArchiveEntry = {names: entry.names, root: {document: index.document, children: [child, ...attestations]}};
        primary.set(kept, hit);
        out.push(kept);
      } else {
        if (attestations.length > 0) note(`${label}: the legacy docker-archive layout cannot hold the ${attestations.length} attestation(s) of ${formatPlatform(hit.platform)}; left out`);
        out.push({names: entry.names, root: hit});
      }
      continue;
    }
    if (!isImageIndex(root)) {
      out.push(entry);
      continue;
    }
    const absent = absentOf(root);
    for (const child of absent) {
      note(`${label}: the index lists ${child.descriptor.platform ? `platform ${formatPlatform(child.descriptor.platform)}` : 'a manifest'} (${child.descriptor.digest}) whose blobs are not in the source; the written index lists only the platforms present`);
    }
    const pruned = pruneAbsent(root, memo);
    if (!pruned || imagesOf(pruned).length === 0) throw new FerryError('MISSING_BLOB', `${label}: none of the index's platforms is present in the archive`);
    if (writer.indexes === 'keep') {
      out.push({...entry, root: pruned});
      continue;
    }
    const images = imagesOf(pruned);
    const host = hostPlatform();
    const pick = images.length === 1 ? images[0] : (images.find((i) => platformMatches(i.platform, host)) ?? (anyPrimary ? images[0] : undefined));
    if (!pick) {
      throw new FerryError('NOT_FOUND', `${label}: a docker-archive lists one image per name, and this multi-platform index has none for this host's platform ${formatPlatform(host)}; pick one with --platform (present: ${platformList(images)})`);
    }
    if (writer.indexes === 'one') {
      const dropped = artifactsOf(pruned).length;
      if (images.length > 1) note(`${label}: the legacy docker-archive layout holds one image per name: wrote ${formatPlatform(pick.platform)} of ${platformList(images)}`);
      if (dropped > 0) note(`${label}: the legacy docker-archive layout cannot hold the index's ${dropped} attestation(s) or other artifacts; left out`);
      out.push({names: entry.names, root: pick});
      continue;
    }
    const kept = {...entry, root: pruned};
    primary.set(kept, pick);
    out.push(kept);
  }
  // A referrer whose subject was left out (--platform took one image of its index) would point nowhere.
  const present = new Set(out.flatMap((e) => manifestDigests(e.root)));
  for (const entry of artifacts) {
    const subject = isArtifact(entry.root) ? entry.root.subject?.digest : undefined;
    if (wanted.length > 0 && subject !== undefined && !present.has(subject)) note(`${entryLabel(entry)}: its subject ${subject} is not written (--platform); left out`);
    else out.push(entry);
  }
  return {entries: out, primary};
}

/** Manifest and index digests of a node, as written unchanged. */
function manifestDigests(node: Node): string[] {
  if (isArtifact(node)) return [node.manifest.digest];
  if (isImageIndex(node)) return [node.document.digest, ...node.children.flatMap((c) => (c.target ? manifestDigests(c.target) : []))];
  return node.manifest ? [node.manifest.digest] : [];
}

function allImages(entries: readonly ArchiveEntry[]): Image[] {
  return entries.flatMap((e) => imagesOf(e.root));
}

/** A layer whose blob changes compression on the way out. */
interface Recompression {
  layer: Layer;
  to: Compression;
}

/**
 * Decides each distinct layer's output compression. `keep` keeps what the destination's consumers
 * load (zstd bound for docker-archive, bzip2/xz bound for an OCI form are stored uncompressed, with a
 * note); a foreign layer that is not here keeps its descriptor only.
 */
async function planRecompression(entries: readonly ArchiveEntry[], writer: ArchiveWriter, want: NonNullable<WriteOptions['compress']>, omitted: ReadonlySet<string>, keepBlobs: boolean, note: (m: string) => void): Promise<Recompression[]> {
  const distinct = new Map<string, Layer>();
  for (const layer of storedLayers(entries, omitted)) if (!distinct.has(layer.descriptor.digest)) distinct.set(layer.descriptor.digest, layer);
  const jobs: Recompression[] = [];
  const unloadable = new Map<Compression, number>();
  for (const layer of distinct.values()) {
    if (layer.absent !== undefined) continue;
    const from = await layer.compression();
    let to: Compression;
    if (want === 'keep') {
      to = writer.accepts(from) ? from : 'none';
      if (to !== from) unloadable.set(from, (unloadable.get(from) ?? 0) + 1);
    } else to = want;
    if (to !== from) jobs.push({layer, to});
  }
  for (const [from, count] of unloadable) {
    if (keepBlobs) {
      note(`${count} ${from} layer(s) kept as they are: ${from === 'zstd' ? 'docker before 23.0 (e.g. 20.10) cannot load them' : `some ${writer.format} consumers cannot read them`}`);
      continue;
    }
    const why =
      from !== 'zstd'
        ? `${writer.format} consumers read only gzip and zstd layers`
        : writer.format === 'docker-daemon'
          ? 'this daemon cannot load zstd layers (docker before 23.0)'
          : 'docker 20.10 cannot load zstd layers (pass --compress zstd to keep them)';
    note(`${count} ${from} layer(s) stored uncompressed: ${why}`);
  }
  if (keepBlobs) return [];
  if (want === 'zstd' && writer.format === 'docker-archive') note('zstd layers: docker before 23.0 (e.g. 20.10) cannot load them');
  return jobs;
}

/**
 * `--compress gzip` (or zstd) asked for a form some layers are already in: those are kept unless
 * their compressed stream has bytes after its end (docker, podman and skopeo refuse such blobs), in
 * which case re-encoding them is the repair the user asked for. Checked before anything is written;
 * returns the blobs checked here (clean ones need no second check).
 */
async function repairs(entries: readonly ArchiveEntry[], want: NonNullable<WriteOptions['compress']>, jobs: Recompression[], omitted: ReadonlySet<string>, settings: Settings, note: (m: string) => void): Promise<Set<string>> {
  const checked = new Set<string>();
  if (want !== 'gzip' && want !== 'zstd') return checked;
  const queued = new Set(jobs.map((j) => j.layer.descriptor.digest));
  for (const layer of storedLayers(entries, omitted)) {
    const digest = layer.descriptor.digest;
    if (layer.absent !== undefined || queued.has(digest) || checked.has(digest) || (await layer.compression()) !== want) continue;
    checked.add(digest);
    try {
      await checkLayerContent(layer, settings.limits);
    } catch (e) {
      if (!(e instanceof TrailingDataError)) throw e;
      note(`${layer.label}: data after the end of its ${want} stream; re-encoded (its digest changes)`);
      jobs.push({layer, to: want});
      queued.add(digest);
      checked.delete(digest);
    }
  }
  return checked;
}

/** Transcodes the planned layers, several at once, into scratch files beside the destination. */
async function recompressLayers(jobs: readonly Recompression[], label: string, options: WriteOptions, output: AtomicOutput, settings: Settings, pool: BlobPool, progress: Progress): Promise<Map<string, Layer>> {
  const replaced = new Map<string, Layer>();
  if (jobs.length === 0) return replaced;
  const dir = await output.scratchDir();
  const limit = pLimit(Math.max(1, settings.workers));
  progress.start(label, jobs.reduce((n, j) => n + j.layer.descriptor.size, 0));
  await Promise.all(
    jobs.map((job, n) =>
      limit(async () => {
        if (options.signal?.aborted) throw new FerryError('INTERRUPTED', `${output.destination}: writing aborted`);
        replaced.set(job.layer.descriptor.digest, await recompress(job.layer, job.to, options.compressLevel, path.join(dir, `layer-${n}`), settings, pool, (b) => progress.advance(b)));
      }),
    ),
  ).catch((e: unknown) => {
    limit.clearQueue();
    throw e;
  });
  progress.stop();
  return replaced;
}

/**
 * One pass over the source blob: its digest and size are checked against the descriptor, the
 * uncompressed stream against the diffID, and the output hashed into its new digest. The diffID never
 * changes; the blob digest does (fixed compression parameters keep it deterministic). A blob that is
 * a byte range of a file is done on a worker thread.
 */
async function recompress(layer: Layer, to: Compression, level: number | undefined, file: string, settings: Settings, pool: BlobPool, onBytes: (bytes: number) => void): Promise<Layer> {
  const blob = {digest: layer.descriptor.digest, size: layer.descriptor.size};
  let result: BlobJobResult;
  // A level is the user's for the layers compressed as asked (--compress gzip|zstd), not for a layer stored uncompressed because the destination cannot load it.
  const levelOf = level !== undefined && to !== 'none' ? {level} : {};
  if (layer.region) result = await pool.run({kind: 'transcode', source: layer.region, to, ...levelOf, blob, diffId: layer.diffId, target: file, limits: settings.limits}, onBytes);
  else result = await transcodeLayer(layer, {to, ...levelOf, target: file, limits: settings.limits}, onBytes);
  const {bytes: size, digest} = result;
  if (digest === undefined) throw new FerryError('IO', `${layer.label}: recompressing it produced no digest`);
  const mediaType = isNondistributable(layer.descriptor.mediaType) ? (to === 'gzip' ? MediaType.ociLayerNondistGzip : to === 'zstd' ? MediaType.ociLayerNondistZstd : MediaType.ociLayerNondist) : layerMediaType(to, 'oci');
  return ScratchLayer.of({mediaType, digest, size}, layer.diffId, file, `${layer.label} (as ${to})`, settings.limits);
}
