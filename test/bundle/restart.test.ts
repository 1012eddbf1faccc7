/**
 * Killed and run again: `bundle create` SIGKILLed while it writes a part of a 64 MiB image continues
 * (the parts it had finished are checked, not written again) and ends with the bytes a clean run
 * writes; `bundle apply` SIGKILLed while the registry receives that layer completes on the rerun,
 * and skopeo reads every image with the source's digest. Every process is killed by its own pid.
 */
import {spawn, type ChildProcess} from 'node:child_process';
import {existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {requireBuiltCli} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';
import {startRegistry, type RunningRegistry} from '../helpers/registry.js';
import {buildImages, exec, execOk, ferryOk, pushWithSkopeo, skopeoImage, type BundleJson, type SkopeoImage} from './kit.js';

const BIG = 64 * 1024 * 1024;

/** Starts the CLI and SIGKILLs it (by its pid) as soon as `when()` holds; resolves how it ended. */
async function killWhen(args: string[], when: () => boolean): Promise<{killed: boolean; code: number | null; stderr: string}> {
  const child: ChildProcess = spawn(process.execPath, [requireBuiltCli(), ...args], {stdio: ['ignore', 'ignore', 'pipe'], env: {...process.env, FERRY_DEBUG: ''}});
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const ended = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let killed = false;
  const deadline = Date.now() + 120_000;
  while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
    if (when()) {
      process.kill(child.pid!, 'SIGKILL');
      killed = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const code = await ended;
  return {killed, code, stderr};
}

/** Bytes in the registry's upload sessions (what it has received of blobs not yet committed). */
function uploading(storageRoot: string): number {
  let total = 0;
  const walk = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const full = path.join(dir, n);
      if (n === 'data' && dir.includes('/_uploads/')) total += statSync(full, {throwIfNoEntry: false})?.size ?? 0;
      else if (statSync(full, {throwIfNoEntry: false})?.isDirectory()) walk(full);
    }
  };
  walk(path.join(storageRoot, 'docker/registry/v2/repositories'));
  return total;
}

describe.skipIf(peerMissing('docker-registry', 'skopeo', 'buildah', 'busybox', 'sha256sum'))('bundle create and apply, SIGKILLed and run again', () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'ferry-bundle-restart-'));
  let source: RunningRegistry;
  let target: RunningRegistry;
  const refs: Record<string, string> = {};
  const peer: Record<string, SkopeoImage> = {};
  let createArgs: string[] = [];
  const bundle = path.join(work, 'bundle');

  beforeAll(async () => {
    let built;
    [source, target, built] = await Promise.all([
      startRegistry(),
      startRegistry(),
      buildImages(work, {
        a: {name: 'test/app-a:1', layers: [{'etc/a.txt': 'a\n'}]},
        b: {name: 'test/app-b:1', layers: [{'etc/b.txt': 'b\n'}]},
        big: {name: 'test/big:1', layers: [{'data/big.bin': {random: BIG}}]},
      }),
    ]);
    for (const [key, tag] of [['a', 'test/app-a:1'], ['b', 'test/app-b:1'], ['big', 'test/big:1']] as const) {
      refs[key] = `${source.host}/${tag}`;
      await pushWithSkopeo(built.archives[key]!, refs[key]);
      peer[key] = await skopeoImage(`docker://${refs[key]}`);
    }
    // a and b fill part-0001, big's base goes loose into part-0002, its 64 MiB layer makes part-0003.
    createArgs = ['bundle', 'create', refs.a!, refs.b!, refs.big!, '--max-part-size', String(4 * 1024 * 1024)];
  }, 240_000);

  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
    rmSync(work, {recursive: true, force: true});
  });

  it('create killed while part-0003 is written: the rerun resumes parts 1 and 2 untouched and ends byte-identical to a clean run', async () => {
    // A temp file of part-0003 holding some bytes: the part is being written.
    const writing = (): boolean => {
      if (!existsSync(bundle)) return false;
      return readdirSync(bundle).some((n) => n.startsWith('.part-0003.tar.ferry-') && !n.endsWith('.ferry-pull') && (statSync(path.join(bundle, n), {throwIfNoEntry: false})?.size ?? 0) > 1024 * 1024);
    };
    let run = await killWhen([...createArgs, '-o', bundle], writing);
    // The window is a fraction of a second; on a loaded machine try again from scratch.
    for (let i = 0; i < 3 && !run.killed; i++) {
      rmSync(bundle, {recursive: true, force: true});
      run = await killWhen([...createArgs, '-o', bundle], writing);
    }
    expect(run.killed, run.stderr).toBe(true);
    expect(existsSync(path.join(bundle, 'part-0001.tar')) && existsSync(path.join(bundle, 'part-0002.tar'))).toBe(true);
    expect(existsSync(path.join(bundle, 'part-0003.tar'))).toBe(false);
    expect(existsSync(path.join(bundle, 'bundle.json'))).toBe(false);
    const before = ['part-0001.tar', 'part-0002.tar'].map((f) => statSync(path.join(bundle, f)));
    const rerun = await ferryOk([...createArgs, '-o', bundle, '--json']);
    const summary = JSON.parse(rerun.stdout) as {resumed: string[]};
    expect(summary.resumed).toEqual(['part-0001.tar', 'part-0002.tar']);
    for (const [i, f] of ['part-0001.tar', 'part-0002.tar'].entries()) {
      const now = statSync(path.join(bundle, f));
      expect([now.ino, now.mtimeMs]).toEqual([before[i]!.ino, before[i]!.mtimeMs]);
    }
    // Nothing of the killed run is left, and the result is what a run never interrupted writes.
    const clean = path.join(work, 'clean');
    await ferryOk([...createArgs, '-o', clean]);
    expect(readdirSync(bundle).sort()).toEqual(readdirSync(clean).sort());
    for (const f of readdirSync(clean)) expect(readFileSync(path.join(bundle, f)).equals(readFileSync(path.join(clean, f))), f).toBe(true);
    expect((await exec('sha256sum', ['-c', 'SHA256SUMS'], {cwd: bundle})).code).toBe(0);
    const manifest = JSON.parse(readFileSync(path.join(bundle, 'bundle.json'), 'utf8')) as BundleJson;
    expect(manifest.images.map((m) => m.digest)).toEqual([peer.a!.digest, peer.b!.digest, peer.big!.digest]);
    expect(manifest.images[2]!.parts).toEqual(['part-0002.tar', 'part-0003.tar']);
  });

  it('apply killed while the registry receives the 64 MiB layer: the rerun completes, and skopeo reads every image with the source\'s digest', async () => {
    expect(existsSync(path.join(bundle, 'bundle.json'))).toBe(true);
    const dest = `docker://${target.host}/site`;
    const midLayer = (): boolean => uploading(target.storageRoot) > 8 * 1024 * 1024;
    let run = await killWhen(['bundle', 'apply', bundle, dest], midLayer);
    // Missed the window (the whole apply finished first, on a loaded machine): empty the registry and try again.
    for (let i = 0; i < 3 && !run.killed; i++) {
      rmSync(path.join(target.storageRoot, 'docker'), {recursive: true, force: true});
      await target.restart();
      run = await killWhen(['bundle', 'apply', bundle, dest], midLayer);
    }
    expect(run.killed, run.stderr).toBe(true);
    // Killed mid-layer: big is not there yet.
    expect((await exec('skopeo', ['inspect', '--tls-verify=false', `${dest}/test/big:1`])).code).not.toBe(0);
    await ferryOk(['bundle', 'apply', bundle, dest]);
    for (const [key, tag] of [['a', 'test/app-a:1'], ['b', 'test/app-b:1'], ['big', 'test/big:1']] as const) {
      const there = await skopeoImage(`${dest}/${tag}`);
      expect(there.digest).toBe(peer[key]!.digest);
      expect(there.raw.equals(peer[key]!.raw)).toBe(true);
    }
    // skopeo fetches every blob of the big image and checks each against its digest.
    await execOk('skopeo', ['copy', '-q', '--src-tls-verify=false', `${dest}/test/big:1`, `dir:${path.join(work, 'big-dir')}`]);
    expect(statSync(path.join(work, 'big-dir', peer.big!.manifest.layers[1]!.digest.slice('sha256:'.length))).size).toBe(peer.big!.manifest.layers[1]!.size);
  });
});
