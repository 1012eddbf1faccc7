import {FerryError} from '../../errors.js';
import {TarTree, UnionTree, type FileTree} from '../../io/fs/file-tree.js';
import type {Descriptor} from '../../model/descriptor.js';
import type {ReadResult} from '../../model/image.js';
import {ANNOTATION_CONTAINERD_NAME, readLayoutEntries, type ReadContext} from '../layout/read.js';
import {BUNDLE_FILE, parseBundleManifest, type BundleManifest} from './manifest.js';

export async function hasBundleManifest(tree: FileTree): Promise<boolean> {
  return (await tree.topLevel()).includes(BUNDLE_FILE);
}

export async function readBundleManifest(tree: FileTree, context: ReadContext): Promise<BundleManifest> {
  const range = await tree.file(BUNDLE_FILE);
  if (!range) throw new FerryError('UNKNOWN_FORMAT', `${tree.label}: not a bundle: ${BUNDLE_FILE} is missing`);
  return parseBundleManifest(await range.readAll(context.limits.maxJsonBytes), `${tree.label}/${BUNDLE_FILE}`);
}

/**
 * A bundle read as one source: its parts (those present) seen as one store of blobs, and its images
 * as bundle.json lists them, each named by its full name. An image whose parts are not all here is
 * left out with a warning naming them; one whose blobs a differential bundle left out (the target
 * has them) is read with those layers absent.
 */
export async function readBundle(tree: FileTree, context: ReadContext): Promise<ReadResult & {manifest: BundleManifest}> {
  const manifest = await readBundleManifest(tree, context);
  const warnings: string[] = [];
  const trees: FileTree[] = [];
  const present = new Set<string>();
  for (const part of manifest.parts) {
    const range = await tree.file(part.file);
    if (!range) continue;
    trees.push(await TarTree.index(range, `${tree.label}/${part.file}`));
    present.add(part.file);
  }
  const descriptors: Descriptor[] = [];
  for (const image of manifest.images) {
    const missing = image.parts.filter((p) => !present.has(p));
    if (missing.length > 0) {
      warnings.push(`${tree.label}: ${image.name ?? image.ref} is incomplete: part ${missing.join(', ')} missing`);
      continue;
    }
    descriptors.push({mediaType: image.mediaType, digest: image.digest, size: image.size, ...(image.name ? {annotations: {[ANNOTATION_CONTAINERD_NAME]: image.name}} : {})});
  }
  const result = await readLayoutEntries(new UnionTree(tree.label, trees), descriptors, context, `${tree.label}/${BUNDLE_FILE} images`);
  return {...result, warnings: [...warnings, ...result.warnings], manifest};
}
