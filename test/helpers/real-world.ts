import {createHash, generateKeyPairSync, sign} from 'node:crypto';
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import {compress as zstdCompress} from 'zstd-napi';

/**
 * Builders for archives that real tools write and ferry must read: Docker 25+ / buildx saves with
 * provenance and SBOM attestations, OCI layouts holding Helm charts, OCI 1.1 referrers and cosign
 * signatures, Windows images with foreign layers, and layers with bytes after the compressed stream.
 *
 * None of those tools runs here, so each builder reproduces the tool's output structure from its
 * source code (field order of the Go structs, indentation, which blobs are written, how index.json
 * names things): see docs/real-world-archives.md for the source of every shape. Every digest is the
 * sha256 of the exact bytes written, so peers can check them. The runnable content comes from a
 * busybox image built at test time (buildBusyboxArchive); nothing here uses ferry.
 */

export type Digest = `sha256:${string}`;

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociNondistGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  inToto: 'application/vnd.in-toto+json',
  helmConfig: 'application/vnd.cncf.helm.config.v1+json',
  helmChart: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip',
  cosignSimpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
} as const;

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  variant?: string;
}

/** Field order of image-spec's Go Descriptor (encoding/json keeps struct order). */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: string;
  platform?: Platform;
  artifactType?: string;
}

export const sha256 = (b: Uint8Array | string): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const hexOf = (d: string): string => d.replace(/^sha256:/, '');

/** Go's map encoding sorts keys; annotations are Go maps. */
function sorted(m: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * encoding/json output: json.Marshal (no indent) or json.MarshalIndent(v, "", indent). Go escapes
 * <, >, & and U+2028/9 inside strings; those characters never occur outside strings in JSON.
 */
export function goJson(v: unknown, indent?: string): Buffer {
  const text = JSON.stringify(v, null, indent).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return Buffer.from(text, 'utf8');
}

// ---------------------------------------------------------------- tar (Go archive/tar flavour)

export interface TarEntry {
  name: string;
  type?: 'file' | 'dir' | 'symlink';
  data?: Uint8Array;
  mode?: number;
  mtime?: number;
  linkname?: string;
  uname?: string;
  gname?: string;
}

function octal(n: number, width: number): string {
  // Go's formatOctal: zero-padded digits filling width-1 bytes, then NUL.
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(e: TarEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  let name = e.name;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new Error(`tar name too long for USTAR: ${name}`);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
  }
  const type = e.type ?? 'file';
  h.write(name, 0, 100, 'utf8');
  h.write(octal(e.mode ?? (type === 'dir' ? 0o755 : 0o644), 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(e.mtime ?? 0, 12), 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(type === 'dir' ? '5' : type === 'symlink' ? '2' : '0', 156, 'latin1');
  if (e.linkname) h.write(e.linkname, 157, 100, 'utf8');
  h.write('ustar\u000000', 257, 'latin1');
  h.write(e.uname ?? '', 265, 32, 'utf8');
  h.write(e.gname ?? '', 297, 32, 'utf8');
  h.write(octal(0, 8), 329, 'latin1');
  h.write(octal(0, 8), 337, 'latin1');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  // Go writes the checksum as six octal digits, NUL, space.
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

/** A tar as Go's archive/tar writes USTAR headers: uid/gid 0, 512-byte blocks, 1024 zero bytes at the end. */
export function goTar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.type === 'dir' || e.type === 'symlink' ? Buffer.alloc(0) : Buffer.from(e.data ?? new Uint8Array());
    parts.push(header(e, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export interface TarMember {
  name: string;
  type: string;
  data: Buffer;
  linkname: string;
}

/** Enough of a tar reader for the archives the peers write here (USTAR, PAX path records, GNU long names). */
export function readTar(buf: Buffer): TarMember[] {
  const out: TarMember[] = [];
  let off = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  const str = (b: Buffer): string => b.toString('utf8').replace(/\0.*$/s, '');
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const size = parseInt(str(h.subarray(124, 136)).trim() || '0', 8);
    const type = String.fromCharCode(h[156] ?? 48);
    const data = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      for (const m of data.toString('utf8').matchAll(/\d+ ([^=]+)=([^\n]*)\n/g)) {
        if (m[1] === 'path') longName = m[2];
        if (m[1] === 'linkpath') longLink = m[2];
      }
      continue;
    }
    if (type === 'g') continue;
    if (type === 'L') {
      longName = str(data);
      continue;
    }
    if (type === 'K') {
      longLink = str(data);
      continue;
    }
    const prefix = h.subarray(257, 263).toString('latin1') === 'ustar\u0000' ? str(h.subarray(345, 500)) : '';
    const name = longName ?? (prefix ? `${prefix}/${str(h.subarray(0, 100))}` : str(h.subarray(0, 100)));
    out.push({name: name.replace(/^\.\//, ''), type: type === '\0' ? '0' : type, data: Buffer.from(data), linkname: longLink ?? str(h.subarray(157, 257))});
    longName = undefined;
    longLink = undefined;
  }
  return out;
}

// ---------------------------------------------------------------- compression

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = (CRC_TABLE[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * One gzip member as Go's compress/gzip frames it (MTIME 0, OS byte 255 = unknown), optionally with
 * the FEXTRA / FCOMMENT fields Helm sets. The deflate bytes are zlib's, not Go's: only the framing
 * is imitated; the digests are of these bytes.
 */
export function gzipGo(data: Uint8Array, opts: {extra?: Buffer; comment?: string} = {}): Buffer {
  let flg = 0;
  const fields: Buffer[] = [];
  if (opts.extra) {
    flg |= 0x04;
    const len = Buffer.alloc(2);
    len.writeUInt16LE(opts.extra.length);
    fields.push(len, opts.extra);
  }
  if (opts.comment !== undefined) {
    flg |= 0x10;
    fields.push(Buffer.from(opts.comment + '\0', 'latin1'));
  }
  const head = Buffer.from([0x1f, 0x8b, 0x08, flg, 0, 0, 0, 0, 0, 0xff]);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(data), 0);
  trailer.writeUInt32LE(data.length >>> 0, 4);
  return Buffer.concat([head, ...fields, zlib.deflateRawSync(data), trailer]);
}

// ---------------------------------------------------------------- blob store / layout

/** blobs/sha256 of an OCI layout directory; returns descriptors in image-spec field order. */
export class BlobDir {
  constructor(readonly dir: string) {
    mkdirSync(path.join(dir, 'blobs', 'sha256'), {recursive: true});
  }
  put(data: Uint8Array, mediaType: string, extra: Omit<Descriptor, 'mediaType' | 'digest' | 'size'> = {}): Descriptor {
    const digest = sha256(data);
    writeFileSync(this.path(digest), data);
    return this.describe(data, mediaType, extra);
  }
  /** The descriptor of bytes that are NOT written (foreign layers, blobs a tool skips). */
  describe(data: Uint8Array, mediaType: string, extra: Omit<Descriptor, 'mediaType' | 'digest' | 'size'> = {}): Descriptor {
    return {mediaType, digest: sha256(data), size: data.length, ...extra};
  }
  path(digest: string): string {
    return path.join(this.dir, 'blobs', 'sha256', hexOf(digest));
  }
}

/** Reads a directory tree into tar entries the way an exporter walks a layout (paths relative, sorted). */
function layoutEntries(dir: string, names: string[]): TarEntry[] {
  return names.map((n) => (n.endsWith('/') ? {name: n, type: 'dir' as const} : {name: n, data: readFileSync(path.join(dir, n))}));
}

/**
 * containerd's archive exporter (core/images/archive/exporter.go), used by Docker 25+ with the
 * containerd image store (`docker save`), `ctr images export`, nerdctl save and buildkit's
 * docker/oci exporters: records sorted by name, de-duplicated, blobs mode 0444, index.json and
 * manifest.json 0644, oci-layout 0444, directory records blobs/ and blobs/sha256/ (0755), no
 * mtimes, no owner names. Checked byte-for-byte against `ctr images export` 1.6 in the tests.
 */
export function containerdExportTar(dir: string, files: string[]): Buffer {
  const mode = (n: string): number => (n.startsWith('blobs/') ? (n.endsWith('/') ? 0o755 : 0o444) : n === 'oci-layout' ? 0o444 : 0o644);
  const names = [...new Set(files)].sort();
  return goTar(layoutEntries(dir, names).map((e) => ({...e, mode: mode(e.name)})));
}

function blobFiles(...descs: Descriptor[]): string[] {
  return descs.map((d) => `blobs/sha256/${hexOf(d.digest)}`);
}

// ---------------------------------------------------------------- base image (busybox, built at test time)

export interface BaseImage {
  /** Uncompressed layer tars, base first. */
  layers: Buffer[];
  diffIds: Digest[];
  /** The config as buildah wrote it (Env, Cmd, history). */
  config: {config?: {Env?: string[]; Cmd?: string[]}; history?: unknown[]};
}

/** Reads the legacy docker-archive written by buildBusyboxArchive (skopeo-style: root <diffID>.tar files). */
export function readBaseArchive(archive: string): BaseImage {
  const members = new Map(readTar(readFileSync(archive)).map((m) => [m.name, m]));
  const resolve = (name: string, depth = 0): Buffer => {
    const m = members.get(name);
    if (!m) throw new Error(`${name} missing from ${archive}`);
    if (m.type === '2' && depth < 8) return resolve(path.posix.normalize(path.posix.join(path.posix.dirname(name), m.linkname)), depth + 1);
    return m.data;
  };
  const manifest = JSON.parse(resolve('manifest.json').toString('utf8')) as {Config: string; Layers: string[]}[];
  const item = manifest[0];
  if (!item) throw new Error(`${archive}: empty manifest.json`);
  const layers = item.Layers.map((l) => resolve(l));
  const config = JSON.parse(resolve(item.Config).toString('utf8')) as BaseImage['config'];
  return {layers, diffIds: layers.map((l) => sha256(l)), config};
}

// ---------------------------------------------------------------- buildkit image + attestations

const CREATED = '2024-05-01T10:00:00Z';

export interface BuiltImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  diffIds: Digest[];
}

/**
 * The image manifest and config buildkit's image writer produces: config keys sorted (buildkit
 * patches the config through a Go map), manifest json.MarshalIndent with two spaces, gzip (or
 * uncompressed) OCI layer descriptors without annotations.
 */
function buildkitImage(store: BlobDir, base: BaseImage, compression: 'gzip' | 'none'): BuiltImage {
  const layers = base.layers.map((l) => (compression === 'gzip' ? store.put(gzipGo(l), MT.ociLayerGzip) : store.put(l, MT.ociLayer)));
  const history = [
    ...base.layers.map((_, i) => ({created: CREATED, created_by: i === 0 ? 'COPY busybox/ / # buildkit' : `COPY layer${i}/ / # buildkit`, comment: 'buildkit.dockerfile.v0'})),
    {created: CREATED, created_by: 'CMD ["/bin/sh"]', comment: 'buildkit.dockerfile.v0', empty_layer: true},
  ];
  const config = goJson({
    architecture: 'amd64',
    config: {Env: base.config.config?.Env ?? ['PATH=/bin'], Cmd: ['/bin/sh'], WorkingDir: '/'},
    created: CREATED,
    history,
    os: 'linux',
    rootfs: {type: 'layers', diff_ids: base.diffIds},
  });
  const configDesc = store.put(config, MT.ociConfig);
  const manifest = goJson({schemaVersion: 2, mediaType: MT.ociManifest, config: configDesc, layers}, '  ');
  return {manifest: store.put(manifest, MT.ociManifest), config: configDesc, layers, diffIds: base.diffIds};
}

/** buildkit's purl for an image name + platform (util/purl): pkg:docker/<ns>/<name>@<tag>?platform=linux%2Famd64. */
function purl(name: string): string {
  const m = /^(?:docker\.io\/)?(?:library\/)?(.+?)(?::([^:/]+))?$/.exec(name);
  const repo = m?.[1] ?? name;
  return `pkg:docker/${repo}@${m?.[2] ?? 'latest'}?platform=linux%2Famd64`;
}

/**
 * in-toto statements as buildkit (before mid-2026) emits them: Statement v0.1, keys in the Go
 * struct order _type, predicateType, subject, predicate; SBOM first, provenance last.
 */
function statements(image: Descriptor, name: string, layers: Descriptor[]): {predicateType: string; body: Buffer}[] {
  const subject = [{name: purl(name), digest: {sha256: hexOf(image.digest)}}];
  const spdx = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: '/run/src/core/sbom',
    documentNamespace: 'https://anchore.com/syft/dir/run/src/core/sbom-5d3a3c1e-0000-4000-8000-000000000000',
    creationInfo: {licenseListVersion: '3.22', creators: ['Organization: Anchore, Inc', 'Tool: syft-v0.105.0', 'Tool: buildkit-v0.13.0'], created: CREATED},
    packages: [
      {
        name: 'busybox',
        SPDXID: 'SPDXRef-Package-binary-busybox-0001',
        versionInfo: '1.35.0',
        downloadLocation: 'NOASSERTION',
        filesAnalyzed: false,
        licenseConcluded: 'NOASSERTION',
        licenseDeclared: 'NOASSERTION',
        copyrightText: 'NOASSERTION',
        externalRefs: [{referenceCategory: 'SECURITY', referenceType: 'cpe23Type', referenceLocator: 'cpe:2.3:a:busybox:busybox:1.35.0:*:*:*:*:*:*:*'}],
      },
    ],
    files: [{fileName: '/bin/busybox', SPDXID: 'SPDXRef-File-bin-busybox', checksums: [{algorithm: 'SHA256', checksumValue: hexOf(layers[0]?.digest ?? image.digest)}], comment: `layerID: ${layers[0]?.digest ?? ''}`}],
    relationships: [{spdxElementId: 'SPDXRef-DOCUMENT', relatedSpdxElement: 'SPDXRef-Package-binary-busybox-0001', relationshipType: 'DESCRIBES'}],
  };
  const provenance = {
    builder: {id: ''},
    buildType: 'https://mobyproject.org/buildkit@v1',
    materials: [],
    invocation: {
      configSource: {entryPoint: 'Dockerfile'},
      parameters: {frontend: 'dockerfile.v0', locals: [{name: 'context'}, {name: 'dockerfile'}]},
      environment: {platform: 'linux/amd64'},
    },
    metadata: {
      buildInvocationID: 'k2x1q5ykqvfz6nwk4jm7t3m2h',
      buildStartedOn: CREATED,
      buildFinishedOn: CREATED,
      completeness: {parameters: false, environment: true, materials: false},
      reproducible: false,
      'https://mobyproject.org/buildkit@v1#metadata': {},
    },
  };
  return [
    {predicateType: 'https://spdx.dev/Document', body: goJson({_type: 'https://in-toto.io/Statement/v0.1', predicateType: 'https://spdx.dev/Document', subject, predicate: spdx})},
    {predicateType: 'https://slsa.dev/provenance/v0.2', body: goJson({_type: 'https://in-toto.io/Statement/v0.1', predicateType: 'https://slsa.dev/provenance/v0.2', subject, predicate: provenance})},
  ];
}

export interface AttestationParts {
  index: Descriptor;
  image: BuiltImage;
  attestationManifest: Descriptor;
  attestationConfig: Descriptor;
  statements: Descriptor[];
}

/** What buildkit's ImageWriter commits for one linux/amd64 image built with --provenance and --sbom. */
function buildkitIndexWithAttestations(store: BlobDir, base: BaseImage, name: string, compression: 'gzip' | 'none'): AttestationParts {
  const image = buildkitImage(store, base, compression);
  const stmts = statements(image.manifest, name, image.layers).map((s) => store.put(s.body, MT.inToto, {annotations: {'in-toto.io/predicate-type': s.predicateType}}));
  // Attestation config: an ocispec.Image with platform unknown/unknown; diff_ids = the (uncompressed) statement digests.
  const attConfig = store.put(goJson({architecture: 'unknown', os: 'unknown', config: {}, rootfs: {type: 'layers', diff_ids: stmts.map((s) => s.digest)}}), MT.ociConfig);
  const attManifest = store.put(goJson({schemaVersion: 2, mediaType: MT.ociManifest, config: attConfig, layers: stmts}, '  '), MT.ociManifest);
  const index = goJson(
    {
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: [
        {...image.manifest, platform: {architecture: 'amd64', os: 'linux'}},
        {
          ...attManifest,
          annotations: sorted({'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': image.manifest.digest}),
          platform: {architecture: 'unknown', os: 'unknown'},
        },
      ],
    },
    '  ',
  );
  return {index: store.put(index, MT.ociIndex), image, attestationManifest: attManifest, attestationConfig: attConfig, statements: stmts};
}

/** Fully-qualified name as containerd stores it, and its familiar form (what manifest.json RepoTags holds). */
function qualify(name: string): {full: string; familiar: string; tag: string} {
  const tagged = /:[^/:]+$/.test(name) ? name : `${name}:latest`;
  const first = tagged.split('/')[0] ?? '';
  const hasDomain = tagged.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  const full = hasDomain ? tagged : tagged.includes('/') ? `docker.io/${tagged}` : `docker.io/library/${tagged}`;
  const familiar = full.replace(/^docker\.io\/library\//, '').replace(/^docker\.io\//, '');
  return {full, familiar, tag: tagged.slice(tagged.lastIndexOf(':') + 1)};
}

// ---------------------------------------------------------------- (a) docker save / buildx with attestations

export interface AttestedSaveOptions {
  /** Legacy docker-archive with the runnable content (buildBusyboxArchive). */
  base: string;
  /** Tags of the saved image (Docker writes one index.json entry per name). Default ferry-test/app:1. */
  tags?: string[];
  /** Registry form (gzip layers, what the containerd store keeps) or uncompressed (buildx compression=uncompressed). */
  compression?: 'gzip' | 'none';
  /** `docker save` of Docker 25+ with the containerd store (default), or `buildx build --output type=oci`. */
  variant?: 'docker-save' | 'buildx-oci';
}

export interface AttestedSave {
  /** The OCI layout directory (what the tar holds). */
  dir: string;
  /** The archive as the tool streams it. */
  tar: string;
  indexDigest: Digest;
  imageManifestDigest: Digest;
  configDigest: Digest;
  attestationManifestDigest: Digest;
  attestationConfigDigest: Digest;
  statementDigests: {sbom: Digest; provenance: Digest};
  layerDigests: Digest[];
  diffIds: Digest[];
  /** Familiar tags as manifest.json / docker images show them. */
  tags: string[];
  /** org.opencontainers.image.ref.name values in index.json (the tag part only). */
  refNames: string[];
  /** Every blob file the archive holds. */
  blobs: Digest[];
}

/**
 * Docker 25+ with the containerd image store, `docker save` of an image built by buildx with
 * `--provenance=true --sbom=true` (equivalently buildx `--output type=oci`): an OCI layout whose
 * index.json names the image INDEX (io.containerd.image.name + tag-only ref.name); the index lists
 * the linux/amd64 manifest, then the attestation manifest (platform unknown/unknown,
 * vnd.docker.reference.* annotations); in-toto statements are its layers. docker-save adds
 * manifest.json (Config/RepoTags/Layers into blobs/) for the preferred platform only, which is what
 * lets Docker's graphdriver loaders (20.10 included) load it. Docker 25.0–28 and 29+ all match
 * every platform when no --platform is given, so the attestation blobs are in the archive.
 */
export function dockerSaveWithAttestation(out: string, opts: AttestedSaveOptions): AttestedSave {
  const variant = opts.variant ?? 'docker-save';
  const names = (opts.tags ?? ['ferry-test/app:1']).map(qualify);
  const dir = path.join(out, variant === 'docker-save' ? 'docker-save.oci' : 'buildx.oci');
  const store = new BlobDir(dir);
  const base = readBaseArchive(opts.base);
  const parts = buildkitIndexWithAttestations(store, base, names[0]?.full ?? 'ferry-test/app:1', opts.compression ?? 'gzip');
  // One descriptor per name, as archive.WithManifest(target, names...) adds them.
  const manifests = names.map((n) => ({
    ...parts.index,
    annotations: sorted({
      'io.containerd.image.name': n.full,
      'org.opencontainers.image.ref.name': n.tag,
      // buildkit's oci exporter stamps the export time on the index descriptor.
      ...(variant === 'buildx-oci' ? {'org.opencontainers.image.created': CREATED} : {}),
    }),
  }));
  writeFileSync(path.join(dir, 'oci-layout'), goJson({imageLayoutVersion: '1.0.0'}));
  writeFileSync(path.join(dir, 'index.json'), goJson({schemaVersion: 2, manifests}));
  const files = ['oci-layout', 'index.json', 'blobs/', 'blobs/sha256/'];
  if (variant === 'docker-save') {
    // manifestsRecord: json.Marshal of []{Config, RepoTags, Layers}, no trailing newline.
    const item = {Config: `blobs/sha256/${hexOf(parts.image.config.digest)}`, RepoTags: names.map((n) => n.familiar), Layers: parts.image.layers.map((l) => `blobs/sha256/${hexOf(l.digest)}`)};
    writeFileSync(path.join(dir, 'manifest.json'), goJson([item]));
    files.push('manifest.json');
  }
  const all = [parts.index, parts.image.manifest, parts.image.config, ...parts.image.layers, parts.attestationManifest, parts.attestationConfig, ...parts.statements];
  files.push(...blobFiles(...all));
  const tar = path.join(out, variant === 'docker-save' ? 'docker-save.tar' : 'buildx-oci.tar');
  writeFileSync(tar, containerdExportTar(dir, files));
  const [sbom, provenance] = parts.statements;
  if (!sbom || !provenance) throw new Error('statements missing');
  return {
    dir,
    tar,
    indexDigest: parts.index.digest,
    imageManifestDigest: parts.image.manifest.digest,
    configDigest: parts.image.config.digest,
    attestationManifestDigest: parts.attestationManifest.digest,
    attestationConfigDigest: parts.attestationConfig.digest,
    statementDigests: {sbom: sbom.digest, provenance: provenance.digest},
    layerDigests: parts.image.layers.map((l) => l.digest),
    diffIds: parts.image.diffIds,
    tags: names.map((n) => n.familiar),
    refNames: names.map((n) => n.tag),
    blobs: [...new Set(all.map((d) => d.digest))],
  };
}

// ---------------------------------------------------------------- (b) Helm chart, OCI 1.1 referrer, cosign signature

/** Helm's gzip FEXTRA subfield (pkg/chart/v2/util/save.go): SI1 SI2 = "rr", LEN 40, then 40 bytes. */
const HELM_GZIP_EXTRA = Buffer.concat([Buffer.from('rr', 'latin1'), Buffer.from([0x28, 0x00]), Buffer.from('aHR0cHM6Ly95b3V0dS5iZS96OVV6MWljandyTQo=', 'latin1')]);

export interface HelmChart {
  tgz: Buffer;
  /** json.Marshal(chart.Metadata): struct order, empty fields omitted. */
  config: Buffer;
  name: string;
  version: string;
}

/** A tiny chart as `helm package` writes it: <name>/Chart.yaml first, files 0644, gzip with Helm's extra field and comment. */
export function helmChart(name = 'ferry-demo', version = '0.1.0'): HelmChart {
  const description = 'A tiny chart for ferry tests';
  const chartYaml = `apiVersion: v2\nappVersion: 1.16.0\ndescription: ${description}\nname: ${name}\ntype: application\nversion: ${version}\n`;
  const values = 'replicaCount: 1\nmessage: hello\n';
  const template = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  message: {{ .Values.message | quote }}\n';
  const mtime = Date.parse(CREATED) / 1000;
  const tar = goTar([
    {name: `${name}/Chart.yaml`, data: Buffer.from(chartYaml), mode: 0o644, mtime},
    {name: `${name}/values.yaml`, data: Buffer.from(values), mode: 0o644, mtime},
    {name: `${name}/templates/configmap.yaml`, data: Buffer.from(template), mode: 0o644, mtime},
  ]);
  const config = goJson({name, version, description, apiVersion: 'v2', appVersion: '1.16.0', type: 'application'});
  return {tgz: gzipGo(tar, {extra: HELM_GZIP_EXTRA, comment: 'Helm'}), config, name, version};
}

/** cosign's simple-signing payload (sigstore payload.SimpleContainerImage). */
function cosignPayload(dockerReference: string, manifestDigest: string): Buffer {
  return goJson({critical: {identity: {'docker-reference': dockerReference}, image: {'docker-manifest-digest': manifestDigest}, type: 'cosign container image signature'}, optional: null});
}

export interface CosignSignature {
  /** The signature image's manifest (GGCR serialisation: descriptors mediaType, size, digest). */
  manifest: Descriptor;
  config: Descriptor;
  layer: Descriptor;
  payload: Buffer;
  publicKeyPem: string;
}

/**
 * What cosign pushes as `<repo>:sha256-<hex>.sig` (key-based signing, --tlog-upload=false): an OCI
 * image built by go-containerregistry from empty.Image, config with zero-valued created/history
 * (GGCR ConfigFile field order), one simple-signing layer whose annotation carries the base64
 * ECDSA P-256 signature of the payload. The signature is real (verifiable with publicKeyPem).
 */
function cosignSignature(store: BlobDir, imageDigest: string, dockerReference: string): CosignSignature {
  const payload = cosignPayload(dockerReference, imageDigest);
  const {privateKey, publicKey} = generateKeyPairSync('ec', {namedCurve: 'P-256'});
  const signature = sign('sha256', payload, privateKey).toString('base64');
  const ggcr = (d: Descriptor): Record<string, unknown> => ({mediaType: d.mediaType, size: d.size, digest: d.digest, ...(d.annotations ? {annotations: d.annotations} : {})});
  const layer = store.put(payload, MT.cosignSimpleSigning, {annotations: {'dev.cosignproject.cosign/signature': signature}});
  const config = store.put(
    goJson({architecture: '', created: '0001-01-01T00:00:00Z', history: [{created: '0001-01-01T00:00:00Z'}], os: '', rootfs: {type: 'layers', diff_ids: [layer.digest]}, config: {}}),
    MT.ociConfig,
  );
  const manifest = store.put(goJson({schemaVersion: 2, mediaType: MT.ociManifest, config: ggcr(config), layers: [ggcr(layer)]}), MT.ociManifest);
  return {manifest, config, layer, payload, publicKeyPem: publicKey.export({type: 'spki', format: 'pem'}).toString()};
}

export interface ArtifactLayout {
  dir: string;
  /** ref.name of each entry in index.json. */
  refs: {image: string; chart: string; signature: string};
  image: {manifestDigest: Digest; configDigest: Digest; layerDigests: Digest[]; size: number};
  chart: {manifestDigest: Digest; configDigest: Digest; chartDigest: Digest; tgz: Buffer};
  referrer: {manifestDigest: Digest; artifactType: string; blobDigest: Digest; emptyConfigDigest: Digest};
  signature: CosignSignature & {manifestDigest: Digest};
  indexJson: unknown;
}

/**
 * One OCI layout as `oras copy -r --to-oci-layout` (or skopeo copy per tag) leaves it for a
 * repository holding: a runnable image (ref.name "v1"), its Helm chart (ref.name = chart version,
 * the tag `helm push` uses), an OCI 1.1 referrer of the image (artifactType, empty `{}` config,
 * subject = image manifest; listed in index.json without a name, as ORAS's OCI store keeps
 * referrers), and the cosign signature under its registry tag `sha256-<hex>.sig`.
 */
export function layoutWithArtifacts(out: string, opts: {base: string}): ArtifactLayout {
  const dir = path.join(out, 'artifacts.oci');
  const store = new BlobDir(dir);
  const image = buildkitImage(store, readBaseArchive(opts.base), 'gzip');

  // Helm (pkg/registry/client.go): config = json.Marshal(chart.Metadata); manifest = json.Marshal(ocispec.Manifest)
  // without a mediaType field; annotations from Chart.yaml, sorted as a Go map.
  const chart = helmChart();
  const chartLayer = store.put(chart.tgz, MT.helmChart);
  const chartConfig = store.put(chart.config, MT.helmConfig);
  const chartManifest = store.put(
    goJson({
      schemaVersion: 2,
      config: chartConfig,
      layers: [chartLayer],
      annotations: sorted({
        'org.opencontainers.image.created': CREATED,
        'org.opencontainers.image.description': 'A tiny chart for ferry tests',
        'org.opencontainers.image.title': chart.name,
        'org.opencontainers.image.version': chart.version,
      }),
    }),
    MT.ociManifest,
  );

  // OCI 1.1 referrer as `oras attach --artifact-type …` packs it: the empty descriptor carries data "e30=".
  const artifactType = 'application/vnd.example.sbom.v1+json';
  const empty = store.put(Buffer.from('{}'), MT.ociEmpty, {data: Buffer.from('{}').toString('base64')});
  const sbomBlob = store.put(goJson({spdxVersion: 'SPDX-2.3', SPDXID: 'SPDXRef-DOCUMENT', name: 'ferry-test-app'}), artifactType, {annotations: {'org.opencontainers.image.title': 'sbom.spdx.json'}});
  const subject = {mediaType: image.manifest.mediaType, digest: image.manifest.digest, size: image.manifest.size};
  const referrer = store.put(
    goJson({schemaVersion: 2, mediaType: MT.ociManifest, artifactType, config: empty, layers: [sbomBlob], subject, annotations: {'org.opencontainers.image.created': CREATED}}),
    MT.ociManifest,
    {annotations: {'org.opencontainers.image.created': CREATED}, artifactType},
  );

  const sig = cosignSignature(store, image.manifest.digest, 'registry.example/ferry-test/app');
  const sigTag = `sha256-${hexOf(image.manifest.digest)}.sig`;
  const refName = (ref: string): {annotations: Record<string, string>} => ({annotations: {'org.opencontainers.image.ref.name': ref}});
  const indexJson = {
    schemaVersion: 2,
    mediaType: MT.ociIndex,
    manifests: [
      {...image.manifest, ...refName('v1')},
      {...chartManifest, ...refName(chart.version)},
      referrer,
      {...sig.manifest, ...refName(sigTag)},
    ],
  };
  writeFileSync(path.join(dir, 'oci-layout'), goJson({imageLayoutVersion: '1.0.0'}));
  writeFileSync(path.join(dir, 'index.json'), goJson(indexJson));
  return {
    dir,
    refs: {image: 'v1', chart: chart.version, signature: sigTag},
    image: {manifestDigest: image.manifest.digest, configDigest: image.config.digest, layerDigests: image.layers.map((l) => l.digest), size: image.manifest.size},
    chart: {manifestDigest: chartManifest.digest, configDigest: chartConfig.digest, chartDigest: chartLayer.digest, tgz: chart.tgz},
    referrer: {manifestDigest: referrer.digest, artifactType, blobDigest: sbomBlob.digest, emptyConfigDigest: empty.digest},
    signature: {...sig, manifestDigest: sig.manifest.digest},
    indexJson,
  };
}

export interface CosignSave {
  dir: string;
  imageManifestDigest: Digest;
  signatureManifestDigest: Digest;
  signature: CosignSignature;
}

/**
 * `cosign save --dir DIR IMAGE` (pkg/oci/layout/write.go on go-containerregistry's layout package):
 * oci-layout is GGCR's pretty-printed constant, index.json is MarshalIndent with three spaces, each
 * entry annotated only with `kind` (dev.cosignproject.cosign/image, …/sigs, …/atts) and NO
 * ref.name; descriptors in GGCR field order (mediaType, size, digest).
 */
export function cosignSave(out: string, opts: {base: string}): CosignSave {
  const dir = path.join(out, 'cosign-save');
  const store = new BlobDir(dir);
  const image = buildkitImage(store, readBaseArchive(opts.base), 'gzip');
  const sig = cosignSignature(store, image.manifest.digest, 'registry.example/ferry-test/app');
  const entry = (d: Descriptor, kind: string): Record<string, unknown> => ({mediaType: d.mediaType, size: d.size, digest: d.digest, annotations: {kind}});
  writeFileSync(path.join(dir, 'oci-layout'), '{\n    "imageLayoutVersion": "1.0.0"\n}');
  writeFileSync(
    path.join(dir, 'index.json'),
    goJson({schemaVersion: 2, mediaType: MT.ociIndex, manifests: [entry(image.manifest, 'dev.cosignproject.cosign/image'), entry(sig.manifest, 'dev.cosignproject.cosign/sigs')]}, '   '),
  );
  return {dir, imageManifestDigest: image.manifest.digest, signatureManifestDigest: sig.manifest.digest, signature: sig};
}

// ---------------------------------------------------------------- (c) Windows images with foreign layers

/** A small layer in the Windows layer format (Files/ and Hives/ trees, as hcsshim's tar writer emits). */
function windowsLayer(files: Record<string, string>): Buffer {
  const mtime = Date.parse(CREATED) / 1000;
  const dirs = new Set<string>(['Files/', 'Hives/']);
  for (const f of Object.keys(files)) {
    const parts = f.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/') + '/');
  }
  const entries: TarEntry[] = [...dirs].sort().map((d) => ({name: d, type: 'dir', mode: 0o755, mtime}));
  for (const [f, body] of Object.entries(files).sort()) entries.push({name: f, data: Buffer.from(body), mode: 0o644, mtime});
  return goTar(entries);
}

export interface WindowsCase {
  /** OCI layout directory (cases 1 and 2) or undefined (case 3). */
  dir?: string;
  tar: string;
  manifestDigest?: Digest;
  configDigest: Digest;
  foreign: Descriptor;
  foreignDiffId: Digest;
  presentLayers: Descriptor[];
  diffIds: Digest[];
}

export interface WindowsForeign {
  dockerForeign: WindowsCase;
  ociNondistributable: WindowsCase;
  legacyLayerSources: WindowsCase;
  /** Same as legacyLayerSources but os linux and a runnable busybox layer 0 marked foreign, for Docker on Linux. */
  legacyLayerSourcesLinux?: WindowsCase;
}

const MCR_URL = (d: string): string => `https://mcr.microsoft.com/v2/windows/nanoserver/blobs/${d}`;

function windowsConfig(diffIds: string[]): Buffer {
  // Docker-style config as MCR serves nanoserver's: os windows + os.version, keys in the order docker's image struct marshals.
  return goJson({
    architecture: 'amd64',
    config: {Env: null, Cmd: ['c:\\windows\\system32\\cmd.exe'], User: 'ContainerUser'},
    created: CREATED,
    history: [{created: CREATED, created_by: 'Apply image 10.0.20348.2461'}, {created: CREATED, created_by: 'cmd /S /C echo hello > C:\\hello.txt'}],
    os: 'windows',
    'os.version': '10.0.20348.2461',
    rootfs: {type: 'layers', diff_ids: diffIds},
  });
}

/**
 * Windows images whose base layer is foreign/non-distributable: the blob lives only at its `urls`
 * and a Docker 25+ (containerd store) `docker save` / `ctr export --skip-non-distributable` leaves
 * it out (exporter WithSkipNonDistributableBlobs) while manifest.json still lists its path.
 * (1) Docker schema2 manifest as MCR serves it (distribution's three-space indent) with
 *     `…rootfs.foreign.diff.tar.gzip` + urls; (2) the OCI equivalent with the deprecated
 *     `…layer.nondistributable.v1.tar+gzip`; (3) a Docker ≤24 legacy `docker save`: every layer
 *     written as <v1id>/layer.tar (the foreign one too) and manifest.json `LayerSources` mapping the
 *     foreign diffID to its registry descriptor.
 */
export function windowsForeignLayers(out: string, opts: {base?: string} = {}): WindowsForeign {
  mkdirSync(out, {recursive: true});
  const baseTar = windowsLayer({'Files/Windows/System32/kernel32.dll': 'not really a dll\n', 'Hives/DefaultUser_Delta': 'hive\n'});
  const appTar = windowsLayer({'Files/hello.txt': 'hello\r\n'});
  const baseGz = gzipGo(baseTar);
  const appGz = gzipGo(appTar);
  const diffIds = [sha256(baseTar), sha256(appTar)];

  const ociCase = (name: string, schema: 'docker' | 'oci'): WindowsCase => {
    const dir = path.join(out, `${name}.oci`);
    const store = new BlobDir(dir);
    const config = store.put(windowsConfig(diffIds), schema === 'docker' ? MT.dockerConfig : MT.ociConfig);
    const foreign = store.describe(baseGz, schema === 'docker' ? MT.dockerForeignGzip : MT.ociNondistGzip, {urls: [MCR_URL(sha256(baseGz))]});
    const app = store.put(appGz, schema === 'docker' ? MT.dockerLayerGzip : MT.ociLayerGzip);
    // distribution's schema2/ocischema manifests: mediaType, size, digest, urls (MarshalIndent, three spaces).
    const dist = (d: Descriptor): Record<string, unknown> => ({mediaType: d.mediaType, size: d.size, digest: d.digest, ...(d.urls ? {urls: d.urls} : {})});
    const manifest = store.put(
      goJson({schemaVersion: 2, mediaType: schema === 'docker' ? MT.dockerManifest : MT.ociManifest, config: dist(config), layers: [dist(foreign), dist(app)]}, '   '),
      schema === 'docker' ? MT.dockerManifest : MT.ociManifest,
    );
    const n = qualify(`ferry-test/win-${schema}:ltsc2022`);
    writeFileSync(path.join(dir, 'oci-layout'), goJson({imageLayoutVersion: '1.0.0'}));
    writeFileSync(
      path.join(dir, 'index.json'),
      goJson({schemaVersion: 2, manifests: [{...manifest, annotations: sorted({'io.containerd.image.name': n.full, 'org.opencontainers.image.ref.name': n.tag})}]}),
    );
    writeFileSync(
      path.join(dir, 'manifest.json'),
      goJson([{Config: `blobs/sha256/${hexOf(config.digest)}`, RepoTags: [n.familiar], Layers: [foreign, app].map((l) => `blobs/sha256/${hexOf(l.digest)}`)}]),
    );
    const tar = path.join(out, `${name}.tar`);
    writeFileSync(tar, containerdExportTar(dir, ['oci-layout', 'index.json', 'manifest.json', 'blobs/', 'blobs/sha256/', ...blobFiles(manifest, config, app)]));
    return {dir, tar, manifestDigest: manifest.digest, configDigest: config.digest, foreign, foreignDiffId: diffIds[0] as Digest, presentLayers: [app], diffIds};
  };

  const legacy = (name: string, config: Buffer, layers: Buffer[], foreign: Descriptor, repoTag: string): WindowsCase => {
    const configDigest = sha256(config);
    // v1 directory names are opaque to loaders; derive stable ones from the chain.
    const ids = layers.map((_, i) => hexOf(sha256(`${configDigest} ${i}`)));
    const entries: TarEntry[] = [];
    const item = {
      Config: `${hexOf(configDigest)}.json`,
      RepoTags: [repoTag],
      Layers: ids.map((id) => `${id}/layer.tar`),
      // distribution.Descriptor field order: mediaType, size, digest, urls.
      LayerSources: {[sha256(layers[0] ?? Buffer.alloc(0))]: {mediaType: foreign.mediaType, size: foreign.size, digest: foreign.digest, urls: foreign.urls}},
    };
    ids.forEach((id, i) => {
      entries.push({name: `${id}/`, type: 'dir', mode: 0o755});
      entries.push({name: `${id}/VERSION`, data: Buffer.from('1.0')});
      entries.push({name: `${id}/json`, data: goJson({id, ...(i > 0 ? {parent: ids[i - 1]} : {}), created: CREATED, os: 'windows'})});
      entries.push({name: `${id}/layer.tar`, data: layers[i] ?? Buffer.alloc(0)});
    });
    entries.push({name: `${hexOf(configDigest)}.json`, data: config});
    entries.push({name: 'manifest.json', data: Buffer.concat([goJson([item]), Buffer.from('\n')])});
    const [repo, tag] = [repoTag.slice(0, repoTag.lastIndexOf(':')), repoTag.slice(repoTag.lastIndexOf(':') + 1)];
    entries.push({name: 'repositories', data: Buffer.concat([goJson({[repo]: {[tag]: ids[ids.length - 1]}}), Buffer.from('\n')])});
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    const tar = path.join(out, `${name}.tar`);
    writeFileSync(tar, goTar(entries));
    return {tar, configDigest, foreign, foreignDiffId: sha256(layers[0] ?? Buffer.alloc(0)), presentLayers: [], diffIds: layers.map((l) => sha256(l))};
  };

  const dockerForeign = ociCase('win-docker-foreign', 'docker');
  const ociNondistributable = ociCase('win-oci-nondistributable', 'oci');
  const foreignDesc: Descriptor = {mediaType: MT.dockerForeignGzip, digest: sha256(baseGz), size: baseGz.length, urls: [MCR_URL(sha256(baseGz))]};
  const legacyLayerSources = legacy('win-legacy-layersources', windowsConfig(diffIds), [baseTar, appTar], foreignDesc, 'ferry-test/win-legacy:ltsc2022');
  const result: WindowsForeign = {dockerForeign, ociNondistributable, legacyLayerSources};
  if (opts.base) {
    // Docker on Linux refuses windows configs before it looks at LayerSources; this twin shows what it does with them.
    const base = readBaseArchive(opts.base);
    const gz0 = gzipGo(base.layers[0] ?? Buffer.alloc(0));
    const linuxForeign: Descriptor = {mediaType: MT.dockerForeignGzip, digest: sha256(gz0), size: gz0.length, urls: [`https://registry.example/v2/ferry-test/base/blobs/${sha256(gz0)}`]};
    const config = goJson({architecture: 'amd64', config: {Env: ['PATH=/bin'], Cmd: ['/bin/sh']}, created: CREATED, os: 'linux', rootfs: {type: 'layers', diff_ids: base.diffIds}});
    result.legacyLayerSourcesLinux = legacy('linux-legacy-layersources', config, base.layers, linuxForeign, 'ferry-test/linux-foreign:1');
  }
  return result;
}

// ---------------------------------------------------------------- (d) bytes after the compressed stream

export interface TrailingCase {
  tar: string;
  dir?: string;
  manifestDigest?: Digest;
  configDigest: Digest;
  layerDigests: Digest[];
  diffIds: Digest[];
  tag: string;
}

export interface TrailingData {
  /** Control: the same image, plain gzip layers (must load everywhere). */
  control: TrailingCase;
  /** Legacy docker-archive, layer files = gzip member + 512 zero bytes. */
  gzipZerosDockerArchive: TrailingCase;
  /** OCI layout (+ hybrid tar with manifest.json), gzip layer + 512 zero bytes; digest covers the zeros. */
  gzipZerosOci: TrailingCase;
  /** OCI layout, zstd layer + trailing garbage bytes. */
  zstdGarbageOci: TrailingCase;
  /** Control for the zstd case: the same layers as plain zstd frames. */
  zstdControlOci: TrailingCase;
}

/**
 * Layers whose compressed blob continues after the end of the compressed stream: 512 zero bytes
 * after a gzip member (tar-style block padding of the blob) and 16 bytes of garbage after a zstd
 * frame. The blob digest is the sha256 of everything stored, zeros included; diffIDs are of the
 * uncompressed tar. Written both as a legacy docker-archive and as OCI layouts (dir + hybrid tar).
 */
export function trailingData(out: string, opts: {base: string}): TrailingData {
  mkdirSync(out, {recursive: true});
  const base = readBaseArchive(opts.base);
  const config = goJson({architecture: 'amd64', config: {Env: ['PATH=/bin'], Cmd: ['/bin/sh']}, created: CREATED, os: 'linux', rootfs: {type: 'layers', diff_ids: base.diffIds}});
  const configDigest = sha256(config);

  const dockerArchive = (name: string, blobs: Buffer[], tag: string): TrailingCase => {
    // skopeo-style legacy docker-archive: layers as root files named by blob digest, config <hex>.json.
    const entries: TarEntry[] = blobs.map((b) => ({name: `${hexOf(sha256(b))}.tar`, data: b, mode: 0o444}));
    entries.push({name: `${hexOf(configDigest)}.json`, data: config, mode: 0o444});
    entries.push({name: 'manifest.json', data: goJson([{Config: `${hexOf(configDigest)}.json`, RepoTags: [tag], Layers: blobs.map((b) => `${hexOf(sha256(b))}.tar`)}]), mode: 0o444});
    const tar = path.join(out, `${name}.tar`);
    writeFileSync(tar, goTar(entries));
    return {tar, configDigest, layerDigests: blobs.map((b) => sha256(b)), diffIds: base.diffIds, tag};
  };

  const ociLayout = (name: string, blobs: Buffer[], mediaType: string, tag: string): TrailingCase => {
    const dir = path.join(out, `${name}.oci`);
    const store = new BlobDir(dir);
    const cfg = store.put(config, MT.ociConfig);
    const layers = blobs.map((b) => store.put(b, mediaType));
    const manifest = store.put(goJson({schemaVersion: 2, mediaType: MT.ociManifest, config: cfg, layers}), MT.ociManifest);
    const n = qualify(tag);
    writeFileSync(path.join(dir, 'oci-layout'), goJson({imageLayoutVersion: '1.0.0'}));
    writeFileSync(path.join(dir, 'index.json'), goJson({schemaVersion: 2, manifests: [{...manifest, annotations: sorted({'io.containerd.image.name': n.full, 'org.opencontainers.image.ref.name': n.tag})}]}));
    writeFileSync(path.join(dir, 'manifest.json'), goJson([{Config: `blobs/sha256/${hexOf(cfg.digest)}`, RepoTags: [n.familiar], Layers: layers.map((l) => `blobs/sha256/${hexOf(l.digest)}`)}]));
    const tar = path.join(out, `${name}.tar`);
    writeFileSync(tar, containerdExportTar(dir, ['oci-layout', 'index.json', 'manifest.json', 'blobs/', 'blobs/sha256/', ...blobFiles(manifest, cfg, ...layers)]));
    return {tar, dir, manifestDigest: manifest.digest, configDigest, layerDigests: layers.map((l) => l.digest), diffIds: base.diffIds, tag: n.familiar};
  };

  const gz = base.layers.map((l) => gzipGo(l));
  const gzZeros = gz.map((b) => Buffer.concat([b, Buffer.alloc(512)]));
  const zstdGarbage = base.layers.map((l) => Buffer.concat([Buffer.from(zstdCompress(l)), Buffer.from('TRAILING-GARBAGE')]));
  return {
    control: dockerArchive('control-gzip.docker-archive', gz, 'ferry-test/trailing:control'),
    gzipZerosDockerArchive: dockerArchive('gzip-zeros.docker-archive', gzZeros, 'ferry-test/trailing:gzip-zeros'),
    gzipZerosOci: ociLayout('gzip-zeros', gzZeros, MT.ociLayerGzip, 'ferry-test/trailing:gzip-zeros-oci'),
    zstdGarbageOci: ociLayout('zstd-garbage', zstdGarbage, MT.ociLayerZstd, 'ferry-test/trailing:zstd-garbage'),
    zstdControlOci: ociLayout('zstd-control', base.layers.map((l) => Buffer.from(zstdCompress(l))), MT.ociLayerZstd, 'ferry-test/trailing:zstd-control'),
  };
}

// ---------------------------------------------------------------- (e) Docker 25+ graphdriver save, several tags

export interface GraphdriverSave {
  dir: string;
  tar: string;
  manifestDigest: Digest;
  configDigest: Digest;
  diffIds: Digest[];
  tags: string[];
  refNames: string[];
}

/**
 * `docker save` of Docker 25.0.1+ with a graphdriver store (image/tarexport/save.go as of 28.x) for
 * one image with several tags: uncompressed layers stored under their diffIDs, the config byte-exact,
 * one compact OCI manifest (config mediaType OCI even for Docker configs), index.json with one entry
 * PER TAG (io.containerd.image.name + tag-only ref.name), manifest.json written by json.Encoder
 * (trailing newline) with LayerSources listing every layer, repositories mapping tags to the top
 * diffID, oci-layout with Docker's `{"imageLayoutVersion": "1.0.0"}` (note the space). The tar is
 * Docker's temp-dir walk: lexical order with directory entries.
 */
export function dockerSaveGraphdriver(out: string, opts: {base: string; tags?: string[]}): GraphdriverSave {
  const names = (opts.tags ?? ['ferry-test/multi:1', 'ferry-test/multi:latest', 'ferry-test/multi:stable']).map(qualify);
  const dir = path.join(out, 'docker25-graphdriver.oci');
  const store = new BlobDir(dir);
  const base = readBaseArchive(opts.base);
  const config = goJson({
    architecture: 'amd64',
    config: {Env: base.config.config?.Env ?? ['PATH=/bin'], Cmd: ['/bin/sh']},
    created: CREATED,
    docker_version: '28.0.0',
    history: [{created: CREATED, created_by: '/bin/sh -c #(nop) ADD dir:busybox in / '}, {created: CREATED, created_by: '/bin/sh -c #(nop)  CMD ["/bin/sh"]', empty_layer: true}, ...base.layers.slice(1).map(() => ({created: CREATED, created_by: '/bin/sh -c #(nop) COPY dir:layer in / '}))],
    os: 'linux',
    rootfs: {type: 'layers', diff_ids: base.diffIds},
  });
  const cfg = store.put(config, MT.ociConfig);
  const layers = base.layers.map((l) => store.put(l, MT.ociLayer));
  // Unreferenced v1-compat JSON per layer, as the save session writes beside the layers.
  const v1 = base.layers.map((_, i) => store.put(goJson({id: hexOf(sha256(`${cfg.digest}/${i}`)), created: CREATED, container_config: {Cmd: null}, os: 'linux'}), 'application/octet-stream'));
  const manifest = store.put(goJson({schemaVersion: 2, mediaType: MT.ociManifest, config: cfg, layers}), MT.ociManifest);
  writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion": "1.0.0"}');
  writeFileSync(
    path.join(dir, 'index.json'),
    goJson({schemaVersion: 2, mediaType: MT.ociIndex, manifests: names.map((n) => ({...manifest, annotations: sorted({'io.containerd.image.name': n.full, 'org.opencontainers.image.ref.name': n.tag})}))}),
  );
  const top = hexOf(base.diffIds[base.diffIds.length - 1] ?? '');
  const repos: Record<string, Record<string, string>> = {};
  for (const n of names) {
    const repo = n.familiar.slice(0, n.familiar.lastIndexOf(':'));
    (repos[repo] ??= {})[n.tag] = top;
  }
  writeFileSync(path.join(dir, 'repositories'), Buffer.concat([goJson(repos), Buffer.from('\n')]));
  const layerSources = Object.fromEntries(layers.map((l) => [l.digest, {mediaType: l.mediaType, size: l.size, digest: l.digest}]));
  writeFileSync(
    path.join(dir, 'manifest.json'),
    Buffer.concat([goJson([{Config: `blobs/sha256/${hexOf(cfg.digest)}`, RepoTags: names.map((n) => n.familiar), Layers: layers.map((l) => `blobs/sha256/${hexOf(l.digest)}`), LayerSources: layerSources}]), Buffer.from('\n')]),
  );
  const files = ['blobs/', 'blobs/sha256/', ...blobFiles(cfg, ...layers, ...v1, manifest), 'index.json', 'manifest.json', 'oci-layout', 'repositories'];
  const entries = layoutEntries(dir, [...new Set(files)].sort()).map((e) => ({...e, mode: e.type === 'dir' ? 0o755 : 0o644, uname: 'root', gname: 'root'}));
  const tar = path.join(out, 'docker25-graphdriver.tar');
  writeFileSync(tar, goTar(entries));
  return {dir, tar, manifestDigest: manifest.digest, configDigest: cfg.digest, diffIds: base.diffIds, tags: names.map((n) => n.familiar), refNames: names.map((n) => n.tag)};
}
