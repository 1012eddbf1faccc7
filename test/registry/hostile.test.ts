/**
 * A registry is untrusted input. Against the fake (and a hostile front for what the fake cannot say):
 * wrong manifest content type, garbage JSON, a manifest over 4 MiB, blobs whose bytes are not their
 * digest or longer than their descriptor, redirect loops, a redirect to a non-http URL, an unknown
 * media type, a 401 loop, an upload Location on another host. Each is one line on stderr naming the
 * reference and what was wrong, exit 1, nothing on stdout, no stack; nothing at the destination, nothing
 * wrong beside it (`.DEST.ferry-pull/` keeps only bytes that are right), nothing written anywhere else,
 * and every loop bounded. Needs `npm run build`.
 */
import {mkdtempSync, rmSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest';
import {MANIFEST_MEDIA_TYPES, startFakeRegistry, type FakeRegistry, type FakeSwitches} from '../helpers/fake-registry.js';
import {buildImage, leftovers, listFiles, makeSandbox, MiB, oneErrorLine, runFerry, seedFake, startFront, TMP_PARENT, type BuiltImage, type FerryRun, type Sandbox} from './fault-kit.js';

const REPO = 'hostile/app';

let work: string;
let fake: FakeRegistry;
let img: BuiltImage;

beforeAll(async () => {
  work = mkdtempSync(path.join(TMP_PARENT, 'ferry-reg-hostile-'));
  img = buildImage(path.join(work, 'image'), [1 * MiB, 2 * MiB]);
  fake = await startFakeRegistry();
  await seedFake(fake, REPO, img);
  const m = JSON.parse(img.manifest.toString('utf8')) as {layers: Array<{size: number}>; mediaType: string};
  // Manifests the fake serves under extra tags: the image's own, bent.
  const variant = (tag: string, edit: (copy: typeof m) => unknown, mediaType = img.mediaType): void => {
    fake.putManifest(REPO, tag, Buffer.from(JSON.stringify(edit(structuredClone(m)))), mediaType);
  };
  // The second layer's descriptor says 1000 bytes fewer than the blob the registry serves.
  variant('longer', (c) => ({...c, layers: c.layers.map((l, i) => (i === 1 ? {...l, size: l.size - 1000} : l))}));
  variant('unknown-type', (c) => ({...c, mediaType: 'application/vnd.example.thing.v1+json'}), 'application/vnd.example.thing.v1+json');
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

interface Outcome {
  run: FerryRun;
  dest: string;
  box: Sandbox;
  line: string;
}

/** A pull that must fail: exit 1, one line naming the reference, nothing on stdout, nothing written but right bytes beside DEST. */
async function refusedPull(name: string, tag: string, registry: string = fake.host, extra: string[] = []): Promise<Outcome> {
  const box = makeSandbox(work, name);
  const dest = path.join(box.out, 'app.tar');
  const run = await runFerry(['pull', `${registry}/${REPO}:${tag}`, dest, ...extra], {env: box.env});
  expect(run.status, run.stderr).toBe(1);
  expect(run.stdout).toBe('');
  const line = oneErrorLine(run);
  expect(line).toContain(`${registry}/${REPO}:${tag}`);
  // Nothing at DEST, no temp file beside it; only blobs (or parts of blobs) whose bytes are right.
  expect(box.outputs().filter((f) => !f.startsWith('.app.tar.ferry-pull'))).toEqual([]);
  expect(leftovers(dest, img.layers).filter((f) => !f.right)).toEqual([]);
  expect(box.strays()).toEqual([]);
  expect(listFiles(box.temp)).toEqual([]);
  return {run, dest, box, line};
}

describe('hostile manifests', () => {
  const cases: Array<{name: string; tag?: string; switches?: FakeSwitches; says: RegExp}> = [
    {name: 'wrong content type (text/html)', switches: {manifestFault: {kind: 'wrong-content-type'}}, says: /text\/html/},
    {name: 'garbage JSON', switches: {manifestFault: {kind: 'garbage-json'}}, says: /invalid JSON|not JSON/i},
    {name: 'a manifest over 4 MiB', switches: {manifestFault: {kind: 'oversize'}}, says: /4194305 bytes, over the 4194304-byte limit/},
    {name: 'an unknown media type', tag: 'unknown-type', says: /media type "application\/vnd\.example\.thing\.v1\+json", not a manifest or index/},
  ];
  for (const c of cases) {
    it(`${c.name}: one line, exit 1, nothing written`, async () => {
      if (c.switches) fake.set(c.switches);
      const o = await refusedPull(c.name, c.tag ?? img.tag);
      expect(o.line).toMatch(c.says);
      // Refused on the manifest: no blob was asked for.
      expect(fake.requests({path: /\/blobs\//})).toEqual([]);
      expect(o.box.outputs()).toEqual([]);
    });
  }

  it('a manifest whose Content-Type names another manifest type than its body is refused', async () => {
    // An index content type on an image manifest's bytes (plus a newline, so its digest is its own):
    // the registry contradicts itself.
    fake.putManifest(REPO, 'mislabelled', Buffer.concat([img.manifest, Buffer.from('\n')]), MANIFEST_MEDIA_TYPES.ociIndex);
    const o = await refusedPull('mislabelled', 'mislabelled');
    expect(o.line).toContain(MANIFEST_MEDIA_TYPES.ociIndex);
    expect(o.box.outputs()).toEqual([]);
  });

  it('a redirect loop on the manifest: given up after a bounded number of hops', async () => {
    fake.set({redirectLoop: {count: 1000, path: /\/manifests\//}});
    const o = await refusedPull('manifest-loop', img.tag);
    expect(o.line).toMatch(/redirects/);
    const hops = fake.requests({path: /\/manifests\//}).length;
    expect(hops).toBeGreaterThan(1);
    // Ten redirects followed, the eleventh refused.
    expect(hops).toBe(11);
  });

  it('a redirect to a non-http URL (file:, ftp:) is refused, never followed', async () => {
    for (const target of ['file:///etc/passwd', 'ftp://127.0.0.1/manifest']) {
      const front = await startFront(fake.port, {
        answer: (req, res) => {
          if (!/\/manifests\//.test(req.url ?? '')) return false;
          res.writeHead(307, {Location: target, 'Content-Length': 0});
          res.end();
          return true;
        },
      });
      try {
        const o = await refusedPull(`scheme-${target.split(':')[0]}`, img.tag, front.host);
        expect(o.line).toContain(`redirected to a ${target.split(':')[0]}: URL`);
        expect(front.seen.filter((s) => s.includes('/manifests/'))).toHaveLength(1);
      } finally {
        await front.stop();
      }
    }
  });
});

describe('hostile blobs', () => {
  it('a blob whose bytes do not match its digest ("wrong digest served"): refused, never lands', async () => {
    // Both layers: nothing right was fetched, so nothing may be left beside DEST at all.
    fake.set({corruptBlobs: img.layers.map((l) => l.digest)});
    const o = await refusedPull('wrong-digest', img.tag);
    expect(o.line).toMatch(/digest mismatch/);
    expect(img.layers.some((l) => o.line.includes(l.digest))).toBe(true);
    expect(o.box.outputs()).toEqual([]);
  });

  it('one wrong blob among right ones: the right ones stay beside DEST (a rerun continues), the wrong one does not', async () => {
    fake.set({corruptBlobs: [img.layers[1]!.digest]});
    const o = await refusedPull('wrong-digest-one', img.tag);
    expect(o.line).toContain(img.layers[1]!.digest);
    const left = leftovers(o.dest, img.layers);
    expect(left.every((f) => f.right)).toBe(true);
    expect(left.map((f) => f.name).some((n) => n.includes(img.layers[1]!.digest.slice(7)))).toBe(false);
  });

  it('a blob longer than its descriptor: refused at the size, never lands', async () => {
    const o = await refusedPull('longer', 'longer');
    expect(o.line).toMatch(/size mismatch: expected \d+ bytes/);
    expect(o.line).toContain(img.layers[1]!.digest);
    expect(leftovers(o.dest, img.layers).every((f) => f.right)).toBe(true);
  });

  it('a redirect loop on a layer: given up after a bounded number of hops', async () => {
    fake.set({redirectLoop: {count: 1000, path: new RegExp(img.layers[1]!.digest)}});
    const o = await refusedPull('blob-loop', img.tag);
    expect(o.line).toMatch(/redirects/);
    const hops = fake.requests({path: new RegExp(img.layers[1]!.digest)}).length;
    expect(hops).toBeGreaterThan(1);
    expect(hops).toBe(11);
  });
});

describe('hostile auth and uploads', () => {
  it('a 401 loop (a token issued, then refused, every time): pull and push give up at once', async () => {
    fake.setAuth({type: 'bearer', users: {ferry: 'secret'}});
    fake.set({authLoop: true});
    const o = await refusedPull('auth-loop', img.tag, fake.host, ['--creds', 'ferry:secret']);
    expect(o.line).toMatch(/refused the credentials \(401\)/);
    expect(o.line).not.toContain('secret');
    expect(fake.tokenCount()).toBeLessThanOrEqual(2);
    expect(fake.log.length).toBeLessThanOrEqual(6);

    fake.clearLog();
    const box = makeSandbox(work, 'auth-loop-push');
    const run = await runFerry(['push', `oci:${img.layout}`, `${fake.host}/hostile/dst:v1`, '--creds', 'ferry:secret'], {env: box.env});
    expect(run.status).toBe(1);
    const line = oneErrorLine(run);
    expect(line).toContain(`${fake.host}/hostile/dst:v1`);
    expect(line).toMatch(/refused the credentials \(401\)/);
    expect(fake.log.length).toBeLessThanOrEqual(20);
    expect(box.strays()).toEqual([]);
  });

  it('an upload Location on another host: the push is refused and the other host never hears from ferry', async () => {
    fake.set({redirectUploads: 'other-host'});
    const box = makeSandbox(work, 'other-host');
    const run = await runFerry(['push', `oci:${img.layout}`, `${fake.host}/hostile/evil:v1`], {env: box.env});
    expect(run.status).toBe(1);
    const line = oneErrorLine(run);
    expect(line).toContain(`${fake.host}/hostile/evil:v1`);
    expect(line).toContain(`sends the upload to another host (${fake.otherOrigin})`);
    expect(fake.log.filter((r) => r.server === 'other')).toEqual([]);
    expect(fake.getManifest('hostile/evil', 'v1')).toBeUndefined();
    expect(box.strays()).toEqual([]);
    expect(listFiles(path.join(box.state, 'push'))).toEqual([]);
  });

  it('the same switch pointing at this host (another path) is followed: the push completes', async () => {
    fake.set({redirectUploads: 'same-host'});
    const box = makeSandbox(work, 'same-host');
    const run = await runFerry(['push', `oci:${img.layout}`, `${fake.host}/hostile/moved:v1`], {env: box.env});
    expect(run.status, run.stderr).toBe(0);
    expect(fake.getManifest('hostile/moved', 'v1')?.digest).toBe(img.manifestDigest);
    expect(fake.requests({path: /^\/upload-elsewhere\//}).length).toBeGreaterThan(0);
  });
});
