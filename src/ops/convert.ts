import {resolveSettings} from '../settings.js';
import {openArchive, parseDestination} from '../transports/table.js';
import {selectEntries} from './select.js';
import {writeArchive, type WriteOptions, type WriteSummary} from './write-archive.js';

export interface ConvertOptions extends WriteOptions {
  /** Images to convert, by name, image ID or manifest digest (default: all). */
  images?: string[];
  /** What a SOURCE of `-` reads. */
  stdin?: NodeJS.ReadableStream;
  /** docker:// sources: also copy the signatures, SBOMs and attestations that refer to the images. */
  referrers?: boolean;
}

export interface ConvertSummary extends WriteSummary {
  source: {format: string; location: string};
}

/**
 * `ferry convert SOURCE DEST`: reads any form, writes docker-archive, oci-archive, oci or a registry.
 * With a registry on either side, manifest bytes are kept or the change refused unless asked for
 * (WriteOptions.keepDigests): `image@sha256:…` references must keep resolving.
 */
export async function convertArchive(source: string, destination: string, options: ConvertOptions = {}): Promise<ConvertSummary> {
  const dest = parseDestination(destination); // a bad DEST is a usage error before any reading
  // One map of known blobs for the read and the write: a copy within one registry mounts what it read.
  const resolved = resolveSettings(options.settings);
  const settings = {...resolved, registry: {...resolved.registry, knownBlobs: resolved.registry.knownBlobs ?? new Map<string, string>()}};
  const archive = await openArchive(source, {settings, ...(options.stdin ? {stdin: options.stdin} : {}), ...(options.referrers ? {referrers: true} : {})});
  const keepDigests = options.keepDigests ?? (archive.format === 'docker' || dest.transport === 'docker');
  try {
    for (const w of archive.warnings) options.note?.(`warning: ${w}`);
    for (const p of archive.problems) options.note?.(`warning: ${p}`);
    const entries = await selectEntries(archive, options.images ?? []);
    const summary = await writeArchive(destination, entries, {...options, settings, keepDigests});
    return {...summary, source: {format: archive.format, location: archive.location}};
  } finally {
    await archive.close();
  }
}
