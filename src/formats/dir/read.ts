import {FerryError} from '../../errors.js';
import type {FileTree} from '../../io/fs/file-tree.js';
import {isRecord} from '../../model/descriptor.js';
import {digestHex, sha256Of} from '../../model/digest.js';
import type {ReadResult} from '../../model/image.js';
import {isIndexMediaType, MediaType} from '../../model/media-types.js';
import {readManifest, type ReadContext} from '../layout/read.js';

/**
 * containers/image's `dir:` layout (what `skopeo copy … dir:DIR` and `podman save --format
 * docker-dir|oci-dir` write): a `version` file, the manifest as `manifest.json` (one image, Docker
 * schema2 or OCI), and every blob as a file named by its hex digest. docs/formats.md §0.
 */
export async function isDirLayout(tree: FileTree): Promise<boolean> {
  const version = await tree.file('version');
  if (!version || version.size > 256) return false;
  return (await version.readAll(256)).toString('latin1').startsWith('Directory Transport Version:');
}

export async function readDirLayout(tree: FileTree, context: ReadContext): Promise<ReadResult> {
  const file = await tree.file('manifest.json');
  if (!file) throw new FerryError('BAD_ARCHIVE', `${tree.label}: a dir: layout without manifest.json`);
  const bytes = await file.readAll(context.limits.maxJsonBytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new FerryError('BAD_JSON', `${tree.label}: manifest.json: invalid JSON (${(e as Error).message})`, {cause: e});
  }
  const mediaType = isRecord(parsed) && typeof parsed.mediaType === 'string' ? parsed.mediaType : MediaType.ociManifest;
  if (isIndexMediaType(mediaType)) throw new FerryError('UNSUPPORTED', `${tree.label}: a dir: layout holding an index (skopeo copy --all) is not read; copy one platform, or to oci:`);
  const digest = sha256Of(bytes);
  const doc = {bytes, digest, mediaType, parsed};
  const node = await readManifest(tree, doc, {mediaType, digest, size: bytes.length}, `${tree.label}: manifest.json`, context, digestHex);
  return {entries: [{names: [], root: node}], warnings: [], problems: []};
}
