/**
 * Restart-safe transfers (no peer does this): `ferry pull` and `ferry push` SIGKILLed (by pid) halfway
 * through a big blob, then run again with the same command line. The pull continues its `.part`
 * beside the destination with Range (judged by the real docker-registry 2.8.2's access log, skopeo's
 * digest and hashing the archive here); the push asks the registry where the journaled session stands
 * and PATCHes the rest (judged by the fake's request log: the rerun's first chunk starts at the
 * committed offset). A rerun with nothing to do moves no blob bytes; a `.part` whose bytes were changed
 * is found out and fetched again, and nothing wrong lands. Needs `npm run build`.
 */
import {execAsync, type ExecResult} from '../helpers/exec.js';
import {closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {startFakeRegistry, type FakeRegistry, type RequestRecord} from '../helpers/fake-registry.js';
import {peerMissing} from '../helpers/peers.js';
import {startRegistry, type RunningRegistry} from '../helpers/registry.js';
import {buildImage, listFiles, makeSandbox, MiB, readPulled, runFerry, startFerry, TMP_PARENT, waitUntil, type BuiltImage, type FerryRun} from './fault-kit.js';
import type {TransferSummary} from '../../src/ops/write-archive.js';

/** Big enough to be caught halfway by a 2 ms poll on loopback, small enough for 2 cores. */
const BIG = 128 * MiB;


const transferOf = (run: FerryRun): TransferSummary => (JSON.parse(run.stdout) as {transfer: TransferSummary}).transfer;

/** A peer run without blocking the event loop (the fake lives in this process). */
const exec = (cmd: string, args: string[]): Promise<ExecResult> => execAsync(cmd, args, {env: {...process.env, HOME: work}, timeoutMs: 90_000});

let work: string;

beforeAll(() => {
  work = mkdtempSync(path.join(TMP_PARENT, 'ferry-reg-restart-'));
});

afterAll(() => {
  rmSync(work, {recursive: true, force: true});
});

const partOf = (dest: string, digest: string): string => path.join(path.dirname(dest), `.${path.basename(dest)}.ferry-pull`, `sha256-${digest.slice(7)}.part`);
const wholeOf = (dest: string, digest: string): string => partOf(dest, digest).slice(0, -'.part'.length);
const sizeIf = (file: string): number => {
  try {
    return statSync(file).size;
  } catch {
    return -1;
  }
};

/** Starts a pull, SIGKILLs it (by pid) once `ready` holds; fails the test if the pull ended first. */
async function killPullWhen(args: string[], env: NodeJS.ProcessEnv, ready: () => boolean): Promise<void> {
  const running = startFerry(args, {env});
  const caught = await waitUntil(running.child, ready, 60_000, 2);
  if (caught) process.kill(running.pid, 'SIGKILL');
  const ended = await running.done;
  expect(caught, `the pull ended before it could be killed: ${ended.stderr}`).toBe(true);
  expect(ended.signal).toBe('SIGKILL');
}

describe.skipIf(peerMissing('docker-registry', 'skopeo'))('pull killed halfway, against docker-registry 2.8.2', () => {
  let reg: RunningRegistry;
  let img: BuiltImage;
  let ref: string;
  let skopeoDigest: string;

  beforeAll(async () => {
    img = buildImage(path.join(work, 'pull-image'), [64 * 1024, BIG]);
    reg = await startRegistry();
    ref = `${reg.host}/restart/big:${img.tag}`;
    // skopeo pushes the layout as it is (--preserve-digests); what it then reports is the judge.
    const copied = await exec('skopeo', ['copy', '-q', '--preserve-digests', '--dest-tls-verify=false', `oci:${img.layout}:${img.tag}`, `docker://${ref}`]);
    expect(copied.code, copied.stderr).toBe(0);
    const inspected = await exec('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`]);
    expect(inspected.code, inspected.stderr).toBe(0);
    skopeoDigest = (JSON.parse(inspected.stdout) as {Digest: string}).Digest;
    expect(skopeoDigest).toBe(img.manifestDigest);
  }, 120_000);

  afterAll(async () => {
    await reg?.stop();
  });

  const layer = (): BuiltImage['layers'][number] => img.layers[1]!;

  /**
   * Where the access log stands once the registry has logged what the killed run asked for (a GET cut
   * by the kill is logged when the registry notices, some time after): the size once it stops growing.
   */
  async function settledLogSize(): Promise<number> {
    let size = statSync(reg.logFile).size;
    for (let quiet = 0, i = 0; quiet < 3 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const now = statSync(reg.logFile).size;
      quiet = now === size ? quiet + 1 : 0;
      size = now;
    }
    return size;
  }

  /** Access-log lines (`"GET /v2/… HTTP/1.1" STATUS BYTES`) written since `offset`, for one blob. */
  async function servedSince(offset: number, digest: string): Promise<Array<{status: number; bytes: number}>> {
    // The access log line is written after the response: give it a moment.
    await new Promise((r) => setTimeout(r, 200));
    const text = readFileSync(reg.logFile).subarray(offset).toString('utf8');
    const re = new RegExp(`"GET /v2/restart/big/blobs/${digest} HTTP/1\\.1" (\\d{3}) (\\d+)`, 'g');
    return [...text.matchAll(re)].map((m) => ({status: Number(m[1]), bytes: Number(m[2])}));
  }

  /** The archive holds skopeo's digest, the bytes hash right here, ferry verify agrees, and nothing is left beside it. */
  async function expectWhole(dest: string, env: NodeJS.ProcessEnv): Promise<void> {
    const held = readPulled(dest, [img.configDigest, ...img.layers.map((l) => l.digest)]);
    expect(held.manifestDigest).toBe(skopeoDigest);
    expect(held.manifestBytesDigest).toBe(skopeoDigest);
    expect(held.blobDigests).toEqual([img.configDigest, ...img.layers.map((l) => l.digest)]);
    const verified = await runFerry(['verify', dest], {env});
    expect(verified.status, verified.stdout + verified.stderr).toBe(0);
    expect(listFiles(path.dirname(dest))).toEqual([path.basename(dest)]);
  }

  it('(a) SIGKILL once half the blob is in its .part: the rerun fetches at most 55% of it and the archive holds the digest skopeo reports', async () => {
    const box = makeSandbox(work, 'pull-half');
    const dest = path.join(box.out, 'big.tar');
    const args = ['pull', ref, dest, '--json'];
    await killPullWhen(args, box.env, () => sizeIf(partOf(dest, layer().digest)) >= layer().size / 2);
    const kept = sizeIf(partOf(dest, layer().digest));
    expect(kept).toBeGreaterThanOrEqual(layer().size / 2);
    expect(kept).toBeLessThan(layer().size);
    expect(existsSync(dest)).toBe(false);

    // The small layer was whole before the kill: found beside DEST, not fetched again.
    const small = img.layers[0]!;
    expect(sizeIf(wholeOf(dest, small.digest))).toBe(small.size);

    const logOffset = await settledLogSize();
    const rerun = await runFerry(args, {env: box.env});
    expect(rerun.status, rerun.stderr).toBe(0);
    const t = transferOf(rerun);
    // What the rerun moved over the wire: the rest of the big blob, not the whole.
    expect(t.fetchedBytes).toBe(layer().size - kept);
    expect(t.fetchedBytes).toBeLessThanOrEqual(0.55 * layer().size);
    expect(t.reusedBytes).toBe(kept + small.size);
    // The registry served the rest of the blob as a 206 of exactly that many bytes.
    const served = await servedSince(logOffset, layer().digest);
    expect(served).toEqual([{status: 206, bytes: layer().size - kept}]);
    await expectWhole(dest, box.env);
  });

  it('(c) a rerun that finds the blob whole beside DEST fetches none of its bytes', async () => {
    const box = makeSandbox(work, 'pull-whole');
    const dest = path.join(box.out, 'big.tar');
    const args = ['pull', ref, dest, '--json'];
    // Killed after both blobs were fetched and checked, while the archive is being written.
    await killPullWhen(args, box.env, () => sizeIf(wholeOf(dest, layer().digest)) === layer().size && sizeIf(wholeOf(dest, img.layers[0]!.digest)) === img.layers[0]!.size);
    expect(existsSync(dest)).toBe(false);
    const logOffset = await settledLogSize();
    const rerun = await runFerry(args, {env: box.env});
    expect(rerun.status, rerun.stderr).toBe(0);
    const t = transferOf(rerun);
    expect(t.fetchedBytes).toBe(0);
    expect(t.reusedBytes).toBe(layer().size + img.layers[0]!.size);
    expect(await servedSince(logOffset, layer().digest)).toEqual([]);
    expect(await servedSince(logOffset, img.layers[0]!.digest)).toEqual([]);
    await expectWhole(dest, box.env);
  });

  it('(d) a .part whose bytes were changed is found out at the end: the blob is fetched again and nothing wrong lands', async () => {
    const box = makeSandbox(work, 'pull-corrupt');
    const dest = path.join(box.out, 'big.tar');
    const args = ['pull', ref, dest, '--json'];
    const part = partOf(dest, layer().digest);
    await killPullWhen(args, box.env, () => sizeIf(part) >= layer().size / 2);
    // Flip 16 bytes well inside what was fetched: the part keeps its length, only a hash can tell.
    const fd = openSync(part, 'r+');
    try {
      const at = 4096;
      const bytes = Buffer.alloc(16);
      readSync(fd, bytes, 0, 16, at);
      for (let i = 0; i < 16; i++) bytes[i] = bytes[i]! ^ 0xff;
      writeSync(fd, bytes, 0, 16, at);
    } finally {
      closeSync(fd);
    }
    const kept = sizeIf(part);
    const logOffset = await settledLogSize();
    const rerun = await runFerry(args, {env: box.env});
    expect(rerun.status, rerun.stderr).toBe(0);
    // First the rest (206), then, the whole blob failing its digest, the blob again from 0 (200).
    const served = await servedSince(logOffset, layer().digest);
    expect(served).toEqual([
      {status: 206, bytes: layer().size - kept},
      {status: 200, bytes: layer().size},
    ]);
    expect(transferOf(rerun).fetchedBytes).toBeGreaterThanOrEqual(layer().size);
    await expectWhole(dest, box.env);
  });
});

describe('push killed halfway, against the fake registry', () => {
  let fake: FakeRegistry;
  let img: BuiltImage;
  const PUSH_BIG = 64 * MiB;
  const CHUNK = 8 * MiB;

  beforeAll(async () => {
    img = buildImage(path.join(work, 'push-image'), [64 * 1024, PUSH_BIG]);
    fake = await startFakeRegistry();
  });

  afterAll(async () => {
    await fake?.stop();
  });

  const sessionOf = (p: string): string => p.split('?')[0]!.split('/').pop()!;
  /** Bytes each upload session received so far (PATCH and PUT bodies). */
  const received = (): Map<string, number> => {
    const by = new Map<string, number>();
    for (const r of fake.log) if ((r.method === 'PATCH' || r.method === 'PUT') && r.path.includes('/blobs/uploads/')) by.set(sessionOf(r.path), (by.get(sessionOf(r.path)) ?? 0) + r.requestBytes);
    return by;
  };
  const start = (r: RequestRecord): number => Number(/^(\d+)-/.exec(r.contentRange ?? '')?.[1] ?? NaN);

  it('(b) SIGKILL halfway through a chunked upload: the rerun asks where the session stands and sends only the rest', async () => {
    const box = makeSandbox(work, 'push-half');
    const repo = 'restart/pushed';
    const args = ['push', `oci:${img.layout}`, `${fake.host}/${repo}:${img.tag}`, '--json', '--chunk-size', `${CHUNK}`];
    const running = startFerry(args, {env: box.env});
    const caught = await waitUntil(running.child, () => Math.max(0, ...received().values()) >= PUSH_BIG / 2, 60_000, 1);
    if (caught) process.kill(running.pid, 'SIGKILL');
    const ended = await running.done;
    expect(caught, `the push ended before it could be killed: ${ended.stderr}`).toBe(true);
    expect(ended.signal).toBe('SIGKILL');
    // Let the fake take in what was already on its way, then read where the big blob's session stands.
    await new Promise((r) => setTimeout(r, 300));
    const [session, committed] = [...received().entries()].sort((a, b) => b[1] - a[1])[0]!;
    expect(committed).toBeGreaterThanOrEqual(PUSH_BIG / 2);
    expect(committed).toBeLessThan(PUSH_BIG);
    // The journal remembers the session, in FERRY_STATE_DIR and nowhere else.
    const journal = listFiles(path.join(box.state, 'push')).filter((f) => f.endsWith('.json'));
    expect(journal).toHaveLength(1);
    expect(box.strays(), 'written outside FERRY_STATE_DIR').toEqual([]);
    // As a run killed between writing the journal's new copy and renaming it would leave it.
    writeFileSync(path.join(box.state, 'push', `${journal[0]}.4242`), '{"location":"http://127.0.0.1:1/v2/');

    fake.clearLog();
    const rerun = await runFerry(args, {env: box.env});
    expect(rerun.status, rerun.stderr).toBe(0);
    const ofSession = fake.log.filter((r) => sessionOf(r.path) === session);
    // Asked the registry (GET on the journaled session), which said how much it has…
    expect(ofSession[0]!.method).toBe('GET');
    expect(ofSession[0]!.uploadRange).toBe(`0-${committed - 1}`);
    // …then PATCHed from there: a non-zero start, and no more than the rest.
    const patches = ofSession.filter((r) => r.method === 'PATCH');
    expect(start(patches[0]!)).toBe(committed);
    const resent = ofSession.filter((r) => r.method === 'PATCH' || r.method === 'PUT').reduce((n, r) => n + r.requestBytes, 0);
    expect(resent).toBe(img.layers[1]!.size - committed);
    expect(resent).toBeLessThanOrEqual(0.55 * img.layers[1]!.size);
    expect(fake.getManifest(repo, img.tag)?.digest).toBe(img.manifestDigest);
    expect(fake.getManifest(repo, img.tag)?.body.equals(img.manifest)).toBe(true);
    expect(listFiles(path.join(box.state, 'push'))).toEqual([]);
    expect(box.strays()).toEqual([]);
  });

  it('(c) a push that finds every blob there moves no blob bytes: HEAD only', async () => {
    const box = makeSandbox(work, 'push-again');
    const repo = 'restart/twice';
    const first = await runFerry(['push', `oci:${img.layout}`, `${fake.host}/${repo}:${img.tag}`, '--json'], {env: box.env});
    expect(first.status, first.stderr).toBe(0);
    fake.clearLog();
    const again = await runFerry(['push', `oci:${img.layout}`, `${fake.host}/${repo}:${img.tag}`, '--json'], {env: box.env});
    expect(again.status, again.stderr).toBe(0);
    const blobTraffic = fake.log.filter((r) => r.path.includes('/blobs/'));
    expect(blobTraffic.map((r) => `${r.method} ${r.status}`)).toEqual(new Array(3).fill('HEAD 200'));
    expect(blobTraffic.reduce((n, r) => n + r.requestBytes + r.responseBytes, 0)).toBe(0);
    const t = transferOf(again);
    expect(t.uploadedBytes).toBe(0);
    expect(t.uploaded).toBe(0);
    expect(t.skipped).toBe(3);
    expect(fake.getManifest(repo, img.tag)?.digest).toBe(img.manifestDigest);
  });
});

describe.skipIf(peerMissing('docker-registry', 'skopeo'))('push killed halfway, against docker-registry 2.8.2', () => {
  it('the rerun completes with the source digest, whatever the registry kept of the cut chunk', async () => {
    const img = buildImage(path.join(work, 'push-real-image'), [64 * MiB]);
    const reg = await startRegistry();
    try {
      const box = makeSandbox(work, 'push-real');
      const ref = `${reg.host}/restart/real:${img.tag}`;
      const args = ['push', `oci:${img.layout}`, ref, '--json', '--chunk-size', `${4 * MiB}`];
      const running = startFerry(args, {env: box.env});
      // Killed once the journal says a few chunks are in (it is written after each accepted chunk).
      const journalOffset = (): number => {
        for (const f of listFiles(path.join(box.state, 'push'))) {
          try {
            return (JSON.parse(readFileSync(path.join(box.state, 'push', f), 'utf8')) as {offset: number}).offset;
          } catch {
            // being renamed into place
          }
        }
        return 0;
      };
      // Killed a few ms after the journal says half is in: most likely in the middle of the next chunk,
      // which 2.8.2 keeps in part and then refuses to continue (docs/registry-faults.md).
      const caught = (await waitUntil(running.child, () => journalOffset() >= img.layers[0]!.size / 2, 60_000, 1)) && (await new Promise((r) => setTimeout(r, 10)), running.child.exitCode === null);
      if (caught) process.kill(running.pid, 'SIGKILL');
      const ended = await running.done;
      expect(caught, `the push ended before it could be killed: ${ended.stderr}`).toBe(true);
      const rerun = await runFerry(args, {env: box.env});
      expect(rerun.status, rerun.stderr).toBe(0);
      // Continued, or (the registry having refused the cut session) started over: never more than once.
      expect(transferOf(rerun).uploadedBytes).toBeLessThanOrEqual(img.layers[0]!.size + img.config.length);
      const inspected = await exec('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`]);
      expect(inspected.code, inspected.stderr).toBe(0);
      expect((JSON.parse(inspected.stdout) as {Digest: string}).Digest).toBe(img.manifestDigest);
      expect(listFiles(path.join(box.state, 'push'))).toEqual([]);
    } finally {
      await reg.stop();
    }
  });
});
