import {writeMembersToDirectory} from '../../io/fs/members.js';
import type {ArchiveEntry} from '../../model/image.js';
import {layoutMembers, ociLayoutNames, planLayout, planOptions, type FormatWriteOptions, type FormatWriteResult} from '../layout/write.js';

/**
 * An OCI image layout directory (`oci:DIR`) written into `dir` (an empty temp directory the caller
 * renames into place). Blobs are copied concurrently, each checked against its digest as it streams.
 */
export async function writeOciDirectory(entries: readonly ArchiveEntry[], dir: string, options: FormatWriteOptions = {}): Promise<FormatWriteResult> {
  const plan = await planLayout(entries, planOptions(options));
  const bytes = await writeMembersToDirectory(dir, layoutMembers(plan, ociLayoutNames, options.refName), options);
  return {images: plan.images, blobs: plan.blobs.size, bytes, rewritten: plan.rewritten};
}
