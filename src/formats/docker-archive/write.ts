import {FerryError} from '../../errors.js';
import {chainIds, digestHex, sha256Of, type Digest} from '../../model/digest.js';
import type {Descriptor} from '../../model/descriptor.js';
import {isArtifact, isImageIndex, type ArchiveEntry, type Image} from '../../model/image.js';
import {familiarName, familiarRepository, fullName, tryParseReference} from '../../model/reference.js';
import {sortMembers, writeTarFile, type Member} from '../../io/fs/members.js';
import {blobPath} from '../layout/read.js';
import {blobMember, descriptorJson, dockerSaveNames, layoutMembers, planLayout, planOptions, primaryImage, sortedRecord, type FormatWriteOptions, type FormatWriteResult} from '../layout/write.js';

export type DockerLayout = 'oci' | 'legacy';

export interface DockerArchiveWriteOptions extends FormatWriteOptions {
  layout?: DockerLayout;
  /** RepoTags as full names (docker.io/library/app:1): podman reads a short one as localhost/app:1. */
  fullRepoTags?: boolean;
}

interface ManifestItem {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
  /** Foreign layers only, diffID → descriptor, as docker ≤ 24 saves a Windows image (docs/formats.md §1). */
  LayerSources?: Record<string, Descriptor>;
}

/** LayerSources for an image's foreign layers (their blobs may be absent: the descriptor says where they live). */
function layerSources(image: Image): Record<string, Descriptor> | undefined {
  const foreign = image.layers.filter((l) => l.foreign);
  if (foreign.length === 0) return undefined;
  return Object.fromEntries(foreign.map((l) => [l.diffId, descriptorJson(l.layerSource ?? l.descriptor) as unknown as Descriptor]));
}

/**
 * `docker save` output. `oci` (default): what Docker 25+ writes — an OCI layout (index.json,
 * oci-layout, blobs/sha256, every blob once) with manifest.json and repositories beside it; Docker
 * ≤24 loads it through manifest.json, containerd through index.json (docs/formats.md §2). `legacy`: what
 * Docker ≤24 writes — per-layer `<v1id>/` directories and `<configHex>.json` (docs/formats.md §1).
 */
export async function writeDockerArchive(entries: readonly ArchiveEntry[], file: string, options: DockerArchiveWriteOptions = {}): Promise<FormatWriteResult> {
  const {members, result} = await dockerArchiveMembers(entries, options);
  return {...result, bytes: await writeTarFile(file, members, options)};
}

/** The members of a docker save archive, in the order they are written (a streamed load sends them so). */
export async function dockerArchiveMembers(entries: readonly ArchiveEntry[], options: DockerArchiveWriteOptions = {}): Promise<{members: Member[]; result: Omit<FormatWriteResult, 'bytes'>}> {
  const {members, images, blobs, rewritten} = options.layout === 'legacy' ? legacyMembers(entries, options) : await ociMembers(entries, options);
  return {members: sortMembers(members), result: {images, blobs, ...(rewritten ? {rewritten} : {})}};
}

/** `RepoTags`: familiar `name:tag` only (what docker writes; a digest or tag-less name aborts docker load). */
export function repoTags(names: readonly string[], full = false): string[] {
  const tags: string[] = [];
  for (const name of names) {
    const ref = tryParseReference(name);
    if (!ref || ref.tag === undefined || ref.digest !== undefined) continue;
    const tag = full ? fullName(ref) : familiarName(ref);
    if (!tags.includes(tag)) tags.push(tag);
  }
  return tags;
}

/** `repositories`: {familiar repository: {tag: id}}, keys sorted; undefined when nothing is tagged. */
function repositoriesJson(tagged: Array<{names: readonly string[]; topId: string | undefined}>): Buffer | undefined {
  const repos: Record<string, Record<string, string>> = {};
  for (const {names, topId} of tagged) {
    if (topId === undefined) continue; // a zero-layer image has no top layer to point at
    for (const name of names) {
      const ref = tryParseReference(name);
      if (!ref || ref.tag === undefined || ref.digest !== undefined) continue;
      (repos[familiarRepository(ref)] ??= {})[ref.tag] = topId;
    }
  }
  if (Object.keys(repos).length === 0) return undefined;
  const sorted = sortedRecord(Object.fromEntries(Object.entries(repos).map(([k, v]) => [k, sortedRecord(v)])));
  return Buffer.from(`${JSON.stringify(sorted)}\n`);
}

/** One manifest.json item per image (config), its RepoTags merged across entries naming it. */
function addItem(items: Map<Image, ManifestItem & {names: string[]}>, image: Image, names: readonly string[], item: () => ManifestItem): void {
  const existing = items.get(image);
  if (existing) {
    for (const n of names) if (!existing.names.includes(n)) existing.names.push(n);
    return;
  }
  items.set(image, {...item(), names: [...names]});
}

function manifestJson(items: Iterable<ManifestItem & {names: string[]}>, full = false): Buffer {
  const list = [...items].map(({Config, Layers, LayerSources, names}) => {
    const tags = repoTags(names, full);
    return {Config, RepoTags: tags.length > 0 ? tags : null, Layers, ...(LayerSources ? {LayerSources} : {})};
  });
  // Docker's encoder ends the file with a newline.
  return Buffer.from(`${JSON.stringify(list)}\n`);
}

async function ociMembers(entries: readonly ArchiveEntry[], options: DockerArchiveWriteOptions): Promise<{members: Member[]; images: number; blobs: number; rewritten: FormatWriteResult['rewritten']}> {
  const plan = await planLayout(entries, planOptions(options));
  const items = new Map<Image, ManifestItem & {names: string[]}>();
  for (const entry of entries) {
    // An artifact has no place in manifest.json (docker cannot use it): the OCI view keeps it.
    const image = primaryImage(entry, options);
    if (!image) continue;
    // Docker 25 points Config and Layers into blobs/. LayerSources only for foreign layers: a Linux
    // docker ignores it (docs/peers.md) and containerd's exporter omits it (docs/formats.md §2).
    const sources = layerSources(image);
    addItem(items, image, entry.names, () => ({Config: blobPath(image.config.digest), RepoTags: null, Layers: image.layers.map((l) => blobPath(l.descriptor.digest)), ...(sources ? {LayerSources: sources} : {})}));
  }
  const members = layoutMembers(plan, dockerSaveNames);
  members.push({type: 'file', name: 'manifest.json', bytes: manifestJson(items.values(), options.fullRepoTags === true)});
  // Docker 25 maps each tag to the hex of the top layer's diffID.
  const repositories = repositoriesJson([...items].map(([image, item]) => ({names: item.names, topId: image.layers.length > 0 ? digestHex(image.layers.at(-1)!.diffId) : undefined})));
  if (repositories) members.push({type: 'file', name: 'repositories', bytes: repositories});
  return {members, images: plan.images, blobs: plan.blobs.size, rewritten: plan.rewritten};
}

const EPOCH = '1970-01-01T00:00:00Z';

/**
 * v1 layer IDs are opaque to every loader (docs/formats.md §1); ours chain like Docker's: each hashes the
 * layer's ChainID and its parent's ID, and the top one also the config digest, so two images with the
 * same layers but different configs get different top directories.
 */
function v1Id(chainId: Digest, parent: string | undefined, configDigest: Digest | undefined): string {
  const body: Record<string, string> = {created: EPOCH, layer_id: chainId};
  if (parent !== undefined) body.parent = `sha256:${parent}`;
  if (configDigest !== undefined) body.config = configDigest;
  return digestHex(sha256Of(JSON.stringify(body)));
}

function legacyMembers(entries: readonly ArchiveEntry[], options: DockerArchiveWriteOptions): {members: Member[]; images: number; blobs: number; rewritten?: FormatWriteResult['rewritten']} {
  const members: Member[] = [];
  /** v1 directory → the regular file holding its layer. */
  const dirs = new Map<string, string>();
  /** Where each layer blob is stored as a regular file (manifest.json always names that file). */
  const stored = new Map<Digest, string>();
  const configs = new Set<Digest>();
  const items = new Map<Image, ManifestItem & {names: string[]}>();
  const topIds = new Map<Image, string | undefined>();
  for (const entry of entries) {
    const image = entry.root;
    if (isImageIndex(image) || isArtifact(image)) throw new FerryError('UNSUPPORTED', `${entry.names.join(', ') || 'index'}: the legacy docker-archive layout holds single images, not ${isArtifact(image) ? 'artifacts' : 'a multi-platform index'}`);
    addItem(items, image, entry.names, () => {
      const chains = chainIds(image.layers.map((l) => l.diffId));
      const layers: string[] = [];
      let parent: string | undefined;
      image.layers.forEach((layer, i) => {
        const isTop = i === image.layers.length - 1;
        const id = v1Id(chains[i]!, parent, isTop ? image.config.digest : undefined);
        const digest = layer.descriptor.digest;
        if (!dirs.has(id)) {
          const json: Record<string, unknown> = {id, ...(parent !== undefined ? {parent} : {}), created: EPOCH, os: image.platform.os};
          members.push({type: 'dir', name: id}, {type: 'file', name: `${id}/VERSION`, bytes: Buffer.from('1.0')}, {type: 'file', name: `${id}/json`, bytes: Buffer.from(JSON.stringify(json))});
          const first = stored.get(digest);
          // A blob already stored elsewhere becomes a symlink, as docker save does; manifest.json
          // still names the regular file (skopeo 1.9 reads a symlinked layer as size 0, docs/peers.md).
          if (first) members.push({type: 'symlink', name: `${id}/layer.tar`, target: `../${first}`});
          else {
            // A foreign layer that is not here keeps its place in Layers, its descriptor in LayerSources.
            const member = blobMember(`${id}/layer.tar`, layer);
            if (member) members.push(member);
            stored.set(digest, `${id}/layer.tar`);
          }
          dirs.set(id, stored.get(digest)!);
        }
        // Same v1 ID = same ChainID = same diffID: docker checks only that, so the directory's file serves.
        layers.push(dirs.get(id)!);
        parent = id;
      });
      topIds.set(image, parent);
      const configName = `${digestHex(image.config.digest)}.json`;
      if (!configs.has(image.config.digest)) {
        configs.add(image.config.digest);
        members.push({type: 'file', name: configName, bytes: image.config.bytes});
      }
      const sources = layerSources(image);
      return {Config: configName, RepoTags: null, Layers: layers, ...(sources ? {LayerSources: sources} : {})};
    });
  }
  members.push({type: 'file', name: 'manifest.json', bytes: manifestJson(items.values(), options.fullRepoTags === true)});
  const repositories = repositoriesJson([...items].map(([image, item]) => ({names: item.names, topId: topIds.get(image)})));
  if (repositories) members.push({type: 'file', name: 'repositories', bytes: repositories});
  return {members, images: items.size, blobs: stored.size + configs.size};
}
