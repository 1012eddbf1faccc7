/**
 * The bad-input corpus: every case is generated at test time from the good fixtures (fixtures/README.md)
 * into a directory of its own, never committed. Each case says what ferry must do with it, per
 * command: fail (exit 1 naming the problem), or — for damage a command never touches, or can repair —
 * succeed. docs/bad-input.md lists them with ferry's message.
 */
import {mkdirSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import {CompressStream} from 'zstd-napi';
import {writeChecksum} from '../../src/tar/write.js';
import {FIXTURES} from '../helpers/cli.js';
import {
  buildLayout,
  buildLegacy,
  dir,
  digestOf,
  file,
  flipByte,
  gzip,
  headerOf,
  json,
  loadDockerSave,
  member,
  memberOffsets,
  packTar,
  readTarMembers,
  replaceLayer,
  sha256Hex,
  withDiffIds,
  zstdZeroBomb,
  type ImageParts,
  type Member,
} from './kit.js';

/** What a command must do with a case. */
export type Outcome =
  /** exit 1, one `ferry: …` line naming the problem (verify: one line per problem), nothing written */
  | 'fail'
  /** exit 0: the command never reads the damaged part */
  | 'ok'
  /** exit 0 with a `ferry: warning: …` line on stderr: the damage is repaired or left behind */
  | 'repair';

export interface HostileCase {
  id: string;
  /** One line: what is broken. */
  title: string;
  /** Where the case comes from (fixture or real-world report). */
  origin: string;
  /** The source argument, relative to the case directory (may carry a transport prefix). */
  source: string;
  /** Extra environment (limits lowered so a bomb trips quickly). */
  env?: Record<string, string>;
  /** What every failing command's stderr must name (the member, blob or offset). */
  names: RegExp;
  /** Outcome of `inspect` (reads JSON and headers only); verify always fails. */
  inspect: Outcome;
  /** convert / squash / export (they write); default 'fail'. */
  writers?: Outcome;
  /** ls / cat (they read layers but write nothing); default: like the writers, 'repair' reads as 'ok'. */
  readers?: Outcome;
  /** Per-command exceptions to the above, each explained where the case is made. */
  outcomes?: Partial<Record<string, Outcome>>;
  /** For commands that work on one image (squash, export, ls, cat) when the case holds several. */
  image?: string;
}

const LEGACY = path.join(FIXTURES, 'edge.docker-save.tar');
const MULTI = path.join(FIXTURES, 'edge-multi.docker-save.tar');
const SKOPEO_OCI = path.join(FIXTURES, 'edge.skopeo.oci-archive.tar');
const EXPORT = path.join(FIXTURES, 'edge.docker-export.tar');
const GZ = path.join(FIXTURES, 'edge.docker-save.tar.gz');
const ZST = path.join(FIXTURES, 'edge.docker-save.tar.zst');

/**
 * ls, cat and analyze read what they need: tar headers (and cat one file's bytes; analyze the bodies
 * it must compare, docs/analyze.md). Damage to bytes they skip in an uncompressed layer goes unseen;
 * a compressed layer is read whole, and checked, either way.
 */
const HEADERS_ONLY: Partial<Record<string, Outcome>> = {ls: 'ok', cat: 'ok', analyze: 'ok'};

/** Seeded bytes (no Math.random: the corpus is the same on every run). */
function pseudoRandom(length: number, seed = 7): Buffer {
  const out = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function zstdAsync(bytes: Buffer): Promise<Buffer> {
  const c = new CompressStream({compressionLevel: 3});
  const parts: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    c.on('data', (d: Buffer) => parts.push(d));
    c.on('end', () => resolve(Buffer.concat(parts)));
    c.on('error', reject);
  });
  c.end(bytes);
  return done;
}

/** A header whose size field says something no writer would: patched after encoding, checksum redone. */
function patchedHeader(m: Member, patch: (block: Buffer) => void): Buffer {
  const block = Buffer.from(headerOf(m));
  patch(block);
  writeChecksum(block);
  return block;
}

const NEGATIVE_SIZE = (block: Buffer): void => {
  block.fill(0xff, 124, 136); // GNU base-256, two's complement: -1
};
const ABSURD_SIZE = (block: Buffer): void => {
  block.write('77777777777\0', 124, 'latin1'); // 8 GiB - 1 declared, a few bytes present
};

/** The top layer of the edge image with `extra` members appended (before the end marker). */
async function hostileTopLayer(parts: ImageParts, extra: Member[], options: {endMarker?: boolean} = {}): Promise<Buffer> {
  const top = await readTarMembers(parts.layers.at(-1)!);
  return packTar([...top, ...extra], options);
}

interface Built {
  spec: HostileCase;
  /** Writes the case's input under `dir`. */
  write(dir: string): void;
}

const tarCase = (spec: Omit<HostileCase, 'source'> & {source?: string}, bytes: Buffer, fileName = `${spec.id}.tar`): Built => ({
  spec: {...spec, source: spec.source ?? fileName},
  write: (d) => writeFileSync(path.join(d, fileName), bytes),
});

/** Writes members as a directory tree (an OCI layout directory, read in place). */
function writeTree(root: string, members: readonly Member[]): void {
  mkdirSync(root, {recursive: true});
  for (const m of members) {
    const target = path.join(root, m.name);
    if (m.type === 'dir') mkdirSync(target, {recursive: true});
    else if (m.type === 'symlink') symlinkSync(m.linkname ?? '', target);
    else {
      mkdirSync(path.dirname(target), {recursive: true});
      writeFileSync(target, m.data ?? Buffer.alloc(0));
    }
  }
}

/** Replaces (or adds) a member, keeping the others in place. */
function put(members: readonly Member[], m: Member): Member[] {
  const i = members.findIndex((x) => x.name === m.name);
  if (i < 0) return [...members, m];
  const out = [...members];
  out[i] = m;
  return out;
}

const without = (members: readonly Member[], name: string): Member[] => {
  member(members, name);
  return members.filter((m) => m.name !== name);
};

export async function buildCases(): Promise<Built[]> {
  const legacyBytes = readFileSync(LEGACY);
  const legacyOffsets = await memberOffsets(legacyBytes);
  const legacy = await readTarMembers(legacyBytes);
  const [edge] = await loadDockerSave(LEGACY);
  if (!edge) throw new Error('fixture without images');
  const multi = await loadDockerSave(MULTI);
  const ociBytes = readFileSync(SKOPEO_OCI);
  const oci = await readTarMembers(ociBytes);
  const ociOffsets = await memberOffsets(ociBytes);
  const ociIndex = JSON.parse(member(oci, 'index.json').data!.toString()) as {manifests: Array<{digest: string}>};
  const ociManifestName = `blobs/sha256/${ociIndex.manifests[0]!.digest.slice(7)}`;
  const ociManifest = JSON.parse(member(oci, ociManifestName).data!.toString()) as {config: {digest: string}; layers: Array<{digest: string; size: number}>};
  const ociConfigName = `blobs/sha256/${ociManifest.config.digest.slice(7)}`;
  const ociLayerName = (i: number): string => `blobs/sha256/${ociManifest.layers.at(i)!.digest.slice(7)}`;
  const legacyManifest = JSON.parse(member(legacy, 'manifest.json').data!.toString()) as Array<{Config: string; Layers: string[]}>;
  const legacyConfigName = legacyManifest[0]!.Config;
  const legacyLayerName = (i: number): string => legacyManifest[0]!.Layers.at(i)!;
  const at = (name: string): {header: number; data: number; size: number} => {
    const o = legacyOffsets.get(name);
    if (!o) throw new Error(`no ${name} in ${LEGACY}`);
    return o;
  };
  const cut = (bytes: Buffer, length: number): Buffer => bytes.subarray(0, length);
  const small = withDiffIds(edge);

  const cases: Built[] = [];
  const add = (b: Built): void => {
    cases.push(b);
  };

  // ---- Truncated archives (a copy cut short) ----
  add(tarCase({id: 'cut-in-first-header', title: 'archive cut inside its first tar header (200 bytes left)', origin: 'edge.docker-save.tar', names: /cut-in-first-header\.tar/, inspect: 'fail'}, cut(legacyBytes, 200)));
  {
    const m = at('manifest.json');
    add(tarCase({id: 'cut-in-header', title: 'archive cut inside the tar header of manifest.json', origin: 'edge.docker-save.tar', names: new RegExp(`offset ${m.header}`), inspect: 'fail'}, cut(legacyBytes, m.header + 100)));
    add(tarCase({id: 'cut-in-manifest-json', title: 'archive cut inside the data of manifest.json', origin: 'edge.docker-save.tar', names: /manifest\.json/, inspect: 'fail'}, cut(legacyBytes, m.data + 100)));
    add(
      tarCase(
        {id: 'cut-before-manifest-json', title: 'archive cut at the member boundary before manifest.json (no end-of-archive marker)', origin: 'edge.docker-save.tar', names: /end-of-archive|manifest\.json/, inspect: 'fail'},
        cut(legacyBytes, m.header),
      ),
    );
  }
  {
    const l = at(legacyLayerName(0));
    add(tarCase({id: 'cut-in-layer', title: 'archive cut in the middle of a layer member', origin: 'edge.docker-save.tar', names: new RegExp(legacyLayerName(0).replace(/\./g, '\\.')), inspect: 'fail'}, cut(legacyBytes, l.data + Math.floor(l.size / 2))));
  }
  {
    const r = at('repositories');
    add(
      tarCase(
        {id: 'no-end-marker', title: 'archive complete but its two end-of-archive zero blocks are missing', origin: 'edge.docker-save.tar', names: /end-of-archive/, inspect: 'ok', writers: 'repair'},
        cut(legacyBytes, r.data + 512),
      ),
    );
  }
  add(tarCase({id: 'gzip-cut', title: 'gzip-compressed archive cut in half', origin: 'edge.docker-save.tar.gz', names: /gzip/, inspect: 'fail'}, cut(readFileSync(GZ), Math.floor(readFileSync(GZ).length / 2)), 'gzip-cut.tar.gz'));
  add(tarCase({id: 'zstd-cut', title: 'zstd-compressed archive cut in half', origin: 'edge.docker-save.tar.zst', names: /zstd/, inspect: 'fail'}, cut(readFileSync(ZST), Math.floor(readFileSync(ZST).length / 2)), 'zstd-cut.tar.zst'));
  {
    const gz = readFileSync(GZ);
    add(tarCase({id: 'gzip-bad-crc', title: 'gzip-compressed archive whose CRC32 trailer is wrong', origin: 'edge.docker-save.tar.gz', names: /gzip/, inspect: 'fail'}, flipByte(gz, gz.length - 6, 0xff), 'gzip-bad-crc.tar.gz'));
  }

  // ---- Flipped bytes in real tools' output ----
  {
    const layerName = legacyLayerName(0);
    const layerAt = at(layerName);
    const inner = await memberOffsets(legacyBytes.subarray(layerAt.data, layerAt.data + layerAt.size));
    const zeros = [...inner.entries()].find(([n]) => n.endsWith('zeros.bin'))![1];
    add(
      tarCase(
        {id: 'flip-layer-content', title: 'one byte flipped inside a file of a layer (zeros.bin)', origin: 'edge.docker-save.tar', names: new RegExp(`${layerName.replace(/\./g, '\\.')}.*(diffID|digest)`), inspect: 'ok', outcomes: HEADERS_ONLY},
        flipByte(legacyBytes, layerAt.data + zeros.data + 1000),
      ),
    );
    const second = at(legacyLayerName(1));
    add(
      tarCase(
        {id: 'flip-layer-header', title: 'one byte flipped in a tar header inside a layer (checksum no longer matches)', origin: 'edge.docker-save.tar', names: new RegExp(legacyLayerName(1).replace(/\./g, '\\.')), inspect: 'ok'},
        flipByte(legacyBytes, second.data + 3),
      ),
    );
    const cfg = at(legacyConfigName);
    const created = legacyBytes.subarray(cfg.data, cfg.data + cfg.size).indexOf('"created":"') + 12;
    add(
      tarCase(
        {id: 'flip-config', title: 'one digit flipped in the config (still valid JSON; its file name no longer matches its digest)', origin: 'edge.docker-save.tar', names: new RegExp(legacyConfigName.slice(0, 12)), inspect: 'fail'},
        flipByte(legacyBytes, cfg.data + created, 0x01),
      ),
    );
    const mj = at('manifest.json');
    add(tarCase({id: 'flip-manifest-json', title: 'one byte flipped in manifest.json ("[" becomes "{")', origin: 'edge.docker-save.tar', names: /manifest\.json/, inspect: 'fail'}, flipByte(legacyBytes, mj.data, 0x20)));
    add(tarCase({id: 'flip-outer-header', title: 'one byte flipped in the tar header of manifest.json (checksum mismatch)', origin: 'edge.docker-save.tar', names: new RegExp(`offset ${mj.header}`), inspect: 'fail'}, flipByte(legacyBytes, mj.header + 2)));
  }
  {
    const digitIn = (bytes: Buffer, from: number): number => {
      for (let i = from; i < bytes.length; i++) if (bytes[i]! >= 0x30 && bytes[i]! <= 0x38) return i;
      throw new Error('no digit');
    };
    const idx = ociOffsets.get('index.json')!;
    const idxText = ociBytes.subarray(idx.data, idx.data + idx.size);
    add(
      tarCase(
        {id: 'flip-index-json', title: 'one hex digit flipped in index.json: the manifest digest names no blob', origin: 'edge.skopeo.oci-archive.tar', names: /index\.json.*sha256:/, inspect: 'fail'},
        flipByte(ociBytes, idx.data + digitIn(idxText, idxText.indexOf('sha256:') + 7), 0x01),
      ),
    );
    const man = ociOffsets.get(ociManifestName)!;
    const manText = ociBytes.subarray(man.data, man.data + man.size);
    add(
      tarCase(
        {id: 'flip-oci-manifest', title: 'one hex digit flipped in the image manifest (digest no longer matches index.json)', origin: 'edge.skopeo.oci-archive.tar', names: new RegExp(ociIndex.manifests[0]!.digest.slice(0, 20)), inspect: 'fail'},
        flipByte(ociBytes, man.data + digitIn(manText, manText.indexOf('"digest"') + 17), 0x01),
      ),
    );
    const cfg = ociOffsets.get(ociConfigName)!;
    const cfgText = ociBytes.subarray(cfg.data, cfg.data + cfg.size);
    add(
      tarCase(
        {id: 'flip-oci-config', title: 'one digit flipped in the config blob (digest no longer matches the manifest)', origin: 'edge.skopeo.oci-archive.tar', names: new RegExp(ociManifest.config.digest.slice(0, 20)), inspect: 'fail'},
        flipByte(ociBytes, cfg.data + digitIn(cfgText, cfgText.indexOf('"created"')), 0x01),
      ),
    );
    const layer = ociOffsets.get(ociLayerName(0))!;
    add(
      tarCase(
        {id: 'flip-gzip-layer', title: 'one byte flipped in the middle of a gzip layer blob', origin: 'edge.skopeo.oci-archive.tar', names: new RegExp(ociManifest.layers[0]!.digest.slice(0, 20)), inspect: 'ok'},
        flipByte(ociBytes, layer.data + Math.floor(layer.size / 2), 0xff),
      ),
    );
  }

  // ---- Blobs missing ----
  add(tarCase({id: 'missing-layer-blob', title: 'an OCI manifest names a layer blob the archive lacks', origin: 'edge.skopeo.oci-archive.tar', names: new RegExp(ociManifest.layers[1]!.digest.slice(0, 20)), inspect: 'ok'}, packTar(without(oci, ociLayerName(1)))));
  add(tarCase({id: 'missing-config-blob', title: 'an OCI manifest names a config blob the archive lacks', origin: 'edge.skopeo.oci-archive.tar', names: new RegExp(ociManifest.config.digest.slice(7, 20)), inspect: 'fail'}, packTar(without(oci, ociConfigName))));
  add(tarCase({id: 'missing-manifest-blob', title: 'index.json names a manifest blob the archive lacks', origin: 'edge.skopeo.oci-archive.tar', names: new RegExp(ociIndex.manifests[0]!.digest.slice(0, 20)), inspect: 'fail'}, packTar(without(oci, ociManifestName))));
  add(tarCase({id: 'missing-legacy-layer', title: 'manifest.json names a layer.tar the archive lacks', origin: 'edge.docker-save.tar', names: new RegExp(legacyLayerName(1).replace(/\./g, '\\.')), inspect: 'ok'}, packTar(without(legacy, legacyLayerName(1)))));
  add(tarCase({id: 'missing-legacy-config', title: 'manifest.json names a config file the archive lacks', origin: 'edge.docker-save.tar', names: new RegExp(legacyConfigName.replace(/\./g, '\\.')), inspect: 'fail'}, packTar(without(legacy, legacyConfigName))));

  // ---- Descriptors that lie ----
  const layout = (options: Parameters<typeof buildLayout>[1], images: ImageParts[] = [small]): Buffer => packTar(buildLayout(images, {compress: 'gzip', ...options}));
  add(tarCase({id: 'wrong-size-layer', title: 'a layer descriptor says one byte more than the blob has', origin: 'edge (rebuilt as oci-archive)', names: /layer\[1\]|size mismatch/, inspect: 'ok'}, layout({manifest: (m) => void ((m.layers as Array<{size: number}>)[1]!.size += 1)})));
  add(tarCase({id: 'wrong-size-config', title: 'the config descriptor says one byte less than the blob has', origin: 'edge (rebuilt as oci-archive)', names: /config.*size mismatch|size mismatch.*config/, inspect: 'fail'}, layout({manifest: (m) => void ((m.config as {size: number}).size -= 1)})));
  add(tarCase({id: 'wrong-size-manifest', title: 'index.json gives the manifest a wrong size', origin: 'edge (rebuilt as oci-archive)', names: /manifest.*size mismatch|size mismatch/, inspect: 'fail'}, layout({index: (i) => void ((i.manifests as Array<{size: number}>)[0]!.size += 7)})));
  add(
    tarCase(
      {id: 'digest-unknown-algorithm', title: 'a layer descriptor uses an unknown digest algorithm (md5)', origin: 'edge (rebuilt as oci-archive)', names: /md5/, inspect: 'fail'},
      layout({manifest: (m) => void ((m.layers as Array<{digest: string}>)[0]!.digest = 'md5:d41d8cd98f00b204e9800998ecf8427e')}),
    ),
  );
  add(
    tarCase(
      {id: 'digest-malformed-hex', title: 'index.json gives a manifest digest that is not 64 lowercase hex digits', origin: 'edge (rebuilt as oci-archive)', names: /sha256:XYZ/, inspect: 'fail'},
      layout({index: (i) => void ((i.manifests as Array<{digest: string}>)[0]!.digest = 'sha256:XYZ0123')}),
    ),
  );
  add(
    tarCase(
      {id: 'digest-uppercase-hex', title: 'the config descriptor digest is written in uppercase hex', origin: 'edge (rebuilt as oci-archive)', names: /sha256:[0-9A-F]{64}/, inspect: 'fail'},
      layout({manifest: (m) => void ((m.config as {digest: string}).digest = (m.config as {digest: string}).digest.toUpperCase().replace('SHA256', 'sha256'))}),
    ),
  );
  add(tarCase({id: 'diffid-malformed', title: 'a diff_id in the config is not a digest', origin: 'edge (rebuilt as docker-archive)', names: /diff_ids\[0\]/, inspect: 'fail'}, packTar(buildLegacy([{...small, config: {...small.config, rootfs: {type: 'layers', diff_ids: ['sha256:123', ...(small.config.rootfs as {diff_ids: string[]}).diff_ids.slice(1)]}}}]))));
  add(
    tarCase(
      {id: 'layer-count-mismatch', title: 'the config lists one diff_id more than manifest.json lists layers', origin: 'edge (rebuilt as docker-archive)', names: /diff_ids/, inspect: 'fail'},
      packTar(buildLegacy([{...small, config: {...small.config, rootfs: {type: 'layers', diff_ids: [...(small.config.rootfs as {diff_ids: string[]}).diff_ids, digestOf('x')]}}}])),
    ),
  );
  add(
    tarCase(
      {id: 'diffid-wrong', title: 'a diff_id in the config names other bytes than the layer holds', origin: 'edge (rebuilt as docker-archive)', names: /layer\.tar.*digest mismatch/, inspect: 'ok', outcomes: HEADERS_ONLY},
      packTar(buildLegacy([{...small, config: {...small.config, rootfs: {type: 'layers', diff_ids: [digestOf('other'), ...(small.config.rootfs as {diff_ids: string[]}).diff_ids.slice(1)]}}}])),
    ),
  );

  // ---- Not JSON, or JSON of the wrong shape ----
  const withManifestJson = (text: string): Buffer => packTar(put(legacy, file('manifest.json', text)));
  add(tarCase({id: 'manifest-json-not-json', title: 'manifest.json is not JSON', origin: 'edge.docker-save.tar', names: /manifest\.json.*invalid JSON/, inspect: 'fail'}, withManifestJson('[{"Config": oops')));
  add(tarCase({id: 'manifest-json-object', title: 'manifest.json is an object, not an array', origin: 'edge.docker-save.tar', names: /manifest\.json.*array/, inspect: 'fail'}, withManifestJson('{"Config":"x"}')));
  add(tarCase({id: 'manifest-json-layers-string', title: 'manifest.json Layers is a string', origin: 'edge.docker-save.tar', names: /manifest\.json.*Layers/, inspect: 'fail'}, withManifestJson(JSON.stringify([{Config: legacyConfigName, RepoTags: null, Layers: 'x'}]))));
  add(tarCase({id: 'manifest-json-config-number', title: 'manifest.json Config is a number', origin: 'edge.docker-save.tar', names: /manifest\.json.*Config/, inspect: 'fail'}, withManifestJson(JSON.stringify([{Config: 42, RepoTags: null, Layers: []}]))));
  add(tarCase({id: 'manifest-json-repotags-object', title: 'manifest.json RepoTags is an object', origin: 'edge.docker-save.tar', names: /manifest\.json.*RepoTags/, inspect: 'fail'}, withManifestJson(JSON.stringify([{Config: legacyConfigName, RepoTags: {a: 1}, Layers: legacyManifest[0]!.Layers}]))));
  {
    const padded = `${' '.repeat(16 * 1024 * 1024)}${member(legacy, 'manifest.json').data!.toString()}`;
    add(tarCase({id: 'manifest-json-too-large', title: 'manifest.json is 16 MiB of whitespace before the JSON (over the metadata limit)', origin: 'edge.docker-save.tar', names: /manifest\.json.*limit/, inspect: 'fail'}, withManifestJson(padded)));
  }
  const withOciMember = (name: string, text: string): Buffer => packTar(put(oci, file(name, text)));
  add(tarCase({id: 'index-json-not-json', title: 'index.json is not JSON', origin: 'edge.skopeo.oci-archive.tar', names: /index\.json.*invalid JSON/, inspect: 'fail'}, withOciMember('index.json', '{"schemaVersion": 2, "manifests": [')));
  add(tarCase({id: 'index-json-manifests-object', title: 'index.json manifests is an object', origin: 'edge.skopeo.oci-archive.tar', names: /index\.json.*manifests/, inspect: 'fail'}, withOciMember('index.json', '{"schemaVersion": 2, "manifests": {}}')));
  add(tarCase({id: 'index-json-schema-string', title: 'index.json schemaVersion is the string "2"', origin: 'edge.skopeo.oci-archive.tar', names: /index\.json.*schemaVersion/, inspect: 'fail'}, withOciMember('index.json', '{"schemaVersion": "2", "manifests": []}')));
  add(tarCase({id: 'index-json-descriptor-string', title: 'an index.json descriptor is a string', origin: 'edge.skopeo.oci-archive.tar', names: /index\.json.*manifests\[0\]/, inspect: 'fail'}, withOciMember('index.json', '{"schemaVersion": 2, "manifests": ["sha256:00"]}')));
  add(tarCase({id: 'oci-layout-not-json', title: 'oci-layout is not JSON', origin: 'edge.skopeo.oci-archive.tar', names: /oci-layout/, inspect: 'fail'}, withOciMember('oci-layout', 'imageLayoutVersion=1.0.0')));
  const legacyWithConfig = (raw: Buffer | Record<string, unknown>): Buffer => packTar(buildLegacy([Buffer.isBuffer(raw) ? {...small, rawConfig: raw} : {...small, config: raw}]));
  add(tarCase({id: 'config-not-json', title: 'the image config is not JSON', origin: 'edge (rebuilt as docker-archive)', names: /\.json.*invalid JSON/, inspect: 'fail'}, legacyWithConfig(Buffer.from('{"architecture": "amd64", '))));
  add(tarCase({id: 'config-no-rootfs', title: 'the image config has no rootfs', origin: 'edge (rebuilt as docker-archive)', names: /rootfs/, inspect: 'fail'}, legacyWithConfig({...small.config, rootfs: undefined})));
  add(tarCase({id: 'config-diffids-string', title: 'the config rootfs.diff_ids is a string', origin: 'edge (rebuilt as docker-archive)', names: /rootfs/, inspect: 'fail'}, legacyWithConfig({...small.config, rootfs: {type: 'layers', diff_ids: 'sha256:00'}})));
  add(tarCase({id: 'config-history-object', title: 'the config history is an object', origin: 'edge (rebuilt as docker-archive)', names: /history/, inspect: 'fail'}, legacyWithConfig({...small.config, history: {created: 'now'}})));
  add(tarCase({id: 'config-array', title: 'the image config is a JSON array', origin: 'edge (rebuilt as docker-archive)', names: /config.*not a JSON object|not a JSON object/, inspect: 'fail'}, legacyWithConfig(Buffer.from('[1, 2, 3]'))));
  add(tarCase({id: 'oci-manifest-schema-1', title: 'the OCI manifest says schemaVersion 1', origin: 'edge (rebuilt as oci-archive)', names: /schemaVersion/, inspect: 'fail'}, layout({manifest: (m) => void (m.schemaVersion = 1)})));
  add(tarCase({id: 'oci-manifest-no-layers', title: 'the OCI manifest has no layers array', origin: 'edge (rebuilt as oci-archive)', names: /layers/, inspect: 'fail'}, layout({manifest: (m) => void delete m.layers})));

  // ---- The outer tar itself ----
  add(
    tarCase(
      {id: 'duplicate-manifest-json', title: 'two manifest.json members with different contents (which one counts depends on the reader)', origin: 'edge.docker-save.tar', names: /manifest\.json.*more than once/, inspect: 'fail'},
      packTar([...legacy, file('manifest.json', JSON.stringify([{Config: legacyConfigName, RepoTags: ['evil:1'], Layers: legacyManifest[0]!.Layers}]))]),
    ),
  );
  add(tarCase({id: 'duplicate-unused-member', title: 'the repositories member stored twice (a file no reader needs)', origin: 'edge.docker-save.tar', names: /repositories.*more than once/, inspect: 'ok', writers: 'repair'}, packTar([...legacy, file('repositories', '{}')])));
  {
    const mjIndex = legacy.findIndex((m) => m.name === 'manifest.json');
    const huge = [...legacy];
    huge[mjIndex] = {...legacy[mjIndex]!, pax: new Map([['comment', Buffer.alloc(2 * 1024 * 1024, 0x61)]])};
    add(tarCase({id: 'huge-pax-header', title: 'a 2 MiB PAX header in front of manifest.json (over the 1 MiB limit)', origin: 'edge.docker-save.tar', names: /PAX header at offset \d+/, inspect: 'fail'}, packTar(huge)));
    const negative = [...legacy];
    negative[mjIndex] = {...legacy[mjIndex]!, rawHeader: patchedHeader(legacy[mjIndex]!, NEGATIVE_SIZE)};
    add(tarCase({id: 'negative-size', title: 'a tar header with a negative (base-256) size', origin: 'edge.docker-save.tar', names: /negative size/, inspect: 'fail'}, packTar(negative)));
    const absurd = [...legacy];
    const ri = legacy.findIndex((m) => m.name === 'repositories');
    absurd[ri] = {...legacy[ri]!, rawHeader: patchedHeader(legacy[ri]!, ABSURD_SIZE)};
    add(tarCase({id: 'absurd-size', title: 'a tar header declaring 8 GiB for a 96-byte member', origin: 'edge.docker-save.tar', names: /repositories.*truncated|truncated.*repositories/, inspect: 'fail'}, packTar(absurd)));
    const zeroThenData = Buffer.concat([packTar(legacy.slice(0, mjIndex), {endMarker: false}), Buffer.alloc(512), packTar(legacy.slice(mjIndex))]);
    add(tarCase({id: 'zero-block-then-data', title: 'a lone zero block between members (end marker followed by more members)', origin: 'edge.docker-save.tar', names: /zero block followed by data/, inspect: 'fail'}, zeroThenData));
  }
  add(tarCase({id: 'empty-file', title: 'an empty file', origin: '(none)', names: /empty-file\.tar.*empty/, inspect: 'fail'}, Buffer.alloc(0)));
  add(tarCase({id: 'not-a-tar', title: '4 KiB of random bytes', origin: '(none)', names: /not-a-tar\.tar.*not an image archive/, inspect: 'fail'}, pseudoRandom(4096)));
  add({
    spec: {id: 'directory-for-oci-archive', title: 'oci-archive: names a directory (an OCI layout, but not a tar)', origin: 'edge (rebuilt as OCI layout)', source: 'oci-archive:layout', names: /layout.*directory/, inspect: 'fail'},
    write: (d) => writeTree(path.join(d, 'layout'), buildLayout([small], {compress: 'gzip'})),
  });
  add({
    spec: {id: 'directory-not-an-image', title: 'a directory that holds no image', origin: '(none)', source: 'somedir', names: /somedir.*not an image/, inspect: 'fail'},
    write: (d) => writeTree(path.join(d, 'somedir'), [file('notes.txt', 'hello')]),
  });
  add(tarCase({id: 'oci-prefix-on-file', title: 'oci: (a layout directory) names a tar file', origin: 'edge.skopeo.oci-archive.tar', source: 'oci:oci-prefix-on-file.tar', names: /oci-prefix-on-file\.tar.*directory/, inspect: 'fail'}, ociBytes));
  {
    const name = legacyLayerName(2);
    add(tarCase({id: 'symlink-loop', title: 'a layer.tar that is a symlink to itself', origin: 'edge.docker-save.tar', names: new RegExp(name.replace(/\./g, '\\.')), inspect: 'fail'}, packTar(put(legacy, {name, type: 'symlink', linkname: 'layer.tar'}))));
    add(tarCase({id: 'symlink-outside-archive', title: 'a layer.tar that is a symlink pointing outside the archive (../../etc/passwd)', origin: 'edge.docker-save.tar', names: /outside/, inspect: 'fail'}, packTar(put(legacy, {name, type: 'symlink', linkname: '../../etc/passwd'}))));
  }
  {
    const members = buildLayout([small], {compress: 'gzip'});
    const index = JSON.parse(member(members, 'index.json').data!.toString()) as {manifests: Array<{digest: string}>};
    const manifest = JSON.parse(member(members, `blobs/sha256/${index.manifests[0]!.digest.slice(7)}`).data!.toString()) as {layers: Array<{digest: string}>};
    const blob = `blobs/sha256/${manifest.layers[0]!.digest.slice(7)}`;
    add({
      spec: {id: 'oci-dir-blob-symlink-outside', title: 'an OCI layout directory whose layer blob is a symlink to /etc/passwd', origin: 'edge (rebuilt as OCI layout)', source: 'oci:layout', names: /outside/, inspect: 'fail'},
      write: (d) => writeTree(path.join(d, 'layout'), put(members, {name: blob, type: 'symlink', linkname: '/etc/passwd'})),
    });
  }
  {
    // Nine indexes nested inside each other, the innermost naming the image's manifest.
    const members = buildLayout([small], {compress: 'gzip'});
    const top = JSON.parse(member(members, 'index.json').data!.toString()) as {manifests: Array<Record<string, unknown>>};
    let child: Record<string, unknown> = {...top.manifests[0]!};
    delete child.annotations;
    const extra: Member[] = [];
    for (let level = 0; level < 10; level++) {
      const bytes = json({schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [child]});
      extra.push(file(`blobs/sha256/${sha256Hex(bytes)}`, bytes));
      child = {mediaType: 'application/vnd.oci.image.index.v1+json', digest: digestOf(bytes), size: bytes.length};
    }
    const index = json({schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [child]});
    add(tarCase({id: 'index-nesting-too-deep', title: 'indexes nested ten deep (a loop in disguise)', origin: 'edge (rebuilt as oci-archive)', names: /nested deeper/, inspect: 'fail'}, packTar([...put(members, file('index.json', index)), ...extra])));
  }
  add(tarCase({id: 'docker-v1-archive', title: 'a pre-1.10 docker save (repositories + <id>/json, no manifest.json)', origin: 'edge.docker-save.tar', names: /pre-1\.10/, inspect: 'fail'}, packTar(without(legacy, 'manifest.json'))));

  // ---- Bombs ----
  {
    const zeros = Buffer.alloc(48 * 1024 * 1024);
    const bombBytes = zlib.gzipSync(Buffer.concat([packTar(await readTarMembers(small.layers.at(-1)!)), zeros]), {level: 9});
    const env = {FERRY_MAX_RATIO: '100', FERRY_RATIO_SLACK: '1048576'};
    const bombParts = {...small, blobs: [...small.layers.map(() => undefined).slice(0, -1), {data: bombBytes, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip'}]};
    add(tarCase({id: 'gzip-bomb-layer', title: `a ${Math.round(bombBytes.length / 1024)} KiB gzip layer that inflates to 48 MiB (limits lowered: FERRY_MAX_RATIO=100, FERRY_RATIO_SLACK=1 MiB)`, origin: 'edge (rebuilt as oci-archive)', env, names: /decompression bomb|exceeds the limit/, inspect: 'ok'}, layout({}, [bombParts])));
    const outer = zlib.gzipSync(Buffer.concat([legacyBytes, zeros]), {level: 9});
    add(tarCase({id: 'gzip-bomb-archive', title: `a ${Math.round(outer.length / 1024)} KiB gzip archive that inflates to 48 MiB (limits lowered as above)`, origin: 'edge.docker-save.tar', env, names: /gzip-bomb-archive\.tar\.gz.*(bomb|limit)/, inspect: 'fail'}, outer, 'gzip-bomb-archive.tar.gz'));
    const zbomb = zstdZeroBomb(8 * 1024 * 1024 * 1024);
    const zParts = {...small, blobs: [...small.layers.map(() => undefined).slice(0, -1), {data: zbomb, mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd'}]};
    add(tarCase({id: 'zstd-bomb-layer', title: `a ${Math.round(zbomb.length / 1024)} KiB zstd layer that would inflate to 8 GiB (default limits)`, origin: 'edge (rebuilt as oci-archive)', names: /decompression bomb|exceeds the limit/, inspect: 'ok'}, layout({}, [zParts])));
  }

  // ---- Layers whose entries are hostile (digests all consistent: only the entries are wrong) ----
  const evil = async (id: string, title: string, entries: Member[], names: RegExp, outcomes: HostileCase['outcomes'] = {}): Promise<void> => {
    const layer = await hostileTopLayer(small, entries);
    add(tarCase({id, title, origin: 'edge (top layer extended, rebuilt as docker-archive)', names, inspect: 'ok', outcomes}, packTar(buildLegacy([replaceLayer(small, -1, layer)]))));
  };
  await evil('layer-dotdot', 'a layer entry named ../escape.txt', [file('../escape.txt', 'x')], /\.\.\/escape\.txt/);
  await evil('layer-dotdot-nested', 'a layer entry named app/../../escape.txt', [file('app/../../escape.txt', 'x')], /app\/\.\.\/\.\.\/escape\.txt/);
  await evil('layer-absolute-path', 'a layer entry with an absolute path (/etc/cron.d/evil)', [file('/etc/cron.d/evil', 'x')], /\/etc\/cron\.d\/evil/);
  // A relative symlink climbing out of the root (app/link -> ../../../etc/shadow) is not bad input:
  // docker loads and exports it unchanged, so ferry keeps it too (see entryPathProblem in src/tar/walk.ts).
  await evil('layer-hardlink-outside', 'a hardlink whose target climbs out of the root (../../etc/shadow)', [{name: 'app/hard', type: 'hardlink', linkname: '../../etc/shadow'}], /app\/hard/);
  // convert copies layers one by one: a hardlink's target may be in a lower layer, which only the
  // whole image shows (verify and the engine see it; convert leaves it to them).
  await evil('layer-hardlink-missing', 'a hardlink to a file no layer created (app/nothing-here)', [{name: 'app/hard', type: 'hardlink', linkname: 'app/nothing-here'}], /app\/hard.*app\/nothing-here/, {convert: 'ok'});
  // The engine applies entries in order, the last one winning, as extraction does; what it writes has
  // no duplicates. convert would copy the layer as it is, which docker load then rejects: it refuses.
  await evil('layer-duplicate-entry', 'the same file twice in one layer (docker load rejects it)', [file('app/twice.txt', 'one'), file('app/twice.txt', 'two')], /app\/twice\.txt/, {squash: 'ok', export: 'ok', ls: 'ok', cat: 'ok', analyze: 'ok'});
  await evil('layer-huge-pax', 'a 2 MiB PAX header inside a layer', [file('app/big-pax.txt', 'x', {pax: new Map([['comment', Buffer.alloc(2 * 1024 * 1024, 0x62)]])})], /PAX header/);
  await evil('layer-nul-in-name', 'a PAX path holding a NUL byte', [file('app/nul\u0000.txt', 'x')], /NUL/);
  {
    const m = file('app/neg.txt', 'x');
    await evil('layer-negative-size', 'a layer entry with a negative size', [{...m, rawHeader: patchedHeader(m, NEGATIVE_SIZE)}], /negative size/);
    const a = file('app/absurd.txt', 'x');
    await evil('layer-absurd-size', 'a layer entry declaring 8 GiB (the layer holds a few bytes)', [{...a, rawHeader: patchedHeader(a, ABSURD_SIZE)}], /truncated|end of data/);
  }
  {
    const top = small.layers.at(-1)!;
    const cutLayer = top.subarray(0, 1024 + 10); // inside app/notes.txt's 30 bytes
    add(tarCase({id: 'layer-cut-short', title: 'a layer tar cut inside a member, digests recomputed to match the cut bytes', origin: 'edge (top layer cut, rebuilt as docker-archive)', names: /truncated|end of data/, inspect: 'ok'}, packTar(buildLegacy([replaceLayer(small, -1, cutLayer)]))));
    add(tarCase({id: 'layer-not-a-tar', title: 'a layer blob of random bytes (digests match the bytes)', origin: 'edge (rebuilt as docker-archive)', names: /tar header|checksum/, inspect: 'ok'}, packTar(buildLegacy([replaceLayer(small, -1, pseudoRandom(3000, 11))]))));
    add(tarCase({id: 'layer-empty-blob', title: 'a zero-byte layer blob (digests match)', origin: 'edge (rebuilt as docker-archive)', names: /empty layer/, inspect: 'ok', outcomes: {convert: 'ok', squash: 'ok', export: 'ok', ls: 'ok', cat: 'ok', analyze: 'ok'}}, packTar(buildLegacy([replaceLayer(small, -1, Buffer.alloc(0))]))));
    const gz = gzip(top);
    const gzCut = {...small, blobs: [...small.layers.map(() => undefined).slice(0, -1), {data: gz.subarray(0, Math.floor(gz.length / 2)), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip'}]};
    add(tarCase({id: 'layer-gzip-cut', title: 'a gzip layer cut in half (blob digest matches the cut bytes)', origin: 'edge (rebuilt as oci-archive)', names: /gzip/, inspect: 'ok'}, layout({}, [gzCut])));
    const zs = await zstdAsync(top);
    const zsCut = {...small, blobs: [...small.layers.map(() => undefined).slice(0, -1), {data: zs.subarray(0, Math.floor(zs.length / 2)), mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd'}]};
    add(tarCase({id: 'layer-zstd-cut', title: 'a zstd layer cut in half (blob digest matches the cut bytes)', origin: 'edge (rebuilt as oci-archive)', names: /zstd/, inspect: 'ok'}, layout({}, [zsCut])));
  }

  // ---- Real-world breakage reported against docker and kind ----
  add(
    tarCase(
      {id: 'moby-47065-empty-layers', title: 'Docker 25 pre-release save: the OCI manifest lists no layers, manifest.json is right (moby/moby#47065)', origin: 'edge (rebuilt as Docker 25 save)', names: /47065|layers/, inspect: 'ok', writers: 'repair'},
      packTar(buildLayout([small], {docker: true, manifest: (m) => void (m.layers = [])})),
    ),
  );
  add(
    tarCase(
      {id: 'moby-47210-manifests-null', title: 'Docker 25 `save img@digest`: index.json has "manifests": null (moby/moby#47210)', origin: 'edge (rebuilt as Docker 25 save)', names: /47210|manifests/, inspect: 'ok', writers: 'repair'},
      packTar(buildLayout([small], {docker: true, index: (i) => void (i.manifests = null)})),
    ),
  );
  add(
    tarCase(
      {id: 'moby-49473-layers-absent', title: 'containerd-store save of an image sharing layers: every layer blob missing (moby/moby#49473)', origin: 'edge (rebuilt as Docker 25 save, gzip layers)', names: /missing|not in the archive/, inspect: 'ok'},
      packTar(buildLayout([small], {docker: true, compress: 'gzip', omitBlobs: (_h, kind) => kind === 'layer'})),
    ),
  );
  {
    const images = multi.map(withDiffIds);
    const childManifest = (() => {
      const m = buildLayout(images, {docker: true});
      return (JSON.parse(member(m, 'index.json').data!.toString()) as {manifests: Array<{digest: string}>}).manifests;
    })();
    add(
      tarCase(
        {id: 'moby-51389-index-drops-image', title: 'Docker save of two images by digest: index.json lists only one of them (moby/moby#51389)', origin: 'edge-multi (rebuilt as Docker 25 save)', names: /51389|index\.json/, inspect: 'ok', writers: 'repair', image: 'ferry-fixture/edge:1'},
        packTar(buildLayout(images, {docker: true, index: (i) => void (i.manifests = [childManifest.at(-1)])})),
      ),
    );
  }
  {
    // A multi-platform index whose arm64 and arm/v7 manifests were never pulled (kind#3795).
    const members = buildLayout([small], {compress: 'gzip'});
    const top = JSON.parse(member(members, 'index.json').data!.toString()) as {manifests: Array<Record<string, unknown>>};
    const present: Record<string, unknown> = {...top.manifests[0]!, platform: {architecture: 'amd64', os: 'linux'}};
    delete present.annotations;
    const absent = (arch: string, variant?: string): Record<string, unknown> => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: digestOf(`absent ${arch}`),
      size: 1234,
      platform: {architecture: arch, os: 'linux', ...(variant ? {variant} : {})},
    });
    const nested = json({schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [present, absent('arm64'), absent('arm', 'v7')]});
    const index = json({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{mediaType: 'application/vnd.oci.image.index.v1+json', digest: digestOf(nested), size: nested.length, annotations: {'io.containerd.image.name': 'docker.io/ferry-fixture/edge:1', 'org.opencontainers.image.ref.name': '1'}}],
    });
    add(
      tarCase(
        {id: 'kind-3795-absent-platforms', title: 'a multi-platform index whose arm64 and arm/v7 manifests are absent (kubernetes-sigs/kind#3795)', origin: 'edge (rebuilt as oci-archive)', names: /arm64|not in the archive/, inspect: 'ok', writers: 'repair'},
        packTar([...put(members, file('index.json', index)), file(`blobs/sha256/${sha256Hex(nested)}`, nested)]),
      ),
    );
  }

  // ---- rootfs (docker export output) ----
  {
    const exportBytes = readFileSync(EXPORT);
    const offsets = await memberOffsets(exportBytes);
    const last = [...offsets.values()].sort((a, b) => a.header - b.header).at(-1)!;
    add(tarCase({id: 'rootfs-no-end-marker', title: 'a docker export tar cut at a member boundary (nothing else can tell it is short)', origin: 'edge.docker-export.tar', source: 'rootfs:rootfs-no-end-marker.tar', names: /end-of-archive/, inspect: 'fail'}, cut(exportBytes, last.header)));
    const exportMembers = await readTarMembers(exportBytes);
    add(tarCase({id: 'rootfs-dotdot', title: 'a docker export tar with a ../ entry', origin: 'edge.docker-export.tar', source: 'rootfs:rootfs-dotdot.tar', names: /\.\.\/escape/, inspect: 'ok'}, packTar([...exportMembers, file('../escape', 'x')])));
  }
  return cases;
}

/** Writes every case under `root/<id>/` and returns their specs. */
export async function writeCorpus(root: string): Promise<HostileCase[]> {
  const built = await buildCases();
  const ids = new Set<string>();
  for (const b of built) {
    if (ids.has(b.spec.id)) throw new Error(`duplicate case id ${b.spec.id}`);
    ids.add(b.spec.id);
    const d = path.join(root, b.spec.id);
    mkdirSync(d, {recursive: true});
    b.write(d);
  }
  return built.map((b) => b.spec);
}
