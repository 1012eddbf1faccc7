/**
 * A large docker-save archive written at test time (never committed): one layer holding one file of
 * `size` bytes of text that compresses like real layer data, so that converting or squashing it with gzip
 * takes seconds — long enough to interrupt. Written in chunks, hashed on the way (no big buffers).
 */
import {createHash, randomBytes} from 'node:crypto';
import {closeSync, openSync, writeSync} from 'node:fs';
import {encodeHeader, padding} from '../../src/tar/write.js';

const CHUNK = 1 << 20;

function textChunk(): Buffer {
  // Base64 of random bytes: gzip gets it to ~76%, at tens of MB/s per core, like real layer data.
  return Buffer.from(randomBytes((CHUNK / 4) * 3).toString('base64'));
}

export function writeBigDockerSave(file: string, size: number): void {
  const chunks = [textChunk(), textChunk(), textChunk()];
  const bodyHeader = encodeHeader({name: 'big.txt', type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 0});
  const layerSize = bodyHeader.length + size + padding(size).length + 1024;
  const id = 'a'.repeat(64);
  const fd = openSync(file, 'wx');
  const diff = createHash('sha256');
  try {
    writeSync(fd, encodeHeader({name: `${id}/`, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0}));
    writeSync(fd, encodeHeader({name: `${id}/layer.tar`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: layerSize, mtime: 0}));
    const layerPart = (bytes: Buffer): void => {
      diff.update(bytes);
      writeSync(fd, bytes);
    };
    layerPart(bodyHeader);
    for (let done = 0, i = 0; done < size; i++) {
      const piece = chunks[i % chunks.length]!.subarray(0, Math.min(CHUNK, size - done));
      layerPart(piece);
      done += piece.length;
    }
    layerPart(padding(size));
    layerPart(Buffer.alloc(1024));
    writeSync(fd, padding(layerSize));
    const diffId = `sha256:${diff.digest('hex')}`;
    const config = Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', config: {}, rootfs: {type: 'layers', diff_ids: [diffId]}, history: [{created: '2024-01-01T00:00:00Z', created_by: 'test'}]}));
    const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
    const manifest = Buffer.from(JSON.stringify([{Config: configName, RepoTags: ['big:1'], Layers: [`${id}/layer.tar`]}]));
    for (const [name, data] of [
      [configName, config],
      ['manifest.json', manifest],
    ] as const) {
      writeSync(fd, encodeHeader({name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0}));
      writeSync(fd, data);
      writeSync(fd, padding(data.length));
    }
    writeSync(fd, Buffer.alloc(1024));
  } finally {
    closeSync(fd);
  }
}
