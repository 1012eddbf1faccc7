/**
 * Registry faults, against the in-process fake (test/helpers/fake-registry.ts): rate limits with
 * Retry-After, 503 bursts, connections cut mid-body in both directions, a body cap below the layer
 * size (a 100 MB-capped proxy must not stop a 300 MB layer: here 1 MiB and 5 MiB), OCI-Chunk-Min-Length,
 * tokens that expire mid-transfer, and the digest the registry computes at the end. Every pull is
 * judged by hashing what the archive holds; every push by the bytes the fake stored. Digests come
 * from the image built here, never from ferry. Last, an upload cut on its way to the real
 * docker-registry 2.8.2 (which then refuses the session), judged by skopeo. Needs `npm run build`.
 */
import {createHash} from 'node:crypto';
import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest';
import {spawn} from 'node:child_process';
import {startFakeRegistry, type FakeRegistry, type RequestRecord} from '../helpers/fake-registry.js';
import {RegistryClient} from '../../src/transports/docker/client.js';
import {peerMissing} from '../helpers/peers.js';
import {startRegistry} from '../helpers/registry.js';
import {buildImage, listFiles, makeSandbox, MiB, oneErrorLine, readPulled, runFerry, seedFake, sha256, stampLog, startFront, TMP_PARENT, type BuiltImage, type FerryRun, type Sandbox} from './fault-kit.js';

const REPO = 'faults/app';

let work: string;
let fake: FakeRegistry;
let img: BuiltImage;
let times: Map<RequestRecord, number>;
let pushes = 0;

beforeAll(async () => {
  work = mkdtempSync(path.join(TMP_PARENT, 'ferry-reg-faults-'));
  img = buildImage(path.join(work, 'image'), [1 * MiB, 5 * MiB]);
  fake = await startFakeRegistry();
  times = stampLog(fake);
  await seedFake(fake, REPO, img);
});

afterAll(async () => {
  await fake?.stop();
  rmSync(work, {recursive: true, force: true});
});

beforeEach(() => {
  fake.reset();
  fake.setAuth(undefined);
  fake.clearLog();
});

const big = (): BuiltImage['layers'][number] => img.layers[1]!;
const blobRequests = (digest: string, method = 'GET'): RequestRecord[] => fake.requests({method, path: new RegExp(`/blobs/${digest}$`)});

async function pull(name: string, extra: string[] = []): Promise<{run: FerryRun; dest: string; box: Sandbox}> {
  const box = makeSandbox(work, name);
  const dest = path.join(box.out, 'app.tar');
  const run = await runFerry(['pull', `${fake.host}/${REPO}:${img.tag}`, dest, '--json', ...extra], {env: box.env});
  return {run, dest, box};
}

/** The archive holds the image byte for byte (hashed here) and ferry verify agrees; nothing is left beside it or outside it. */
async function expectPulled(r: {run: FerryRun; dest: string; box: Sandbox}): Promise<void> {
  expect(r.run.status, r.run.stderr).toBe(0);
  const held = readPulled(r.dest, [img.configDigest, ...img.layers.map((l) => l.digest)]);
  expect(held.manifestDigest).toBe(img.manifestDigest);
  expect(held.manifestBytesDigest).toBe(img.manifestDigest);
  expect(held.blobDigests).toEqual([img.configDigest, ...img.layers.map((l) => l.digest)]);
  expect(r.box.outputs()).toEqual(['app.tar']);
  expect(r.box.strays()).toEqual([]);
  const verified = await runFerry(['verify', r.dest], {env: r.box.env});
  expect(verified.status, verified.stdout + verified.stderr).toBe(0);
}

async function push(name: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<{run: FerryRun; repo: string; box: Sandbox}> {
  const box = makeSandbox(work, name);
  const repo = `faults/push-${++pushes}`;
  const run = await runFerry(['push', `oci:${img.layout}`, `${fake.host}/${repo}:${img.tag}`, '--json', ...extra], {env: {...box.env, ...env}});
  return {run, repo, box};
}

/** The fake holds the manifest byte for byte under the tag and every blob, each hashing to its digest. */
function expectPushed(r: {run: FerryRun; repo: string; box: Sandbox}): void {
  expect(r.run.status, r.run.stderr).toBe(0);
  const stored = fake.getManifest(r.repo, img.tag);
  expect(stored?.digest).toBe(img.manifestDigest);
  expect(stored?.body.equals(img.manifest)).toBe(true);
  for (const digest of [img.configDigest, ...img.layers.map((l) => l.digest)]) {
    expect(fake.hasBlob(r.repo, digest)).toBe(true);
    expect(sha256(readFileSync(fake.blobPath(digest)))).toBe(digest);
  }
  // The journal is gone once the push is done, and nothing was written anywhere else.
  expect(r.box.strays()).toEqual([]);
  expect(listJournal(r.box)).toEqual([]);
}

/** Files in the push journal (FERRY_STATE_DIR/push). */
function listJournal(box: Sandbox): string[] {
  return listFiles(path.join(box.state, 'push'));
}

/** The upload requests (PATCH and PUT with a body) of one blob's sessions, in order. */
function uploadsOf(records: RequestRecord[], sessions: Set<string>): RequestRecord[] {
  return records.filter((r) => (r.method === 'PATCH' || r.method === 'PUT') && sessions.has(sessionOf(r.path)));
}
const sessionOf = (p: string): string => p.split('?')[0]!.split('/').pop()!;

/** Sessions (upload UUIDs) whose final PUT named `digest`, plus the ones that never finished (cut, refused). */
function sessionsFor(digest: string): Set<string> {
  const done = fake.requests({method: 'PUT', path: new RegExp(`digest=${encodeURIComponent(digest)}`)}).map((r) => sessionOf(r.path));
  return new Set(done);
}

const contentStart = (r: RequestRecord): number => Number(/^(?:bytes )?(\d+)-/.exec(r.contentRange ?? '')?.[1] ?? NaN);

describe('rate limits and outages', () => {
  it('429 with Retry-After: ferry waits at least that long before asking again, then pulls the image', async () => {
    fake.set({tooManyRequests: {count: 2, retryAfter: 2, path: /\/manifests\//}});
    const r = await pull('429', ['--retry', '3']);
    await expectPulled(r);
    const manifestGets = fake.requests({method: 'GET', path: /\/manifests\//});
    expect(manifestGets.map((m) => m.status)).toEqual([429, 429, 200]);
    // Retry-After: 2 means two seconds between each 429 and the next try (backoff alone waits ~0.25 s).
    for (let i = 1; i < manifestGets.length; i++) expect(times.get(manifestGets[i]!)! - times.get(manifestGets[i - 1]!)!).toBeGreaterThanOrEqual(1950);
    expect((JSON.parse(r.run.stdout) as {transfer: {retries: number}}).transfer.retries).toBeGreaterThanOrEqual(2);
  });

  it('429 with an HTTP-date Retry-After on a blob upload: the push asks again only once that date has come', async () => {
    const date = new Date(Date.now() + 3000).toUTCString();
    fake.set({tooManyRequests: {count: 1, retryAfter: date, method: 'PUT', path: /\/blobs\/uploads\//}});
    const r = await push('429-date', ['--retry', '2']);
    expectPushed(r);
    const puts = fake.requests({method: 'PUT', path: /\/blobs\/uploads\//});
    const refused = puts.find((p) => p.status === 429)!;
    const again = puts.find((p) => p.seq > refused.seq && sessionOf(p.path) === sessionOf(refused.path))!;
    expect(again.status).toBe(201);
    expect(times.get(again)!).toBeGreaterThanOrEqual(Date.parse(date) - 50);
  });

  it('a burst of 503s within --retry is retried with backoff and the pull completes', async () => {
    fake.set({unavailable: {count: 3, path: /\/blobs\//}});
    const r = await pull('503-burst', ['--retry', '3']);
    await expectPulled(r);
    expect(fake.requests({path: /\/blobs\//}).filter((q) => q.status === 503)).toHaveLength(3);
    expect((JSON.parse(r.run.stdout) as {transfer: {retries: number}}).transfer.retries).toBeGreaterThanOrEqual(3);
  });

  it('a 503 burst longer than --retry: exit 1 naming the reference and the status, nothing written', async () => {
    fake.set({unavailable: {count: 50, path: /\/manifests\//}});
    const r = await pull('503-long', ['--retry', '2']);
    expect(r.run.status).toBe(1);
    const last = r.run.stderr.trim().split('\n').at(-1)!;
    expect(last).toContain(`${fake.host}/${REPO}:${img.tag}`);
    expect(last).toMatch(/\b503\b/);
    expect(r.run.stderr).not.toMatch(/^\s+at /m);
    // --retry 2: the first try and two retries, no more.
    expect(fake.requests({path: /\/manifests\//})).toHaveLength(3);
    expect(r.box.outputs()).toEqual([]);
    expect(r.box.strays()).toEqual([]);
  });

  it('a 503 on a chunk (PATCH) is retried with backoff and the chunks stay contiguous', async () => {
    fake.set({unavailable: {count: 2, method: 'PATCH'}});
    const r = await push('503-patch', ['--chunk-size', '1M']);
    expectPushed(r);
    // Every session's chunks are contiguous from 0: nothing skipped (an empty session reports `Range: 0-0`).
    for (const digest of [img.configDigest, ...img.layers.map((l) => l.digest)]) {
      const sessions = sessionsFor(digest);
      const accepted = uploadsOf(fake.log, sessions).filter((q) => q.method === 'PATCH' && q.status === 202);
      expect(accepted.length).toBeGreaterThan(0);
      let at = 0;
      for (const q of accepted) {
        expect(contentStart(q)).toBe(at);
        at += q.requestBytes;
      }
    }
  });

  it('a 429 on a chunk (PATCH) honours Retry-After too', async () => {
    fake.set({tooManyRequests: {count: 1, retryAfter: 2, method: 'PATCH', path: /\/blobs\/uploads\//}});
    const r = await push('429-patch', ['--chunk-size', '2M']);
    expectPushed(r);
    const refused = fake.requests({method: 'PATCH'}).find((q) => q.status === 429)!;
    const next = fake.log.find((q) => q.seq > refused.seq && sessionOf(q.path) === sessionOf(refused.path))!;
    expect(times.get(next)! - times.get(refused)!).toBeGreaterThanOrEqual(1950);
  });
});

describe('connections cut mid-body', () => {
  it('a blob download cut after 2 MiB continues with Range from the cut, never from 0', async () => {
    fake.set({dropDownload: {afterBytes: 2 * MiB, path: new RegExp(big().digest)}});
    const r = await pull('drop-download');
    await expectPulled(r);
    const gets = blobRequests(big().digest);
    expect(gets).toHaveLength(2);
    expect(gets[0]!.fault).toBe('dropDownload');
    expect(gets[0]!.range).toBeUndefined();
    expect(gets[0]!.responseBytes).toBe(2 * MiB);
    expect(gets[1]!.range).toBe(`bytes=${2 * MiB}-`);
    expect(gets[1]!.status).toBe(206);
    // The blob crossed the wire once: what the cut delivered plus the rest.
    expect(gets[0]!.responseBytes + gets[1]!.responseBytes).toBe(big().size);
    const t = (JSON.parse(r.run.stdout) as {transfer: {fetchedBytes: number}}).transfer;
    expect(t.fetchedBytes).toBe(img.layers.reduce((n, l) => n + l.size, 0));
  });

  it('a manifest or config download cut mid-body is asked for again', async () => {
    fake.set({dropDownload: {afterBytes: 100, path: /\/manifests\//}});
    const first = await pull('drop-manifest');
    await expectPulled(first);
    expect(fake.requests({path: /\/manifests\//}).map((q) => q.fault ?? 'ok')).toEqual(['dropDownload', 'ok']);
    fake.clearLog();
    fake.set({dropDownload: {afterBytes: 100, path: new RegExp(img.configDigest)}});
    const second = await pull('drop-config');
    await expectPulled(second);
    expect(blobRequests(img.configDigest).map((q) => q.fault ?? 'ok')).toEqual(['dropDownload', 'ok']);
  });

  it('a monolithic upload (PUT) cut after 2 MiB continues from the offset the registry kept', async () => {
    fake.set({dropUpload: {afterBytes: 2 * MiB}});
    const r = await push('drop-put');
    expectPushed(r);
    const cut = fake.log.find((q) => q.fault === 'dropUpload')!;
    expect(cut.method).toBe('PUT');
    expect(cut.requestBytes).toBe(2 * MiB);
    const session = sessionOf(cut.path);
    const after = fake.log.filter((q) => q.seq > cut.seq && sessionOf(q.path) === session);
    // Asked where the session stands, then sent only the rest.
    expect(after[0]!.method).toBe('GET');
    expect(after[0]!.uploadRange).toBe(`0-${2 * MiB - 1}`);
    const rest = after.filter((q) => q.method === 'PATCH' || q.method === 'PUT');
    expect(contentStart(rest[0]!)).toBe(2 * MiB);
    expect(rest.reduce((n, q) => n + q.requestBytes, 0)).toBe(big().size - 2 * MiB);
  });

  it('a chunk (PATCH) cut mid-body continues from the offset the registry kept', async () => {
    fake.set({dropUpload: {afterBytes: MiB + 12345, path: /\/blobs\/uploads\//}});
    const r = await push('drop-patch', ['--chunk-size', '2M']);
    expectPushed(r);
    const cut = fake.log.find((q) => q.fault === 'dropUpload')!;
    expect(cut.method).toBe('PATCH');
    const session = sessionOf(cut.path);
    const after = fake.log.filter((q) => q.seq > cut.seq && sessionOf(q.path) === session);
    expect(after[0]!.method).toBe('GET');
    const resumed = after.find((q) => q.method === 'PATCH')!;
    expect(contentStart(resumed)).toBe(contentStart(cut) + MiB + 12345);
  });

  it('an upload cut before a single byte arrived: the session is empty (`Range: 0-0`, as distribution says) and the upload starts at 0', async () => {
    for (const extra of [['--chunk-size', '1M'], []]) {
      fake.clearLog();
      fake.set({dropUpload: {afterBytes: 0, path: /\/blobs\/uploads\//}});
      const r = await push(`drop-at-0${extra.length}`, extra);
      expectPushed(r);
      const cut = fake.log.find((q) => q.fault === 'dropUpload')!;
      expect(cut.requestBytes).toBe(0);
      const after = fake.log.filter((q) => q.seq > cut.seq && sessionOf(q.path) === sessionOf(cut.path));
      expect(after[0]!.method).toBe('GET');
      expect(after[0]!.uploadRange).toBe('0-0');
      const resumed = after.find((q) => q.method === 'PATCH')!;
      expect(contentStart(resumed)).toBe(0);
      expect(after.some((q) => q.status === 416)).toBe(false);
    }
  });
});

describe('body caps and chunk sizes', () => {
  it('a 1 MiB body cap below a 5 MiB layer (a capped proxy): the layer goes up in chunks under the cap', async () => {
    fake.set({maxRequestBodyBytes: MiB});
    const r = await push('413');
    expectPushed(r);
    const bodies = fake.log.filter((q) => (q.method === 'PATCH' || q.method === 'PUT') && q.requestBytes > 0);
    const accepted = bodies.filter((q) => q.status === 201 || q.status === 202);
    for (const q of accepted) expect(q.requestBytes).toBeLessThanOrEqual(MiB);
    // The big layer went up in chunks, contiguous from 0.
    const sessions = sessionsFor(big().digest);
    const chunks = uploadsOf(fake.log, sessions).filter((q) => q.method === 'PATCH' && q.status === 202);
    expect(chunks.length).toBeGreaterThanOrEqual(5);
    expect(chunks.reduce((n, q) => n + q.requestBytes, 0)).toBe(big().size);
    // Each refusal halves what was refused: the bytes sent only to be refused stay within twice the blobs' size.
    const refused = bodies.filter((q) => q.status === 413).reduce((n, q) => n + q.requestBytes, 0);
    expect(refused).toBeLessThanOrEqual(2 * img.layers.reduce((n, l) => n + l.size, 0));
  });

  it('OCI-Chunk-Min-Length (from the first answer on): every chunk but the last of a blob is at least that long', async () => {
    fake.set({chunkMinLength: 3 * MiB});
    const r = await push('chunk-min', ['--chunk-size', '1M']);
    expectPushed(r);
    for (const layer of img.layers) {
      const chunks = uploadsOf(fake.log, sessionsFor(layer.digest)).filter((q) => q.method === 'PATCH');
      expect(chunks.length).toBeGreaterThan(0);
      for (const q of chunks.slice(0, -1)) expect(q.requestBytes).toBeGreaterThanOrEqual(3 * MiB);
      expect(chunks.reduce((n, q) => n + q.requestBytes, 0)).toBe(layer.size);
    }
  });
});

describe('tokens and the registry digest', () => {
  it('tokens that expire mid-transfer are renewed; the chunked upload goes on from where it was', async () => {
    fake.setAuth({type: 'bearer', users: {ferry: 'secret'}, tokenLifetimeMs: 1500});
    // Two 2-second pauses (429 + Retry-After) in the middle of the chunks outlast every token.
    fake.set({tooManyRequests: {count: 2, retryAfter: 2, method: 'PATCH', path: /\/blobs\/uploads\//}});
    const r = await push('tokens', ['--chunk-size', '1M', '--creds', 'ferry:secret', '--jobs', '1']);
    expectPushed(r);
    const scope = `repository:${r.repo}:pull,push`;
    expect(fake.tokenCount(scope)).toBeGreaterThanOrEqual(2);
    // No 401 was the end of anything: every request after a refused token was answered once a new token came.
    const refused = fake.log.filter((q) => q.status === 401 && q.authorization === 'bearer');
    for (const q of refused) expect(fake.log.some((n) => n.seq > q.seq && n.path === q.path && n.method === q.method && n.status !== 401)).toBe(true);
    const chunks = uploadsOf(fake.log, sessionsFor(big().digest)).filter((q) => q.method === 'PATCH' && q.status === 202);
    let at = 0;
    for (const q of chunks) {
      expect(contentStart(q)).toBe(at);
      at += q.requestBytes;
    }
    expect(at).toBe(big().size);
  });

  it('expiring tokens on a pull: each request after a pause gets a fresh token, and the pull completes', async () => {
    fake.setAuth({type: 'bearer', users: {ferry: 'secret'}, tokenLifetimeMs: 1500});
    fake.set({tooManyRequests: {count: 2, retryAfter: 2, path: /\/blobs\/sha256:/}});
    const r = await pull('tokens-pull', ['--creds', 'ferry:secret', '--jobs', '1']);
    await expectPulled(r);
    expect(fake.tokenCount(`repository:${REPO}:pull`)).toBeGreaterThanOrEqual(2);
    // Every blob came in one piece, each asked for once it had a valid token.
    for (const l of img.layers) expect(blobRequests(l.digest).filter((q) => q.status === 200)).toHaveLength(1);
  });

  it('a registry that says it stored other bytes than were sent (Docker-Content-Digest) fails the push before any manifest', async () => {
    const lie = `sha256:${createHash('sha256').update('not what was sent').digest('hex')}`;
    const front = await startFront(fake.port, {
      rewrite: (req, status, headers) => {
        if (req.method === 'PUT' && /\/blobs\/uploads\//.test(req.url ?? '') && status === 201 && req.url?.includes(encodeURIComponent(big().digest))) headers['docker-content-digest'] = lie;
      },
    });
    try {
      // Whole (the PUT carries the blob) and in chunks (the closing PUT carries none): both checked.
      for (const extra of [[], ['--chunk-size', '2M']]) {
        const box = makeSandbox(work, 'digest-lie');
        const repo = `faults/lie${extra.length}`;
        const run = await runFerry(['push', `oci:${img.layout}`, `${front.host}/${repo}:${img.tag}`, ...extra], {env: box.env});
        expect(run.status).toBe(1);
        const line = oneErrorLine(run);
        expect(line).toContain(`${front.host}/${repo}`);
        expect(line).toContain(big().digest);
        expect(line).toContain(lie);
        expect(line).toContain("the registry's digest of what it received");
        expect(fake.getManifest(repo, img.tag)).toBeUndefined();
        expect(front.seen.some((s) => s.startsWith('PUT') && s.includes(`/${repo}/manifests/`))).toBe(false);
      }
    } finally {
      await front.stop();
    }
  });
});

describe('cost', () => {
  it('clients of one TLS registry share one TLS context: a push of 20 images no longer parses every CA 20 times', async () => {
    const secure = await startFakeRegistry({tls: true});
    const original = tls.createSecureContext;
    let built = 0;
    tls.createSecureContext = ((...args: Parameters<typeof tls.createSecureContext>) => {
      built++;
      return original(...args);
    }) as typeof tls.createSecureContext;
    try {
      // One client per image, as push --all and bulk pulls make them; each one asks once.
      const before = process.cpuUsage();
      for (let i = 0; i < 20; i++) {
        const client = new RegistryClient(secure.host, {certsDirs: [secure.certsDir!], retries: 0});
        try {
          const res = await client.request({method: 'GET', target: '/v2/', scopes: [], ok: [200], what: `ping ${i}`});
          res.body.resume();
        } finally {
          client.close();
        }
      }
      const cpu = process.cpuUsage(before);
      // The system store plus the test CA, parsed once (none if this process already had it).
      expect(built).toBeLessThanOrEqual(1);
      // Twenty handshakes cost a few ms each; parsing the store (~60 ms) twenty times cost over a second.
      expect((cpu.user + cpu.system) / 1000).toBeLessThan(600);
      // Each client asked (its scheme probe, then the call): forty answers over TLS.
      expect(secure.requests({path: /^\/v2\/$/}).filter((r) => r.status === 200)).toHaveLength(40);
    } finally {
      tls.createSecureContext = original;
      await secure.stop();
    }
  });
});

describe.skipIf(peerMissing('docker-registry', 'skopeo'))('an upload cut on its way to docker-registry 2.8.2', () => {
  it('the registry keeps what arrived and refuses the session; ferry opens a new one and the push completes', async () => {
    const reg = await startRegistry();
    let cuts = 0;
    // A front that lets 2 MiB of the big layer's upload through, once, then breaks both connections.
    const front = await startFront(reg.port, {
      cut: (req) => {
        if (cuts > 0 || req.method !== 'PUT' || !/\/blobs\/uploads\//.test(req.url ?? '') || !req.url!.includes(encodeURIComponent(big().digest))) return undefined;
        cuts++;
        return 2 * MiB;
      },
    });
    try {
      const box = makeSandbox(work, 'real-cut');
      const ref = `${front.host}/faults/real:${img.tag}`;
      const run = await runFerry(['push', `oci:${img.layout}`, ref, '--json'], {env: box.env});
      expect(run.status, run.stderr).toBe(0);
      expect(cuts).toBe(1);
      // Asked where the cut session stood (distribution: 404, the upload is no longer valid), then a new session.
      const cutAt = front.seen.findIndex((s) => s.startsWith('PUT') && s.includes(encodeURIComponent(big().digest)));
      const uuid = /\/uploads\/([0-9a-f-]+)/.exec(front.seen[cutAt]!)![1]!;
      const after = front.seen.slice(cutAt + 1);
      expect(after.find((s) => s.includes(uuid))).toMatch(/^GET \/v2\/faults\/real\/blobs\/uploads\//);
      expect(after.some((s) => s.startsWith('POST /v2/faults/real/blobs/uploads/'))).toBe(true);
      // The blob went up whole in the end, on a session other than the cut one.
      expect(after.some((s) => s.startsWith('PUT') && s.includes(encodeURIComponent(big().digest)) && !s.includes(uuid))).toBe(true);
      expect(readFileSync(reg.logFile, 'utf8')).toMatch(/blob upload invalid|upload resumed at wrong offset/);
      // skopeo, straight to the registry, reads the image back with the digest built here.
      const inspected = await new Promise<string>((resolve, reject) => {
        const child = spawn('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/faults/real:${img.tag}`], {stdio: ['ignore', 'pipe', 'inherit'], env: {...process.env, HOME: box.root}});
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`skopeo inspect exited ${code}`))));
      });
      expect((JSON.parse(inspected) as {Digest: string}).Digest).toBe(img.manifestDigest);
    } finally {
      await front.stop();
      await reg.stop();
    }
  });
});
