// Generates the benchmark's images as legacy docker-archives (what `docker save` 20.10 writes), with
// ferry's own tar encoder, streaming: nothing is held in memory and nothing is committed.
import {createHash, randomFillSync} from 'node:crypto';
import {closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, writeSync} from 'node:fs';
import path from 'node:path';
import {encodeHeader, END_OF_ARCHIVE, padding} from '../dist/src/tar/write.js';

/** A deterministic pseudo-random generator (xorshift) for names and sizes; data itself comes from randomFillSync. */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

const TEXT = Buffer.from('ferry benchmark line: the quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuvwxyz\n'.repeat(1 << 12));

/** Writes into a file descriptor while hashing; `hole(n)` skips n zero bytes (sparse, costs no disk). */
class HashingWriter {
  constructor(fd, position) {
    this.fd = fd;
    this.position = position;
    this.start = position;
    this.hash = createHash('sha256');
  }
  write(buf) {
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off, this.position + off);
    this.position += buf.length;
    this.hash.update(buf);
  }
  zeros(n) {
    // Hash the zeros without writing them: the file is extended with a hole later.
    const chunk = Buffer.alloc(Math.min(n, 1 << 20));
    let left = n;
    while (left > 0) {
      const step = Math.min(left, chunk.length);
      this.hash.update(step === chunk.length ? chunk : chunk.subarray(0, step));
      left -= step;
    }
    this.position += n;
  }
  get size() {
    return this.position - this.start;
  }
}

const FILE_CHUNK = 1 << 20;

function writeFileEntry(w, name, size, kind, mtime) {
  w.write(encodeHeader({name, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime}));
  if (kind === 'zeros') w.zeros(size);
  else {
    const buf = Buffer.allocUnsafe(Math.min(size, FILE_CHUNK));
    let left = size;
    while (left > 0) {
      const step = Math.min(left, buf.length);
      const view = buf.subarray(0, step);
      if (kind === 'random') randomFillSync(view);
      else for (let i = 0; i < step; i += TEXT.length) TEXT.copy(view, i, 0, Math.min(TEXT.length, step - i));
      w.write(view);
      left -= step;
    }
  }
  const pad = padding(size);
  if (pad.length > 0) {
    if (kind === 'zeros') w.zeros(pad.length);
    else w.write(pad);
  }
}

/** One layer's entries: {dirs: [..], files: [{name, size, kind}], whiteouts: [..]} → tar bytes written at w. */
function writeLayer(w, layer, mtime) {
  for (const dir of layer.dirs) w.write(encodeHeader({name: `${dir}/`, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime}));
  for (const wh of layer.whiteouts) w.write(encodeHeader({name: wh, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime}));
  for (const f of layer.files) writeFileEntry(w, f.name, f.size, f.kind, mtime);
  w.write(END_OF_ARCHIVE);
}

/**
 * The layer plans. medium: ~targetBytes over 8 layers of many small text files and some big random
 * ones, later layers overwriting and deleting earlier files. large: 5 layers, 4 of random data and one
 * highly compressible. huge: one layer of zeros (sparse on disk) for the flat-memory check.
 */
export function planImage(kind, targetBytes, seed = 7) {
  const r = rng(seed);
  const layers = [];
  if (kind === 'medium') {
    const perLayer = targetBytes / 8;
    for (let l = 0; l < 8; l++) {
      const layer = {dirs: [], files: [], whiteouts: []};
      const dir = `data/l${l}`;
      layer.dirs.push('data', dir);
      let bytes = 0;
      // big files: ~40% of the layer
      for (let i = 0; bytes < perLayer * 0.4; i++) {
        const size = Math.floor(4e6 + r() * 12e6);
        layer.files.push({name: `${dir}/big-${i}.bin`, size, kind: 'random'});
        bytes += size;
      }
      for (let i = 0; bytes < perLayer; i++) {
        const size = Math.floor(200 + r() * 16000);
        layer.files.push({name: `${dir}/small/${Math.floor(i / 500)}/f${i}.txt`, size, kind: 'text'});
        bytes += size;
      }
      const smallDirs = new Set(layer.files.filter((f) => f.name.includes('/small/')).map((f) => path.posix.dirname(f.name)));
      layer.dirs.push(`${dir}/small`, ...[...smallDirs].sort());
      if (l >= 2) {
        // overwrite a big file of the previous layer, delete a directory of the one before it
        const prev = layers[l - 1].files.find((f) => f.name.includes('big-'));
        if (prev) layer.files.push({name: prev.name, size: prev.size, kind: 'random'});
        layer.whiteouts.push(`data/l${l - 2}/small/.wh.0`);
      }
      layers.push(layer);
    }
  } else if (kind === 'large') {
    const perLayer = targetBytes / 5;
    for (let l = 0; l < 5; l++) {
      const layer = {dirs: ['data', `data/l${l}`], files: [], whiteouts: []};
      const compressible = l === 2;
      let bytes = 0;
      for (let i = 0; bytes < perLayer; i++) {
        const size = Math.floor(Math.min(perLayer - bytes, 30e6 + r() * 70e6)) || 1;
        layer.files.push({name: `data/l${l}/${compressible ? 'text' : 'blob'}-${i}.bin`, size, kind: compressible ? 'text' : 'random'});
        bytes += size;
      }
      layers.push(layer);
    }
  } else {
    layers.push({dirs: ['data'], files: [{name: 'data/zeros.bin', size: targetBytes, kind: 'zeros'}], whiteouts: []});
  }
  return layers;
}

/**
 * Writes a legacy docker-archive (manifest.json, repositories, <id>/layer.tar, <hex>.json) directly:
 * layer tars are written inside the outer tar at their final offsets, so nothing is staged.
 */
export function writeDockerArchive(file, name, layers) {
  mkdirSync(path.dirname(file), {recursive: true});
  const fd = openSync(file, 'w');
  const mtime = 1700000000;
  let pos = 0;
  const put = (buf) => {
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off, pos + off);
    pos += buf.length;
  };
  const diffIds = [];
  const layerPaths = [];
  let parent = '';
  for (const [i, layer] of layers.entries()) {
    const id = createHash('sha256').update(`${name} layer ${i} ${parent}`).digest('hex');
    parent = id;
    put(encodeHeader({name: `${id}/`, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime}));
    put(encodeHeader({name: `${id}/VERSION`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, mtime}));
    put(Buffer.concat([Buffer.from('1.0'), padding(3)]));
    // Reserve the header block; the size is known once the layer is written.
    const headerPos = pos;
    pos += 512;
    const w = new HashingWriter(fd, pos);
    writeLayer(w, layer, mtime);
    const size = w.size;
    const header = encodeHeader({name: `${id}/layer.tar`, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime});
    writeSync(fd, header, 0, header.length, headerPos);
    pos = w.position;
    if (padding(size).length) put(padding(size));
    diffIds.push(`sha256:${w.hash.digest('hex')}`);
    layerPaths.push(`${id}/layer.tar`);
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: new Date(mtime * 1000).toISOString(),
      config: {Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh']},
      rootfs: {type: 'layers', diff_ids: diffIds},
      history: layers.map((_, i) => ({created: new Date(mtime * 1000).toISOString(), created_by: `bench layer ${i}`})),
    }),
  );
  const configHex = createHash('sha256').update(config).digest('hex');
  const members = [
    [`${configHex}.json`, config],
    ['manifest.json', Buffer.from(`${JSON.stringify([{Config: `${configHex}.json`, RepoTags: [name], Layers: layerPaths}])}\n`)],
    ['repositories', Buffer.from(JSON.stringify({[name.split(':')[0]]: {[name.split(':')[1]]: parent}}))],
  ];
  for (const [member, data] of members) {
    put(encodeHeader({name: member, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime}));
    put(Buffer.concat([data, padding(data.length)]));
  }
  put(END_OF_ARCHIVE);
  // Holes left by zero-filled layers become real (sparse) file length.
  if (fstatSync(fd).size < pos) ftruncateSync(fd, pos);
  closeSync(fd);
  return {file, bytes: pos, configDigest: `sha256:${configHex}`, diffIds};
}
