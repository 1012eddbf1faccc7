import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {FIXTURES} from './cli.js';

/**
 * Damage for verify's tests, made at test time from the fixtures with independent tools (Python's
 * tarfile for offsets and crafted layers, GNU tar for member removal and repacking, plain file edits
 * for OCI layouts). Nothing here uses ferry.
 */

const TARCHECK = fileURLToPath(new URL('./tarcheck.py', import.meta.url));

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Member {
  name: string;
  type: string;
  size: number;
  offset: number;
  offset_data: number;
}

export function members(tarPath: string): Member[] {
  return (JSON.parse(execFileSync('python3', [TARCHECK, tarPath], {encoding: 'utf8', maxBuffer: 1 << 28})) as {members: Member[]}).members;
}

export function member(tarPath: string, name: string): Member {
  const m = members(tarPath).find((x) => x.name === name);
  if (!m) throw new Error(`${name} is not in ${tarPath}`);
  return m;
}

/** Copies a fixture (file or directory) into `dir`. */
export function copyFixture(name: string, dir: string, as = name): string {
  const to = path.join(dir, as);
  fs.cpSync(path.join(FIXTURES, name), to, {recursive: true});
  return to;
}

/** XORs one byte of a file with 0x01. */
export function flipByte(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, offset);
    b[0]! ^= 0x01;
    fs.writeSync(fd, b, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

/** Flips a byte `at` bytes into the data of tar member `name`, in place (the tar stays well formed). */
export function flipByteInMember(tarPath: string, name: string, at: number): void {
  const m = member(tarPath, name);
  if (at >= m.size) throw new Error(`${name} has only ${m.size} bytes`);
  flipByte(tarPath, m.offset_data + at);
}

export function truncateFile(file: string, length: number): void {
  fs.truncateSync(file, length);
}

/**
 * Removes one member, copying every other member's bytes (headers included) as they are, in their
 * order, then two zero blocks. (GNU tar --delete truncates archives that Go wrote without record
 * padding, such as docker save's: tar 1.34 drops the tail of the last partial record.)
 */
export function deleteMember(tarPath: string, name: string): void {
  const all = members(tarPath);
  const index = all.findIndex((m) => m.name === name);
  if (index < 0) throw new Error(`${name} is not in ${tarPath}`);
  const bytes = fs.readFileSync(tarPath);
  const end = (i: number): number => all[i + 1]?.offset ?? all[i]!.offset_data + Math.ceil(all[i]!.size / 512) * 512;
  const parts = all.flatMap((m, i) => (i === index ? [] : [bytes.subarray(m.offset, end(i))]));
  fs.writeFileSync(tarPath, Buffer.concat([...parts, Buffer.alloc(1024)]));
}

/**
 * Extracts a tar, lets `edit` change the tree, and repacks it with GNU tar in the original member
 * order; members `edit` removed are left out, new ones it names are appended.
 */
export function repack(tarPath: string, work: string, edit: (root: string) => string[] | void): void {
  const root = path.join(work, `repack-${path.basename(tarPath)}`);
  fs.mkdirSync(root);
  const order = members(tarPath).map((m) => m.name);
  execFileSync('tar', ['-xf', tarPath, '-C', root]);
  const added = edit(root) ?? [];
  const kept = [...order, ...added].filter((n) => fs.existsSync(path.join(root, n)) || isSymlink(path.join(root, n)));
  execFileSync('tar', ['--format=gnu', '--no-recursion', '-cf', tarPath, '-C', root, ...kept]);
  fs.rmSync(root, {recursive: true, force: true});
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

// ---- OCI image layouts (a directory, or the root of an extracted oci-archive) ----

export function blobFile(root: string, digest: string): string {
  const [alg, hex] = digest.split(':') as [string, string];
  return path.join(root, 'blobs', alg, hex);
}

export function readJson<T = Record<string, unknown>>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

export function putBlob(root: string, bytes: Buffer): string {
  const digest = sha256(bytes);
  fs.mkdirSync(path.dirname(blobFile(root, digest)), {recursive: true});
  fs.writeFileSync(blobFile(root, digest), bytes);
  return digest;
}

export interface OciManifest {
  schemaVersion: number;
  mediaType?: string;
  config: {mediaType: string; digest: string; size: number};
  layers: Array<{mediaType: string; digest: string; size: number}>;
}

export interface OciIndex {
  schemaVersion: number;
  manifests: Array<{mediaType: string; digest: string; size: number; annotations?: Record<string, string>}>;
}

/** The first manifest of index.json and its digest. */
export function firstManifest(root: string): {digest: string; manifest: OciManifest} {
  const index = readJson<OciIndex>(path.join(root, 'index.json'));
  const digest = index.manifests[0]!.digest;
  return {digest, manifest: readJson<OciManifest>(blobFile(root, digest))};
}

/** Rewrites the first manifest through `edit`, stores it as a new blob and points index.json at it. */
export function editManifest(root: string, edit: (m: OciManifest) => void): string {
  const indexFile = path.join(root, 'index.json');
  const index = readJson<OciIndex>(indexFile);
  const {manifest} = firstManifest(root);
  edit(manifest);
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = putBlob(root, bytes);
  index.manifests[0] = {...index.manifests[0]!, digest, size: bytes.length};
  fs.writeFileSync(indexFile, JSON.stringify(index));
  return digest;
}

export function editIndex(root: string, edit: (i: OciIndex) => void): void {
  const indexFile = path.join(root, 'index.json');
  const index = readJson<OciIndex>(indexFile);
  edit(index);
  fs.writeFileSync(indexFile, JSON.stringify(index));
}

/** A layer tar written by Python's tarfile: entries as given (names are not cleaned). */
export function craftLayer(entries: Array<{name: string; type?: 'file' | 'dir' | 'hardlink' | 'symlink'; linkname?: string; data?: string}>): Buffer {
  const script = `
import io, json, sys, tarfile
out = io.BytesIO()
types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "hardlink": tarfile.LNKTYPE, "symlink": tarfile.SYMTYPE}
with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
    for e in json.loads(sys.stdin.read()):
        t = tarfile.TarInfo(e["name"])
        t.type = types[e.get("type", "file")]
        t.linkname = e.get("linkname", "")
        t.mtime = 1700000000
        data = e.get("data", "").encode()
        t.size = len(data) if t.type == tarfile.REGTYPE else 0
        tf.addfile(t, io.BytesIO(data))
sys.stdout.buffer.write(out.getvalue())
`;
  return execFileSync('python3', ['-c', script], {input: JSON.stringify(entries), maxBuffer: 1 << 26});
}

/** An OCI image layout directory holding one image made of the given (uncompressed) layer tars. */
export function makeOciLayout(root: string, layers: Buffer[], name = 'crafted:1'): void {
  fs.mkdirSync(root, {recursive: true});
  fs.writeFileSync(path.join(root, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const diffIds = layers.map((l) => sha256(l));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: {type: 'layers', diff_ids: diffIds},
      history: layers.map((_, i) => ({created_by: `crafted layer ${i}`})),
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: putBlob(root, config), size: config.length},
      layers: layers.map((l) => ({mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: putBlob(root, l), size: l.length})),
    }),
  );
  const index = {
    schemaVersion: 2,
    manifests: [{mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: putBlob(root, manifest), size: manifest.length, annotations: {'org.opencontainers.image.ref.name': name}}],
  };
  fs.writeFileSync(path.join(root, 'index.json'), JSON.stringify(index));
}
