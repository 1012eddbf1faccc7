/**
 * `ferry serve` of a legacy docker-archive, an oci-archive and a bundle on a free loopback port,
 * judged by the clients that pull from registries: a private dockerd (--insecure-registry) pulls and
 * runs, podman and ctr pull, skopeo inspects and copies; curl's Range requests get the bytes tar
 * extracts; writes get 405 UNSUPPORTED, unknown names 404; TLS with a test CA works for skopeo; and
 * SIGTERM ends it with exit 0, freeing the port. Expected digests come from skopeo reading the
 * archives themselves (and, for the legacy archive that stores no manifest, `ferry manifest`).
 */
import {spawn, type ChildProcess} from 'node:child_process';
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {requireBuiltCli} from '../helpers/cli.js';
import {makePodman, startContainerd, startDockerd, type Containerd, type Dockerd, type Sandbox} from '../helpers/daemons.js';
import {peerMissing} from '../helpers/peers.js';
import {makeTestCertificates} from '../helpers/tls-certs.js';
import {blobMembers, buildImages, exec, execOk, ferryOk, sha256, skopeoImage, tarExtract, tarMembers, type BuiltImages, type SkopeoImage} from './kit.js';

interface Served {
  child: ChildProcess;
  url: string;
  host: string;
  stdout: string;
  exited: Promise<{code: number | null; signal: NodeJS.Signals | null}>;
}

/** `ferry serve ... --listen 127.0.0.1:0`: resolves once it prints the URL it listens on. */
async function serve(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [requireBuiltCli(), 'serve', ...args, '--listen', '127.0.0.1:0'], {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, FERRY_DEBUG: ''}});
  let stdout = '';
  let stderr = '';
  const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) => child.once('exit', (code, signal) => resolve({code, signal})));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ferry serve printed no URL in 60 s: ${stderr}`)), 60_000);
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString();
      const m = /serving \d+ repositories at (https?:\/\/\S+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then(() => reject(new Error(`ferry serve exited: ${stderr}`)));
  });
  return {child, url, host: url.replace(/^https?:\/\//, ''), stdout, exited};
}

async function stopServe(s: Served | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return;
  process.kill(s.child.pid!, 'SIGKILL');
  await s.exited;
}

/** curl's view of one request: status, headers, body (bytes). */
async function curl(url: string, extra: string[] = []): Promise<{status: number; headers: string; body: Buffer}> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-curl-'));
  try {
    const r = await exec('curl', ['-s', '-o', path.join(dir, 'body'), '-D', path.join(dir, 'headers'), '-w', '%{http_code}', ...extra, url]);
    return {status: Number(r.stdout), headers: readFileSync(path.join(dir, 'headers'), 'utf8'), body: readFileSync(path.join(dir, 'body'))};
  } finally {
    rmSync(dir, {recursive: true, force: true});
  }
}

const TEXT = {a: 'served from a legacy archive\n', b: 'served from an oci-archive\n'};

describe.skipIf(peerMissing('skopeo', 'buildah', 'busybox', 'dockerd', 'containerd', 'ctr', 'podman', 'curl', 'openssl', 'tar'))('ferry serve, judged by docker, podman, ctr, skopeo and curl', () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'ferry-serve-'));
  let built: BuiltImages;
  let served: Served;
  let dockerd: Dockerd;
  let containerd: Containerd;
  let podman: Sandbox;
  const legacy = path.join(work, 'a.tar');
  const ociArchive = path.join(work, 'b-oci.tar');
  const bundle = path.join(work, 'bundle');
  /** What each served image is, read from its source by skopeo (and ferry manifest for the legacy archive). */
  const expected: Record<string, {repo: string; digest: string; config: string; layers: string[]}> = {};

  beforeAll(async () => {
    built = await buildImages(work, {
      a: {name: 'test/app-a:1', layers: [{'etc/a.txt': TEXT.a}]},
      b: {name: 'test/app-b:1', layers: [{'etc/b.txt': TEXT.b}]},
      d: {name: 'test/app-d:1', layers: [{'data/r1.bin': {random: 700_000}}, {'data/r2.bin': {random: 700_000}}]},
    });
    // a: the legacy docker-archive buildah wrote (it stores no manifest).
    const aPeer = await skopeoImage(`docker-archive:${built.archives.a}`, []);
    const aManifest = (await ferryOk(['manifest', built.archives.a!])).stdoutBytes;
    expected.a = {repo: 'test/app-a', digest: sha256(aManifest), config: aPeer.manifest.config.digest, layers: aPeer.manifest.layers.map((l) => l.digest)};
    expect(built.archives.a).toBe(legacy);
    // b: an oci-archive skopeo wrote, gzip layers.
    await execOk('skopeo', ['copy', '-q', '--dest-compress', `docker-archive:${built.archives.b}`, `oci-archive:${ociArchive}:test/app-b:1`]);
    const bPeer = await skopeoImage(`oci-archive:${ociArchive}:test/app-b:1`, []);
    expected.b = {repo: 'test/app-b', digest: bPeer.digest, config: bPeer.manifest.config.digest, layers: bPeer.manifest.layers.map((l) => l.digest)};
    // d: a bundle (spanning two parts) made from an OCI layout skopeo wrote.
    const layout = path.join(work, 'd-layout');
    await execOk('skopeo', ['copy', '-q', `docker-archive:${built.archives.d}`, `oci:${layout}:test/app-d:1`]);
    const dPeer = await skopeoImage(`oci:${layout}:test/app-d:1`, []);
    expected.d = {repo: 'test/app-d', digest: dPeer.digest, config: dPeer.manifest.config.digest, layers: dPeer.manifest.layers.map((l) => l.digest)};
    const base = dPeer.manifest.layers[0]!.size;
    await ferryOk(['bundle', 'create', `oci:${layout}`, '-o', bundle, '--max-part-size', String(base + dPeer.manifest.layers[1]!.size + 256 * 1024)]);
    served = await serve([legacy, ociArchive, bundle]);
    [dockerd, containerd] = await Promise.all([startDockerd({extraArgs: ['--insecure-registry', served.host]}), startContainerd()]);
    podman = makePodman();
  }, 240_000);

  afterAll(async () => {
    await stopServe(served);
    await Promise.all([dockerd?.stop(), containerd?.stop(), podman?.cleanup()]);
    rmSync(work, {recursive: true, force: true});
  });

  it('listens on loopback and lists what it serves; the bundle\'s image spans two parts', () => {
    expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    for (const repo of ['test/app-a', 'test/app-b', 'test/app-d']) expect(served.stdout).toContain(`${served.host}/${repo}: 1`);
    const manifest = JSON.parse(readFileSync(path.join(bundle, 'bundle.json'), 'utf8')) as {images: Array<{parts: string[]; digest: string}>};
    expect(manifest.images[0]!.parts.length).toBe(2);
    expect(manifest.images[0]!.digest).toBe(expected.d!.digest);
  });

  it('skopeo inspects each image with the digest, config and layers of its source, and copies it whole', async () => {
    for (const key of ['a', 'b', 'd']) {
      const e = expected[key]!;
      const there: SkopeoImage = await skopeoImage(`docker://${served.host}/${e.repo}:1`);
      expect(there.digest).toBe(e.digest);
      expect(sha256(there.raw)).toBe(e.digest);
      expect(there.manifest.config.digest).toBe(e.config);
      expect(there.manifest.layers.map((l) => l.digest)).toEqual(e.layers);
    }
    // skopeo copy checks every blob against its digest on the way.
    const out = path.join(work, 'copied');
    await execOk('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${served.host}/test/app-d:1`, `oci:${out}:d`]);
    const index = JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8')) as {manifests: Array<{digest: string}>};
    expect(index.manifests[0]!.digest).toBe(expected.d!.digest);
  });

  it('the private dockerd pulls each image (digest as its source\'s) and runs it with --network none', () => {
    for (const key of ['a', 'b', 'd']) {
      const ref = `${served.host}/${expected[key]!.repo}:1`;
      expect(dockerd.docker(['pull', ref])).toContain(`Digest: ${expected[key]!.digest}`);
      expect(dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', ref]).trim()).toBe(expected[key]!.config);
    }
    expect(dockerd.docker(['run', '--rm', '--network', 'none', `${served.host}/test/app-a:1`, 'cat', '/etc/a.txt'])).toBe(TEXT.a);
    expect(dockerd.docker(['run', '--rm', '--network', 'none', `${served.host}/test/app-b:1`, 'cat', '/etc/b.txt'])).toBe(TEXT.b);
    const sums = dockerd.docker(['run', '--rm', '--network', 'none', `${served.host}/test/app-d:1`, 'sha256sum', '/data/r1.bin', '/data/r2.bin']);
    expect(sums).toContain(`${built.files['/data/r1.bin']}  /data/r1.bin`);
    expect(sums).toContain(`${built.files['/data/r2.bin']}  /data/r2.bin`);
  });

  it('podman pull --tls-verify=false takes each image with its source\'s digest', () => {
    for (const key of ['a', 'b', 'd']) {
      const ref = `${served.host}/${expected[key]!.repo}:1`;
      podman.run(['pull', '-q', '--tls-verify=false', ref]);
      expect(podman.run(['image', 'inspect', '--format', '{{.Digest}}', ref]).trim()).toBe(expected[key]!.digest);
      expect(`sha256:${podman.run(['image', 'inspect', '--format', '{{.Id}}', ref]).trim()}`).toBe(expected[key]!.config);
    }
  });

  it('ctr images pull --plain-http takes each image and lists it with its source\'s digest', () => {
    for (const key of ['a', 'b', 'd']) {
      const ref = `${served.host}/${expected[key]!.repo}:1`;
      containerd.ctr(['-n', 'test', 'images', 'pull', '--plain-http', '--snapshotter', 'native', ref]);
      const line = containerd.ctr(['-n', 'test', 'images', 'ls']).split('\n').find((l) => l.startsWith(`${ref} `));
      expect(line).toContain(expected[key]!.digest);
    }
  });

  it('Range requests return the bytes tar extracts from the archive and the bundle\'s part', async () => {
    // d's first random layer, as tar extracts it from the part that holds it.
    const r1 = expected.d!.layers[1]!;
    let part = '';
    for (const p of ['part-0001.tar', 'part-0002.tar', 'part-0003.tar']) if ((await blobMembers(path.join(bundle, p)).catch(() => new Map())).has(r1)) part = p;
    const blob = await tarExtract(path.join(bundle, part), `blobs/sha256/${r1.slice('sha256:'.length)}`);
    expect(sha256(blob)).toBe(r1);
    const url = `${served.url}/v2/test/app-d/blobs/${r1}`;
    const mid = await curl(url, ['-H', 'Range: bytes=1000-1999']);
    expect(mid.status).toBe(206);
    expect(mid.headers).toMatch(new RegExp(`content-range: bytes 1000-1999/${blob.length}`, 'i'));
    expect(mid.body.equals(blob.subarray(1000, 2000))).toBe(true);
    const tail = await curl(url, ['-H', 'Range: bytes=-500']);
    expect(tail.status).toBe(206);
    expect(tail.body.equals(blob.subarray(blob.length - 500))).toBe(true);
    const open = await curl(url, ['-H', `Range: bytes=${blob.length - 77}-`]);
    expect(open.body.equals(blob.subarray(blob.length - 77))).toBe(true);
    const whole = await curl(url);
    expect(whole.status).toBe(200);
    expect(whole.body.equals(blob)).toBe(true);
    expect((await curl(url, ['-H', `Range: bytes=${blob.length}-`])).status).toBe(416);
    // The legacy archive's uncompressed layer, served as it is: its member in a.tar, by its digest.
    const layer = expected.a!.layers[1]!;
    let member: Buffer | undefined;
    for (const name of (await tarMembers(legacy)).keys()) {
      if (!name.endsWith('.tar')) continue;
      const bytes = await tarExtract(legacy, name);
      if (sha256(bytes) === layer) member = bytes;
    }
    expect(member).toBeDefined();
    const range = await curl(`${served.url}/v2/test/app-a/blobs/${layer}`, ['-H', 'Range: bytes=512-1535']);
    expect(range.status).toBe(206);
    expect(range.body.equals(member!.subarray(512, 1536))).toBe(true);
  });

  it('writes get 405 UNSUPPORTED; unknown repositories, tags, blobs and paths get 404', async () => {
    const base = `${served.url}/v2/test/app-a`;
    for (const [method, url] of [
      ['PUT', `${base}/manifests/2`],
      ['POST', `${base}/blobs/uploads/`],
      ['PATCH', `${base}/blobs/uploads/x`],
      ['DELETE', `${base}/manifests/${expected.a!.digest}`],
      ['DELETE', `${base}/blobs/${expected.a!.config}`],
    ] as const) {
      const r = await curl(url, ['-X', method, '-H', 'Content-Type: application/octet-stream', '--data-binary', '{}']);
      expect(r.status, `${method} ${url}`).toBe(405);
      expect((JSON.parse(r.body.toString()) as {errors: Array<{code: string}>}).errors[0]!.code).toBe('UNSUPPORTED');
    }
    // Still serving what it served.
    expect((await skopeoImage(`docker://${served.host}/test/app-a:1`)).digest).toBe(expected.a!.digest);
    const zero = `sha256:${'0'.repeat(64)}`;
    for (const [url, code] of [
      [`${served.url}/v2/nope/tags/list`, 'NAME_UNKNOWN'],
      [`${served.url}/v2/nope/manifests/1`, 'NAME_UNKNOWN'],
      [`${served.url}/v2/nope/blobs/${expected.a!.config}`, 'NAME_UNKNOWN'],
      [`${base}/manifests/2`, 'MANIFEST_UNKNOWN'],
      [`${base}/manifests/${zero}`, 'MANIFEST_UNKNOWN'],
      [`${base}/blobs/${zero}`, 'BLOB_UNKNOWN'],
      [`${served.url}/v2/test/app-a`, 'NOT_FOUND'],
      [`${served.url}/elsewhere`, 'NOT_FOUND'],
    ] as const) {
      const r = await curl(url);
      expect(r.status, url).toBe(404);
      expect((JSON.parse(r.body.toString()) as {errors: Array<{code: string}>}).errors[0]!.code, url).toBe(code);
    }
    expect((await exec('skopeo', ['inspect', '--tls-verify=false', `docker://${served.host}/test/app-a:2`])).code).not.toBe(0);
  });

  it('with --tls-cert/--tls-key: skopeo trusting the test CA (--cert-dir) reads the same digests; without it, refuses', async () => {
    const certs = makeTestCertificates(path.join(work, 'tls'));
    const certDir = path.join(work, 'certs.d');
    mkdirSync(certDir);
    writeFileSync(path.join(certDir, 'ca.crt'), readFileSync(certs.caFile));
    const tls = await serve([legacy, ociArchive, bundle, '--tls-cert', certs.certFile, '--tls-key', certs.keyFile]);
    try {
      expect(tls.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      for (const key of ['a', 'b', 'd']) expect((await skopeoImage(`docker://${tls.host}/${expected[key]!.repo}:1`, ['--cert-dir', certDir])).digest).toBe(expected[key]!.digest);
      const refused = await exec('skopeo', ['inspect', `docker://${tls.host}/test/app-a:1`]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/x509|certificate/);
    } finally {
      await stopServe(tls);
    }
  });

  it('SIGTERM ends it with exit 0 and frees the port', async () => {
    const s = await serve([legacy]);
    const port = Number(new URL(s.url).port);
    expect((await curl(`${s.url}/v2/`)).status).toBe(200);
    process.kill(s.child.pid!, 'SIGTERM');
    const end = await Promise.race([s.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
    if (end === 'timeout') await stopServe(s);
    expect(end).toEqual({code: 0, signal: null});
    expect((await exec('curl', ['-s', `${s.url}/v2/`])).code).toBe(7); // couldn't connect
    await new Promise<void>((resolve, reject) => {
      const probe = net.createServer();
      probe.once('error', reject);
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
    });
  });
});
