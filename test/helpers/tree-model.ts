import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {readFileSync} from 'node:fs';
import path from 'node:path';
import {Header, Parser, type ReadEntry} from 'tar';
import {expect} from 'vitest';
import type {Dockerd} from './daemons.js';

/**
 * Test-side tools for the layer engine, independent of ferry's own code:
 * - crafting layer tars and whole archives with Python's tarfile (not ferry's tar writer);
 * - listing a tar with Python's tarfile, contents hashed, in a canonical form where a hard link is
 *   "another name of that file" (so two tars that choose different first names still compare equal);
 * - LayerModel: a deliberately simple model of Docker's layer applier (a flat map of paths), written
 *   apart from src/ops/overlay, that the engine is checked against.
 */

export type CraftType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'fifo' | 'char' | 'block';

export interface CraftEntry {
  /** Name as written in the tar (whiteouts and opaque markers included). */
  path: string;
  /** Default: 'dir' when path ends in '/', else 'file'. */
  type?: CraftType;
  /**
   * File content: text, N zero bytes, or a host file's bytes; `{sha256, size}` describes content the
   * model only needs to know by hash (entries read back from a tar: see entriesFromTar).
   */
  content?: string | {zeros: number} | {file: string} | {sha256: string; size: number};
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** PAX SCHILY.xattr.* records (values as text). */
  xattrs?: Record<string, string>;
  /** Overrides the typeflag byte as written (craft only: for entries no runtime unpacks). */
  rawType?: string;
}

export type CraftLayer = CraftEntry[];

export const T0 = 1_700_000_000;

const CRAFT = String.raw`
import hashlib, io, json, os, sys, tarfile
spec = json.load(sys.stdin)

class Zeros(io.RawIOBase):
    def __init__(self, n): self.left = n
    def readable(self): return True
    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n

def layer_bytes(entries):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w', format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            name = e['path']
            kind = e.get('type') or ('dir' if name.endswith('/') else 'file')
            ti = tarfile.TarInfo(name)
            ti.mtime = e.get('mtime', ${T0})
            ti.uid = e.get('uid', 0)
            ti.gid = e.get('gid', 0)
            ti.uname = ''
            ti.gname = ''
            data = None
            if kind == 'dir':
                ti.type = tarfile.DIRTYPE; ti.mode = e.get('mode', 0o755)
            elif kind == 'symlink':
                ti.type = tarfile.SYMTYPE; ti.linkname = e['linkname']; ti.mode = e.get('mode', 0o777)
            elif kind == 'hardlink':
                ti.type = tarfile.LNKTYPE; ti.linkname = e['linkname']; ti.mode = e.get('mode', 0o644)
            elif kind == 'fifo':
                ti.type = tarfile.FIFOTYPE; ti.mode = e.get('mode', 0o644)
            elif kind in ('char', 'block'):
                ti.type = tarfile.CHRTYPE if kind == 'char' else tarfile.BLKTYPE
                ti.devmajor = e.get('devmajor', 0); ti.devminor = e.get('devminor', 0); ti.mode = e.get('mode', 0o644)
            else:
                ti.mode = e.get('mode', 0o644)
                c = e.get('content', '')
                if isinstance(c, dict) and 'zeros' in c:
                    ti.size = c['zeros']; data = io.BufferedReader(Zeros(c['zeros']))
                elif isinstance(c, dict):
                    raw = open(c['file'], 'rb').read(); ti.size = len(raw); data = io.BytesIO(raw)
                else:
                    raw = c.encode('utf-8'); ti.size = len(raw); data = io.BytesIO(raw)
            if e.get('rawType'):
                ti.type = e['rawType'].encode('latin1')
            if e.get('xattrs'):
                ti.pax_headers = {'SCHILY.xattr.' + k: v for k, v in e['xattrs'].items()}
            tf.addfile(ti, data)
    return out.getvalue()

def add(tf, name, data):
    ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 0
    tf.addfile(ti, io.BytesIO(data))

blobs = [layer_bytes(l) for l in spec['layers']]
diff_ids = ['sha256:' + hashlib.sha256(b).hexdigest() for b in blobs]
config = dict(spec.get('config') or {})
config.setdefault('architecture', 'amd64')
config.setdefault('os', 'linux')
config['rootfs'] = {'type': 'layers', 'diff_ids': diff_ids}
config.setdefault('history', [{'created_by': 'crafted layer %d' % i} for i in range(len(blobs))])
config_bytes = json.dumps(config).encode()
config_hex = hashlib.sha256(config_bytes).hexdigest()
out = spec['out']
if spec['form'] == 'docker':
    with tarfile.open(out, 'w', format=tarfile.PAX_FORMAT) as tf:
        names = []
        for i, b in enumerate(blobs):
            add(tf, 'layer%d/layer.tar' % i, b); names.append('layer%d/layer.tar' % i)
        add(tf, config_hex + '.json', config_bytes)
        add(tf, 'manifest.json', json.dumps([{'Config': config_hex + '.json', 'RepoTags': [spec['tag']], 'Layers': names}]).encode())
elif spec['form'] == 'layer':
    open(out, 'wb').write(blobs[0])
else:
    os.makedirs(os.path.join(out, 'blobs', 'sha256'))
    def blob(data):
        h = hashlib.sha256(data).hexdigest()
        open(os.path.join(out, 'blobs', 'sha256', h), 'wb').write(data)
        return {'digest': 'sha256:' + h, 'size': len(data)}
    manifest = {'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                'config': dict(mediaType='application/vnd.oci.image.config.v1+json', **blob(config_bytes)),
                'layers': [dict(mediaType='application/vnd.oci.image.layer.v1.tar', **blob(b)) for b in blobs]}
    m = blob(json.dumps(manifest).encode())
    index = {'schemaVersion': 2, 'manifests': [dict(mediaType='application/vnd.oci.image.manifest.v1+json',
             annotations={'org.opencontainers.image.ref.name': spec['tag']}, **m)]}
    open(os.path.join(out, 'index.json'), 'w').write(json.dumps(index))
    open(os.path.join(out, 'oci-layout'), 'w').write('{"imageLayoutVersion":"1.0.0"}')
print(json.dumps({'diffIds': diff_ids, 'config': config_hex}))
`;

function craft(spec: object): {diffIds: string[]; config: string} {
  return JSON.parse(execFileSync('python3', ['-c', CRAFT], {input: JSON.stringify(spec), encoding: 'utf8', maxBuffer: 1 << 26})) as {diffIds: string[]; config: string};
}

/** A legacy `docker save` archive (manifest.json, <n>/layer.tar, config) holding the crafted layers. */
export function craftDockerArchive(out: string, tag: string, layers: CraftLayer[], config?: object): {diffIds: string[]; config: string} {
  return craft({form: 'docker', out, tag, layers, config});
}

/** An OCI image layout directory (uncompressed layers) with one image named `tag`. */
export function craftOciLayout(out: string, tag: string, layers: CraftLayer[], config?: object): {diffIds: string[]; config: string} {
  return craft({form: 'oci', out, tag, layers, config});
}

/** One layer tar. */
export function craftLayerTar(out: string, entries: CraftLayer): void {
  craft({form: 'layer', out, layers: [entries]});
}

// ---- Listing tars with Python ----

const LIST = String.raw`
import hashlib, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], 'r:') as tf:
    for m in tf:
        e = {'name': m.name, 'type': m.type.decode('latin1'), 'mode': m.mode, 'uid': m.uid, 'gid': m.gid,
             'size': m.size, 'linkname': m.linkname, 'mtime': m.mtime, 'devmajor': m.devmajor, 'devminor': m.devminor}
        if m.isreg():
            h = hashlib.sha256(); f = tf.extractfile(m)
            for chunk in iter(lambda: f.read(1 << 20), b''): h.update(chunk)
            e['sha256'] = h.hexdigest()
        out.append(e)
json.dump(out, sys.stdout)
`;

export interface TarMember {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkname: string;
  mtime: number;
  devmajor: number;
  devminor: number;
  sha256?: string;
}

/** Every member of a tar as Python's tarfile reads it, regular files hashed. */
export function listTar(file: string): TarMember[] {
  return JSON.parse(execFileSync('python3', ['-c', LIST, file], {encoding: 'utf8', maxBuffer: 1 << 28})) as TarMember[];
}

export type CanonType = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block';

/** One path of a file system, as compared: hard links are a file with other names (`links`). */
export interface CanonEntry {
  type: CanonType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  sha256?: string;
  linkname?: string;
  dev?: string;
  links?: string[];
  mtime?: number;
}

export type Canon = Map<string, CanonEntry>;

export function normalizeName(name: string): string {
  return path.posix.normalize(`/${name}`).replace(/^\/+|\/+$/g, '');
}

const TYPE_OF: Record<string, CanonType> = {'0': 'file', '\0': 'file', '7': 'file', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo'};

/** A tar listing in canonical form; throws on duplicate names or a hard link to nothing. */
export function canonFromTar(members: readonly TarMember[]): Canon {
  const canon: Canon = new Map();
  const links: Array<[string, string, TarMember]> = [];
  for (const m of members) {
    const name = normalizeName(m.name);
    if (name === '') continue;
    if (canon.has(name) || links.some(([n]) => n === name)) throw new Error(`duplicate member ${name}`);
    if (m.type === '1') {
      links.push([name, normalizeName(m.linkname), m]);
      continue;
    }
    const type = TYPE_OF[m.type];
    if (!type) throw new Error(`member ${name}: unexpected type ${JSON.stringify(m.type)}`);
    const e: CanonEntry = {type, mode: m.mode & 0o7777, uid: m.uid, gid: m.gid, size: type === 'file' ? m.size : 0, mtime: m.mtime};
    if (m.sha256) e.sha256 = m.sha256;
    if (type === 'symlink') e.linkname = m.linkname;
    if (type === 'char' || type === 'block') e.dev = `${m.devmajor},${m.devminor}`;
    canon.set(name, e);
  }
  const groups = new Map<string, string[]>();
  for (const [name, target, m] of links) {
    const t = canon.get(target);
    if (!t || t.type !== 'file') throw new Error(`hard link ${name} -> ${target}: no such file earlier in the tar`);
    canon.set(name, {...t, mode: m.mode & 0o7777, uid: m.uid, gid: m.gid, mtime: m.mtime});
    const group = groups.get(target) ?? [target];
    group.push(name);
    groups.set(target, group);
  }
  for (const group of groups.values()) for (const name of group) canon.get(name)!.links = group.filter((n) => n !== name).sort();
  return canon;
}

const CRAFT_TYPE: Record<string, CraftType> = {'0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo'};

/** A tar's members as model input (content known by hash), in tar order. */
export function entriesFromTar(members: readonly TarMember[]): CraftLayer {
  return members.map((m) => {
    const type = CRAFT_TYPE[m.type];
    if (!type) throw new Error(`member ${m.name}: unexpected type ${JSON.stringify(m.type)}`);
    const e: CraftEntry = {path: m.name, type, mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime};
    if (type === 'file') e.content = {sha256: m.sha256!, size: m.size};
    if (type === 'symlink' || type === 'hardlink') e.linkname = m.linkname;
    if (type === 'char' || type === 'block') Object.assign(e, {devmajor: m.devmajor, devminor: m.devminor});
    return e;
  });
}

/** A layer of the busybox binary (Debian's busybox-static, GPL: made at test time, never committed). */
export function busyboxLayer(applets = ['sh', 'cat', 'ls', 'find', 'stat', 'sha256sum', 'sort', 'readlink', 'xargs']): CraftLayer {
  return [
    {path: 'bin/'},
    {path: 'bin/busybox', content: {file: '/bin/busybox'}, mode: 0o755},
    ...applets.map((a): CraftEntry => ({path: `bin/${a}`, type: 'symlink', linkname: 'busybox'})),
  ];
}

/** Human-readable differences between two canonical trees (empty when equal). */
export function diffCanon(expected: Canon, actual: Canon, options: {ignore?: (path: string) => boolean; mtime?: boolean} = {}): string[] {
  const out: string[] = [];
  const fields: Array<keyof CanonEntry> = ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'linkname', 'dev', 'links'];
  if (options.mtime) fields.push('mtime');
  for (const [p, e] of expected) {
    if (options.ignore?.(p)) continue;
    const a = actual.get(p);
    if (!a) {
      out.push(`missing: ${p} (${e.type})`);
      continue;
    }
    for (const f of fields) {
      if (f === 'mtime' && (e.mtime === undefined || a.mtime === undefined)) continue;
      const x = JSON.stringify(e[f] ?? null);
      const y = JSON.stringify(a[f] ?? null);
      if (x !== y) out.push(`${p}: ${f} expected ${x}, got ${y}`);
    }
  }
  for (const p of actual.keys()) if (!expected.has(p) && !options.ignore?.(p)) out.push(`unexpected: ${p} (${actual.get(p)!.type})`);
  return out;
}

/** What `docker export` adds to every container from Docker's init layer (docs/formats.md §7). */
export const DOCKER_INIT_ENTRIES = ['.dockerenv', 'dev', 'dev/console', 'dev/pts', 'dev/shm', 'etc', 'etc/hostname', 'etc/hosts', 'etc/mtab', 'etc/resolv.conf', 'proc', 'sys'];

// ---- The model ----

interface ModelInode {
  type: CanonType;
  mode: number;
  uid: number;
  gid: number;
  mtime?: number;
  size: number;
  sha256?: string;
  linkname?: string;
  dev?: string;
}

interface ModelNode {
  inode: ModelInode;
  /** Layer that wrote this path with an entry; -1 for parents nobody described. */
  written: number;
}

export class ModelError extends Error {}

function contentOf(c: CraftEntry['content']): {size: number; sha256: string} {
  const h = createHash('sha256');
  let size: number;
  if (c === undefined || typeof c === 'string') {
    const b = Buffer.from(c ?? '', 'utf8');
    h.update(b);
    size = b.length;
  } else if ('sha256' in c) {
    return {size: c.size, sha256: c.sha256};
  } else if ('zeros' in c) {
    const chunk = Buffer.alloc(1 << 20);
    for (let left = c.zeros; left > 0; left -= chunk.length) h.update(left >= chunk.length ? chunk : chunk.subarray(0, left));
    size = c.zeros;
  } else {
    const b = readFileSync(c.file);
    h.update(b);
    size = b.length;
  }
  return {size, sha256: h.digest('hex')};
}

/**
 * Docker's applier as a flat map from path to node (see src/ops/overlay/apply.ts for the rules and
 * where they come from). Throws ModelError where Docker's applier fails.
 */
export class LayerModel {
  readonly nodes = new Map<string, ModelNode>([['', {inode: {type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0}, written: -1}]]);

  applyLayers(layers: readonly CraftLayer[]): this {
    layers.forEach((l, i) => this.applyLayer(i, l));
    return this;
  }

  applyLayer(layer: number, entries: CraftLayer): void {
    for (const e of entries) this.#apply(layer, e);
  }

  /** Directory path (canonical) reached from `parts` following symlinks; null if impossible. */
  #dir(parts: readonly string[], create: boolean): string | null {
    let cur = '';
    const todo = parts.map((p) => ({p, viaLink: false}));
    let hops = 0;
    while (todo.length > 0) {
      const {p, viaLink} = todo.shift()!;
      if (p === '' || p === '.') continue;
      if (p === '..') {
        cur = cur.includes('/') ? cur.slice(0, cur.lastIndexOf('/')) : '';
        continue;
      }
      const next = cur === '' ? p : `${cur}/${p}`;
      let node = this.nodes.get(next);
      if (!node) {
        if (!create || viaLink) return null;
        node = {inode: {type: 'dir', mode: 0o600, uid: 0, gid: 0, size: 0}, written: -1};
        this.nodes.set(next, node);
      }
      if (node.inode.type === 'symlink') {
        if (++hops > 40) return null;
        const target = node.inode.linkname!;
        if (target.startsWith('/')) cur = '';
        todo.unshift(...target.split('/').map((x) => ({p: x, viaLink: true})));
        continue;
      }
      if (node.inode.type !== 'dir') return null;
      cur = next;
    }
    return cur;
  }

  #removeTree(p: string): void {
    for (const key of [...this.nodes.keys()]) if (key !== '' && (key === p || p === '' || key.startsWith(`${p}/`))) this.nodes.delete(key);
  }

  #apply(layer: number, e: CraftEntry): void {
    const name = normalizeName(e.path);
    const type: CraftType = e.type ?? (e.path.endsWith('/') ? 'dir' : 'file');
    const attrs = {mode: (e.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644)) & 0o7777, uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: e.mtime ?? T0};
    if (name === '') {
      Object.assign(this.nodes.get('')!.inode, attrs);
      return;
    }
    const parts = name.split('/');
    const base = parts.pop()!;
    const parent = this.#dir(parts, true);
    if (parts.length === 0 && base.startsWith('.wh..wh.') && base !== '.wh..wh..opq') return;
    if (base === '.wh..wh..opq') {
      let dir: string | null = '';
      if (parts.length > 0) {
        const grand = this.#dir(parts.slice(0, -1), false);
        dir = grand === null ? null : grand === '' ? parts.at(-1)! : `${grand}/${parts.at(-1)}`;
      }
      if (dir === null || this.nodes.get(dir)?.inode.type !== 'dir') return;
      const below = [...this.nodes.keys()].filter((k) => k !== '' && (dir === '' || k.startsWith(`${dir}/`)));
      below.sort((a, b) => a.split('/').length - b.split('/').length);
      for (const k of below) if (this.nodes.has(k) && this.nodes.get(k)!.written !== layer) this.#removeTree(k);
      return;
    }
    if (base.startsWith('.wh.')) {
      const target = base.slice(4);
      if (target === '' || target === '.' || target === '..' || parent === null) return;
      this.#removeTree(parent === '' ? target : `${parent}/${target}`);
      return;
    }
    if (parent === null) throw new ModelError(`cannot place ${e.path}: parent is not a directory`);
    const full = parent === '' ? base : `${parent}/${base}`;
    const existing = this.nodes.get(full);
    if (type === 'dir' && existing?.inode.type === 'dir') {
      Object.assign(existing.inode, attrs);
      existing.written = layer;
      return;
    }
    if (existing) this.#removeTree(full);
    if (type === 'hardlink') {
      const tparts = normalizeName(e.linkname!).split('/');
      const tbase = tparts.pop()!;
      const tdir = this.#dir(tparts, false);
      const target = tdir === null ? undefined : this.nodes.get(tdir === '' ? tbase : `${tdir}/${tbase}`);
      if (!target || target.inode.type === 'dir' || tbase === '') throw new ModelError(`hard link ${e.path} -> ${e.linkname}: no such file`);
      target.inode.uid = attrs.uid;
      target.inode.gid = attrs.gid;
      if (target.inode.type !== 'symlink') {
        target.inode.mode = attrs.mode;
        target.inode.mtime = attrs.mtime;
      }
      this.nodes.set(full, {inode: target.inode, written: layer});
      return;
    }
    // Symlink targets are kept whatever they point at, as docker 20.10 keeps them (never followed here).
    const inode: ModelInode = {type, ...attrs, size: 0};
    if (type === 'file') Object.assign(inode, contentOf(e.content));
    if (type === 'symlink') inode.linkname = e.linkname!;
    if (type === 'char' || type === 'block') inode.dev = `${e.devmajor ?? 0},${e.devminor ?? 0}`;
    this.nodes.set(full, {inode, written: layer});
  }

  canon(): Canon {
    const canon: Canon = new Map();
    const names = new Map<ModelInode, string[]>();
    for (const [p, node] of this.nodes) {
      if (p === '') continue;
      const i = node.inode;
      const e: CanonEntry = {type: i.type, mode: i.mode, uid: i.uid, gid: i.gid, size: i.type === 'file' ? i.size : 0};
      if (i.mtime !== undefined && node.written >= 0) e.mtime = i.mtime;
      if (i.sha256) e.sha256 = i.sha256;
      if (i.linkname !== undefined) e.linkname = i.linkname;
      if (i.dev) e.dev = i.dev;
      canon.set(p, e);
      if (i.type === 'file') names.set(i, [...(names.get(i) ?? []), p]);
    }
    for (const group of names.values()) if (group.length > 1) for (const p of group) canon.get(p)!.links = group.filter((n) => n !== p).sort();
    return canon;
  }
}

// ---- Docker comparisons ----

const LONG_DIR = 'abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwx';
const OVER_100 = `srv/long/${LONG_DIR}/${LONG_DIR}/over-100.txt`;
const OVER_255 = `srv/long/${[LONG_DIR, LONG_DIR, LONG_DIR, LONG_DIR].join('/')}/over-255-${'n'.repeat(40)}.txt`;

/** Every case of the layer engine in one image (issue 4, "Done when"). */
export const EVERY_CASE: CraftLayer[] = [
  [
    {path: 'srv/'},
    {path: 'srv/base.txt', content: 'base of a cross-layer hard link\n'},
    {path: 'srv/keep.txt', content: 'keep\n'},
    {path: 'srv/gone.txt', content: 'deleted by layer 1\n'},
    {path: 'srv/olddir/'},
    {path: 'srv/olddir/a', content: 'a'},
    {path: 'srv/olddir/b/'},
    {path: 'srv/olddir/b/c', content: 'c'},
    {path: 'srv/opq/'},
    {path: 'srv/opq/old.txt', content: 'hidden by the opaque marker\n'},
    {path: 'srv/opq/deep/'},
    {path: 'srv/opq/deep/x', content: 'x'},
    {path: 'srv/replaced/'},
    {path: 'srv/replaced/one', content: 'one'},
    {path: 'srv/replaced/two', content: 'two'},
    {path: 'srv/f2d', content: 'a file that becomes a directory\n'},
    {path: 'srv/f2d2', content: 'file, then dir, then file again\n'},
    {path: 'srv/d2f/'},
    {path: 'srv/d2f/inner', content: 'inside a directory that becomes a file\n'},
    {path: 'srv/long/'},
    {path: `srv/long/${LONG_DIR}/`},
    {path: `srv/long/${LONG_DIR}/${LONG_DIR}/`},
    {path: OVER_100, content: 'over 100\n'},
    {path: OVER_255, content: 'over 255\n'},
    {path: `srv/long/${'f'.repeat(200)}.txt`, content: 'a 200-byte name\n'},
    {path: 'srv/unicode/'},
    {path: 'srv/unicode/ünïcödé.txt', content: 'ü'},
    {path: 'srv/unicode/中文.txt', content: '中'},
    {path: 'srv/unicode/🚢.txt', content: '🚢'},
    {path: 'srv/setuid.sh', content: '#!/bin/sh\necho setuid\n', mode: 0o4755},
    {path: 'srv/setgid', content: 'g', mode: 0o2755},
    {path: 'srv/sticky/', mode: 0o1777},
    {path: 'srv/owned.txt', content: 'owned by 1000\n', uid: 1000, gid: 1000},
    {path: 'srv/bigid.txt', content: 'owned by 70000\n', uid: 70000, gid: 70001},
    {path: 'srv/emptyfile', content: ''},
    {path: 'srv/zeros16', content: {zeros: 16 << 20}},
    {path: 'srv/xattr.txt', content: 'xattr', xattrs: {'user.test': 'value'}},
    {path: 'srv/abs-link', type: 'symlink', linkname: '/srv/keep.txt'},
    {path: 'srv/rel-link', type: 'symlink', linkname: '../srv/keep.txt'},
    {path: 'srv/dangling', type: 'symlink', linkname: '/missing'},
    {path: 'srv/pipe', type: 'fifo'},
    {path: 'srv/devs/'},
    {path: 'srv/devs/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666},
    {path: 'srv/devs/loop9', type: 'block', devmajor: 7, devminor: 9, mode: 0o660},
    {path: 'srv/h/'},
    {path: 'srv/h/a', content: 'three names, one inode\n'},
    {path: 'srv/h/b', type: 'hardlink', linkname: 'srv/h/a'},
    {path: 'srv/h/sub/'},
    {path: 'srv/h/sub/c', type: 'hardlink', linkname: 'srv/h/a'},
    {path: 'srv/pair-a', content: 'pair before\n'},
    {path: 'srv/pair-b', type: 'hardlink', linkname: 'srv/pair-a'},
    {path: 'srv/meta-orig', content: 'metadata set by a later link\n'},
    {path: 'srv/wt-real/'},
    {path: 'srv/wt-link', type: 'symlink', linkname: 'wt-real'},
  ],
  [
    {path: 'srv/'},
    {path: 'srv/.wh.gone.txt'},
    {path: 'srv/.wh.olddir'},
    {path: 'srv/opq/'},
    {path: 'srv/opq/.wh..wh..opq'},
    {path: 'srv/opq/new.txt', content: 'after the marker\n'},
    {path: 'srv/replaced/'},
    {path: 'srv/replaced/.wh.one'},
    {path: 'srv/replaced/.wh.two'},
    {path: 'srv/replaced/new', content: 'new'},
    {path: 'srv/f2d/'},
    {path: 'srv/f2d/inside', content: 'now a directory\n'},
    {path: 'srv/f2d2/'},
    {path: 'srv/f2d2/inner', content: 'briefly a directory\n'},
    {path: 'srv/d2f', content: 'now a file\n'},
    {path: 'srv/xlink', type: 'hardlink', linkname: 'srv/base.txt'},
    {path: 'srv/h/.wh.a'},
    {path: 'srv/pair-a', content: 'pair-a rewritten\n'},
    {path: 'srv/keep.txt', content: 'keep, chmod and chown\n', mode: 0o600, uid: 1000, gid: 1000},
    {path: 'srv/wt-link/through.txt', content: 'written through a symlink\n'},
    {path: 'srv/tmpfile', content: 'created and whited out in one layer\n'},
    {path: 'srv/.wh.tmpfile'},
    {path: 'srv/meta-link', type: 'hardlink', linkname: 'srv/meta-orig', mode: 0o600, uid: 4321, gid: 4321, mtime: T0 + 500},
  ],
  [
    {path: 'srv/f2d2', content: 'a file again\n'},
    {path: 'srv/.wh.base.txt'},
    {path: 'newtree/a/b/file', content: 'parents made implicitly\n'},
    {path: 'ghost/.wh.nothing'},
    {path: 'app/'},
    {path: 'app/notes.txt', content: 'app\n', uid: 1000, gid: 1000},
  ],
];

/** `docker export` of a container created (never started) from `image`, in canonical form. */
export function dockerExportCanon(dockerd: Dockerd, image: string, out: string): Canon {
  const cid = dockerd.docker(['create', '--network', 'none', image, '/nonexistent']).trim();
  try {
    dockerd.docker(['export', '-o', out, cid]);
  } finally {
    dockerd.docker(['rm', cid]);
  }
  return canonFromTar(listTar(out));
}

/** Docker's export minus the init-layer stubs the image does not have itself. */
export function expectSameAsDocker(docker: Canon, ours: Canon): void {
  expect(diffCanon(docker, ours, {ignore: (p) => DOCKER_INIT_ENTRIES.includes(p) && !ours.has(p)})).toEqual([]);
}


// ---- In-process tars (node-tar's Header and Parser: independent of ferry's tar code) ----

const HEADER_TYPE: Record<CraftType, 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'FIFO' | 'CharacterDevice' | 'BlockDevice'> = {
  file: 'File',
  dir: 'Directory',
  symlink: 'SymbolicLink',
  hardlink: 'Link',
  fifo: 'FIFO',
  char: 'CharacterDevice',
  block: 'BlockDevice',
};

/** A layer tar in memory (short names, text content only), written with node-tar's Header. */
export function encodeLayer(entries: CraftLayer): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const type: CraftType = e.type ?? (e.path.endsWith('/') ? 'dir' : 'file');
    if (e.content !== undefined && typeof e.content !== 'string') throw new Error('encodeLayer: text content only');
    const data = type === 'file' ? Buffer.from(e.content ?? '', 'utf8') : Buffer.alloc(0);
    const header = new Header({
      path: e.path,
      type: HEADER_TYPE[type],
      mode: e.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      size: data.length,
      mtime: new Date((e.mtime ?? T0) * 1000),
      linkpath: e.linkname ?? '',
      devmaj: e.devmajor ?? 0,
      devmin: e.devminor ?? 0,
    });
    header.encode();
    if (header.needPax || !header.block) throw new Error(`encodeLayer: ${e.path} needs PAX`);
    parts.push(header.block, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** Members of a tar in memory, read with node-tar's Parser, regular files hashed. */
export async function parseTar(tar: Buffer): Promise<TarMember[]> {
  const out: TarMember[] = [];
  // node-tar calls a tar of nothing but the end marker "unrecognized"; it is a valid empty archive.
  if (tar.length >= 1024 && tar.every((b) => b === 0)) return out;
  const TYPE_CODE: Record<string, string> = {File: '0', OldFile: '0', ContiguousFile: '0', Link: '1', SymbolicLink: '2', CharacterDevice: '3', BlockDevice: '4', Directory: '5', FIFO: '6'};
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      const m: TarMember = {
        name: entry.path,
        type: TYPE_CODE[entry.type] ?? entry.type,
        mode: entry.mode ?? 0,
        uid: entry.uid ?? 0,
        gid: entry.gid ?? 0,
        size: entry.size ?? 0,
        linkname: entry.linkpath ?? '',
        mtime: Math.floor((entry.mtime?.getTime() ?? 0) / 1000),
        devmajor: entry.header.devmaj,
        devminor: entry.header.devmin,
      };
      out.push(m);
      const hash = createHash('sha256');
      entry.on('data', (chunk: Buffer) => hash.update(chunk));
      entry.on('end', () => {
        if (m.type === '0') m.sha256 = hash.digest('hex');
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', () => resolve());
    parser.on('error', reject);
    parser.on('warn', (_code: string, message: string | Error) => reject(new Error(String(message))));
    parser.end(tar);
  });
  return out;
}
