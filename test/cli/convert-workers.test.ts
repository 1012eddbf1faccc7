/**
 * Blobs big enough to go to worker threads (src/io/blob-pool.ts) come out exactly as they do when
 * every job runs in the main thread (FERRY_WORKERS=0) — and the built CLI does start worker threads
 * for them (it once silently ran everything on the main thread) — and right: each recompressed layer
 * decompresses, with the gzip and zstd tools, to bytes whose sha256sum is the diffID the source's
 * config names (computed by sha256sum when the archive was made). Build first (`npm run build`).
 */
import {execFileSync} from 'node:child_process';
import {mkdirSync, readFileSync, readdirSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ferry} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';
import {makeTmp, removeTmp, sha256} from '../ops/convert-fixtures.js';

const sh = (script: string, ...args: string[]): string => execFileSync('sh', ['-c', script, 'sh', ...args], {maxBuffer: 1 << 26}).toString('utf8');

/** A docker-save-style archive (tar, sha256sum): one layer of random bytes, one of text. */
function makeArchive(dir: string): {file: string; diffIds: string[]} {
  const work = path.join(dir, 'work');
  mkdirSync(work);
  const diffIds: string[] = [];
  const contents = [`head -c ${12 << 20} /dev/urandom > "$1/random.bin"`, `yes 'ferry worker test: a compressible line of text 0123456789' | head -c ${20 << 20} > "$1/text.txt"`];
  contents.forEach((make, i) => {
    const content = path.join(work, `content${i}`);
    mkdirSync(content);
    sh(make, content);
    mkdirSync(path.join(work, `layer${i}`));
    sh('tar --sort=name --owner=0 --group=0 --mtime=@0 -C "$1" -cf "$2" .', content, path.join(work, `layer${i}`, 'layer.tar'));
    diffIds.push(`sha256:${sh('sha256sum "$1"', path.join(work, `layer${i}`, 'layer.tar')).split(' ')[0]}`);
    sh('rm -r "$1"', content);
  });
  const config = JSON.stringify({architecture: 'amd64', os: 'linux', config: {}, rootfs: {type: 'layers', diff_ids: diffIds}});
  const configName = `${sha256(config).slice(7)}.json`;
  writeFileSync(path.join(work, configName), config);
  writeFileSync(path.join(work, 'manifest.json'), JSON.stringify([{Config: configName, RepoTags: ['ferry-test/workers:1'], Layers: ['layer0/layer.tar', 'layer1/layer.tar']}]));
  const file = path.join(dir, 'workers.tar');
  sh('tar --sort=name -C "$1" -cf "$2" .', work, file);
  sh('rm -r "$1"', work);
  return {file, diffIds};
}

describe.skipIf(peerMissing('tar', 'sha256sum', 'gzip', 'zstd'))('convert on worker threads', () => {
  let tmp: string;
  let source: {file: string; diffIds: string[]};
  let probe: string;
  beforeAll(() => {
    tmp = makeTmp('ferry-workers-');
    source = makeArchive(tmp);
    probe = path.join(tmp, 'thread-probe.mjs');
    writeFileSync(probe, "import {appendFileSync} from 'node:fs';\nimport {isMainThread} from 'node:worker_threads';\nif (!isMainThread) appendFileSync(process.env.FERRY_PROBE_FILE, 'worker\\n');\n");
  });
  afterAll(() => removeTmp(tmp));

  for (const compress of ['gzip', 'zstd', 'keep'] as const) {
    it(`--compress ${compress}: the same bytes with and without workers, and layers that decompress to their diffIDs`, () => {
      const outs: string[] = [];
      for (const workers of ['default', '0']) {
        const out = path.join(tmp, `${compress}-${workers}`);
        // A module preloaded in every thread notes each worker thread that starts.
        const started = path.join(tmp, `${compress}-${workers}.threads`);
        writeFileSync(started, '');
        const env = {...process.env, NODE_OPTIONS: `--import=${probe}`, FERRY_PROBE_FILE: started, ...(workers === '0' ? {FERRY_WORKERS: '0'} : {})};
        const r = ferry(['convert', source.file, `oci:${out}`, '--compress', compress], {env});
        expect(r.status, r.stderr).toBe(0);
        const workerThreads = readFileSync(started, 'utf8').split('\n').filter(Boolean).length;
        if (workers === '0') expect(workerThreads).toBe(0);
        else expect(workerThreads).toBeGreaterThan(0);
        outs.push(out);
      }
      const blobs = (dir: string): string[] => readdirSync(path.join(dir, 'blobs', 'sha256')).sort();
      expect(blobs(outs[0]!)).toEqual(blobs(outs[1]!));
      for (const name of blobs(outs[0]!)) expect(readFileSync(path.join(outs[0]!, 'blobs', 'sha256', name)).equals(readFileSync(path.join(outs[1]!, 'blobs', 'sha256', name)))).toBe(true);
      const index = JSON.parse(readFileSync(path.join(outs[0]!, 'index.json'), 'utf8')) as {manifests: Array<{digest: string}>};
      const manifest = JSON.parse(readFileSync(path.join(outs[0]!, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as {layers: Array<{digest: string; mediaType: string}>};
      manifest.layers.forEach((layer, i) => {
        const blob = path.join(outs[0]!, 'blobs', 'sha256', layer.digest.slice(7));
        expect(`sha256:${sh('sha256sum "$1"', blob).split(' ')[0]}`).toBe(layer.digest);
        const plain = compress === 'keep' ? sh('sha256sum < "$1"', blob) : sh(`${compress} -dc < "$1" | sha256sum`, blob);
        expect(`sha256:${plain.split(' ')[0]}`).toBe(source.diffIds[i]);
        if (compress === 'gzip') sh('gzip -t < "$1"', blob);
      });
    });
  }
});
