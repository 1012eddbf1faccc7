import type {ArchiveEntry} from '../../model/image.js';
import {sortMembers, writeTarFile} from '../../io/fs/members.js';
import {layoutMembers, ociLayoutNames, planLayout, planOptions, type FormatWriteOptions, type FormatWriteResult} from '../layout/write.js';

/** An OCI image layout as one tar file (skopeo's and podman's oci-archive), members in name order. */
export async function writeOciArchive(entries: readonly ArchiveEntry[], file: string, options: FormatWriteOptions = {}): Promise<FormatWriteResult> {
  const plan = await planLayout(entries, planOptions(options));
  const bytes = await writeTarFile(file, sortMembers(layoutMembers(plan, ociLayoutNames, options.refName)), options);
  return {images: plan.images, blobs: plan.blobs.size, bytes, rewritten: plan.rewritten};
}
