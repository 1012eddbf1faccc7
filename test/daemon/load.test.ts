import {execFileSync} from 'node:child_process';
import {chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FIXTURES, ferry} from '../helpers/cli.js';
import {startDockerd, type Dockerd} from '../helpers/daemons.js';
import {peerMissing} from '../helpers/peers.js';
import {dockerSaveGraphdriver, dockerSaveWithAttestation} from '../helpers/real-world.js';
import {startRegistry, type RunningRegistry} from '../helpers/registry.js';
import {cleanEnv, craftBusybox, dockerArchiveFacts, expectOneLineError, ferryAsync, inspectWith, mergeDockerArchives, sha256, startFakeDaemon, type Crafted} from './support.js';

/**
 * `ferry load` into a private docker 20.10 (API 1.41: the legacy layout, no zstd). docker is the
 * judge: `docker image inspect` gives the ID, the diffIDs and the names; `docker run --network none`
 * shows the image works. Every expected value comes from the crafted archive (Python), skopeo or
 * docker itself. The error cases use real sockets: missing, locked, and a tiny fake Engine API for
 * the answers no real daemon gives on demand (an old API version, an error in the load stream).
 */

interface Form {
  /** What `ferry load` is given. */
  source: string;
  /** The names docker must show (docker's familiar form); none: loaded unnamed. */
  names: string[];
  id: string;
  diffIds: string[];
  hello: string;
  /** ferry must say it stored zstd layers uncompressed (docker 20.10 cannot read them). */
  zstd?: boolean;
}

const FORMS = [
  'docker-archive, legacy layout (docker save 20.10)',
  'docker-archive, gzip around the whole tar',
  'docker-archive, Docker 25+ layout with two tags',
  'docker-archive, Docker 25+ layout with zstd layers (docker 20.10 cannot load it itself)',
  'oci-archive (skopeo), ref.name a full reference',
  'oci-archive (skopeo) with zstd layers',
  'oci directory (skopeo)',
  'oci directory: io.containerd.image.name wins over a tag-only ref.name',
  'oci directory: ref.name with a registry host and port',
  'oci directory: a tag-only ref.name names nothing (loaded unnamed)',
  'registry reference (docker://, a loopback docker-registry)',
  'oci-archive of buildx --output type=oci: an index with an attestation manifest',
] as const;

describe.skipIf(peerMissing('dockerd', 'skopeo', 'python3', 'docker-registry'))('ferry load into a private docker 20.10', () => {
  let dir: string;
  let dockerd: Dockerd;
  let registry: RunningRegistry | undefined;
  const forms = new Map<string, Form>();
  const env = (): NodeJS.ProcessEnv => ({DOCKER_HOST: dockerd.host});
  const inspect = (name: string) => inspectWith(dockerd.docker, name);
  const exists = (name: string): boolean => dockerd.dockerRaw(['image', 'inspect', name]).status === 0;
  const skopeoConfigDigest = (ref: string, ...flags: string[]): string => (JSON.parse(execFileSync('skopeo', ['inspect', ...flags, '--raw', ref], {encoding: 'utf8'})) as {config: {digest: string}}).config.digest;

  /** A crafted image of its own for each form, so every load brings a new image ID. */
  function crafted(key: string, tag = `ferry-test/src:${key}`): Crafted & {hello: string} {
    const hello = `hello from ${key}\n`;
    return {...craftBusybox(path.join(dir, `${key}.tar`), tag, hello), hello};
  }

  function ociDirWithNames(key: string, annotations: Record<string, string>): Form {
    const c = crafted(key);
    const out = path.join(dir, `${key}.oci`);
    execFileSync('skopeo', ['copy', '-q', `docker-archive:${c.file}`, `oci:${out}:placeholder`]);
    const indexFile = path.join(out, 'index.json');
    const index = JSON.parse(readFileSync(indexFile, 'utf8')) as {manifests: Array<{annotations?: Record<string, string>}>};
    index.manifests[0]!.annotations = annotations;
    writeFileSync(indexFile, JSON.stringify(index));
    return {source: `oci:${out}`, names: [], id: skopeoConfigDigest(`oci:${out}`), diffIds: c.diffIds, hello: c.hello};
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-dload-'));
    dockerd = await startDockerd();
    expect(dockerd.docker(['version', '--format', '{{.Server.APIVersion}}']).trim()).toBe('1.41');

    const legacy = crafted('legacy', 'ferry-test/load:legacy');
    forms.set(FORMS[0], {source: legacy.file, names: ['ferry-test/load:legacy'], id: legacy.id, diffIds: legacy.diffIds, hello: legacy.hello});

    const gz = crafted('gzip', 'ferry-test/load:gzip');
    writeFileSync(`${gz.file}.gz`, zlib.gzipSync(readFileSync(gz.file)));
    forms.set(FORMS[1], {source: `${gz.file}.gz`, names: ['ferry-test/load:gzip'], id: gz.id, diffIds: gz.diffIds, hello: gz.hello});

    const d25 = crafted('d25');
    const d25dir = path.join(dir, 'd25');
    mkdirSync(d25dir);
    const saved = dockerSaveGraphdriver(d25dir, {base: d25.file, tags: ['ferry-test/load:d25', 'ferry-test/load:d25-also']});
    forms.set(FORMS[2], {source: saved.tar, names: ['ferry-test/load:d25', 'ferry-test/load:d25-also'], id: saved.configDigest, diffIds: saved.diffIds, hello: d25.hello});

    // Docker 25+ with the containerd store writes zstd layers when built so: manifest.json beside an
    // OCI layout whose layers skopeo compressed with zstd.
    const zd = crafted('zstd-d');
    const zdDir = path.join(dir, 'zstd-d.oci');
    execFileSync('skopeo', ['copy', '-q', '--dest-compress-format', 'zstd', '--dest-compress', `docker-archive:${zd.file}`, `oci:${zdDir}:ferry-test/load:zstd-d`]);
    const zdManifest = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${zdDir}`], {encoding: 'utf8'})) as {config: {digest: string}; layers: Array<{digest: string; mediaType: string}>};
    expect(zdManifest.layers.every((l) => l.mediaType.endsWith('+zstd'))).toBe(true);
    const blob = (d: string): string => `blobs/sha256/${d.slice('sha256:'.length)}`;
    writeFileSync(path.join(zdDir, 'manifest.json'), JSON.stringify([{Config: blob(zdManifest.config.digest), RepoTags: ['ferry-test/load:zstd-d'], Layers: zdManifest.layers.map((l) => blob(l.digest))}]));
    const zdTar = path.join(dir, 'zstd-d.docker.tar');
    execFileSync('tar', ['-C', zdDir, '-cf', zdTar, '.']);
    forms.set(FORMS[3], {source: zdTar, names: ['ferry-test/load:zstd-d'], id: zdManifest.config.digest, diffIds: zd.diffIds, hello: zd.hello, zstd: true});

    const oa = crafted('oa');
    const oaFile = path.join(dir, 'oa.oci.tar');
    execFileSync('skopeo', ['copy', '-q', `docker-archive:${oa.file}`, `oci-archive:${oaFile}:ferry-test/load:oa`]);
    forms.set(FORMS[4], {source: oaFile, names: ['ferry-test/load:oa'], id: skopeoConfigDigest(`oci-archive:${oaFile}`), diffIds: oa.diffIds, hello: oa.hello});

    const oz = crafted('zstd-oa');
    const ozFile = path.join(dir, 'zstd.oci.tar');
    execFileSync('skopeo', ['copy', '-q', '--dest-compress-format', 'zstd', '--dest-compress', `docker-archive:${oz.file}`, `oci-archive:${ozFile}:ferry-test/load:zstd-oa`]);
    forms.set(FORMS[5], {source: ozFile, names: ['ferry-test/load:zstd-oa'], id: skopeoConfigDigest(`oci-archive:${ozFile}`), diffIds: oz.diffIds, hello: oz.hello, zstd: true});

    const od = crafted('od');
    const odDir = path.join(dir, 'od.oci');
    execFileSync('skopeo', ['copy', '-q', `docker-archive:${od.file}`, `oci:${odDir}:ferry-test/load:od`]);
    forms.set(FORMS[6], {source: `oci:${odDir}`, names: ['ferry-test/load:od'], id: skopeoConfigDigest(`oci:${odDir}`), diffIds: od.diffIds, hello: od.hello});

    forms.set(FORMS[7], {...ociDirWithNames('ctrd', {'io.containerd.image.name': 'docker.io/ferry-test/load:ctrd', 'org.opencontainers.image.ref.name': 'ctrd'}), names: ['ferry-test/load:ctrd']});
    forms.set(FORMS[8], {...ociDirWithNames('host', {'org.opencontainers.image.ref.name': 'registry.example:5000/team/app:2'}), names: ['registry.example:5000/team/app:2']});
    forms.set(FORMS[9], ociDirWithNames('tagonly', {'org.opencontainers.image.ref.name': 'v1'}));

    const bx = crafted('buildx');
    const bxDir = path.join(dir, 'buildx');
    mkdirSync(bxDir);
    const attested = dockerSaveWithAttestation(bxDir, {base: bx.file, tags: ['ferry-test/load:buildx'], variant: 'buildx-oci'});
    forms.set(FORMS[11], {source: attested.tar, names: ['ferry-test/load:buildx'], id: attested.configDigest, diffIds: attested.diffIds, hello: bx.hello});

    registry = await startRegistry();
    const reg = crafted('reg');
    const ref = `${registry.host}/ferry-test/load:reg`;
    execFileSync('skopeo', ['copy', '-q', '--dest-tls-verify=false', `docker-archive:${reg.file}`, `docker://${ref}`]);
    forms.set(FORMS[10], {source: `docker://${ref}`, names: [ref], id: skopeoConfigDigest(`docker://${ref}`, '--tls-verify=false'), diffIds: reg.diffIds, hello: reg.hello});
  });

  afterAll(async () => {
    await registry?.stop();
    await dockerd?.stop();
    if (dir) rmSync(dir, {recursive: true, force: true});
  });

  it.each(FORMS)('%s: docker shows the ID, diffIDs and names, and runs it', (key) => {
    const form = forms.get(key)!;
    if (form.zstd && form.source.endsWith('.docker.tar')) {
      // The contrast: docker 20.10 itself cannot load this archive.
      expect(dockerd.dockerRaw(['load', '-i', form.source]).status).not.toBe(0);
    }
    const r = ferry(['load', form.source], {env: env()});
    expect(r.status, r.stderr).toBe(0);
    if (form.zstd) expect(r.stderr).toMatch(/zstd layer\(s\) stored uncompressed/);
    const loaded = r.stdout.trimEnd().split('\n');
    if (form.names.length === 0) expect(loaded).toEqual([`Loaded image ID: ${form.id}`]);
    else expect(loaded.sort()).toEqual(form.names.map((n) => `Loaded image: ${n}`).sort());
    const image = inspect(form.names[0] ?? form.id);
    expect(image.Id).toBe(form.id);
    expect(image.RootFS.Layers).toEqual(form.diffIds);
    expect([...image.RepoTags].sort()).toEqual([...form.names].sort());
    expect(dockerd.docker(['run', '--rm', '--network', 'none', form.names[0] ?? form.id, 'cat', '/etc/hello.txt'])).toBe(form.hello);
  });

  it('--tag adds a name to the loaded image (its own name stays), as docker tag would', () => {
    const c = crafted('tagged', 'ferry-test/load:tagged');
    const r = ferry(['load', c.file, '--tag', 'ferry-test/extra:7', '--tag', 'localhost:5000/team/extra:8'], {env: env()});
    expect(r.status, r.stderr).toBe(0);
    const image = inspect('ferry-test/extra:7');
    expect(image.Id).toBe(c.id);
    expect([...image.RepoTags].sort()).toEqual(['ferry-test/extra:7', 'ferry-test/load:tagged', 'localhost:5000/team/extra:8']);
    expect(dockerd.docker(['run', '--rm', '--network', 'none', 'localhost:5000/team/extra:8', 'cat', '/etc/hello.txt'])).toBe(c.hello);
  });

  it('--image picks one image of a multi-image archive; the others stay out of the daemon', () => {
    const fixture = path.join(FIXTURES, 'edge-multi.docker-save.tar');
    const child = dockerArchiveFacts(fixture).find((i) => i.repoTags.includes('ferry-fixture/edge-child:1'))!;
    const r = ferry(['load', fixture, '--image', 'ferry-fixture/edge-child:1'], {env: env()});
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('Loaded image: ferry-fixture/edge-child:1');
    const image = inspect('ferry-fixture/edge-child:1');
    expect(image.Id).toBe(child.configDigest);
    expect(image.RootFS.Layers).toEqual(child.diffIds);
    expect(exists('ferry-fixture/edge:1')).toBe(false);
    expect(exists('ferry-fixture/edge:latest')).toBe(false);

    const none = ferry(['load', fixture, '--image', 'ferry-fixture/nothing:1'], {env: env()});
    expectOneLineError(none, 'ferry-fixture/nothing:1');
    expect(exists('ferry-fixture/edge:1')).toBe(false);
  });

  it('docker refusing the archive part way (a layer it cannot apply): its message, exit 1, and the names loaded before it are removed again or pointed back', () => {
    const previous = crafted('previous', 'ferry-test/rb:moved');
    dockerd.docker(['load', '-i', previous.file]);
    const first = crafted('rb-new', 'ferry-test/rb:new');
    const second = crafted('rb-moved', 'ferry-test/rb:moved');
    // A hard link to a path no layer has: ferry streams the blob (its digest is right); docker's
    // ApplyLayer fails on it, after it has loaded and tagged the images before it.
    const bad = craftBusybox(path.join(dir, 'rb-bad.tar'), 'ferry-test/rb:bad', 'bad\n', [[{path: 'x/'}, {path: 'x/link', type: 'hardlink', linkname: 'nowhere/file'}]]);
    const archive = mergeDockerArchives(path.join(dir, 'rb.tar'), [first.file, second.file, bad.file]);
    expect(dockerArchiveFacts(archive).map((i) => i.repoTags)).toEqual([['ferry-test/rb:new'], ['ferry-test/rb:moved'], ['ferry-test/rb:bad']]);

    // docker load itself leaves the first two loaded and tagged: the contrast, and docker's own words.
    const plain = dockerd.dockerRaw(['load', '-i', archive]);
    expect(plain.status).not.toBe(0);
    const message = plain.stderr.trim().split('\n').at(-1)!;
    expect(message).toContain('no such file or directory');
    expect(inspect('ferry-test/rb:new').Id).toBe(first.id);
    expect(inspect('ferry-test/rb:moved').Id).toBe(second.id);
    dockerd.docker(['rmi', 'ferry-test/rb:new']);
    dockerd.docker(['tag', previous.id, 'ferry-test/rb:moved']);
    expect(inspect('ferry-test/rb:moved').Id).toBe(previous.id);

    const r = ferry(['load', archive], {env: env()});
    expectOneLineError(r, 'refused', message, dockerd.sock, 'DOCKER_HOST');
    expect(exists('ferry-test/rb:new')).toBe(false);
    expect(exists('ferry-test/rb:bad')).toBe(false);
    expect(inspect('ferry-test/rb:moved').Id).toBe(previous.id);
    expect(exists(first.id)).toBe(false);
  });

  it('an error in the daemon\'s load stream (fake daemon): its message, exit 1, the name it had set removed and the one it had moved pointed back', async () => {
    const c = crafted('fake', 'ferry-test/fake:1');
    const c2 = craftBusybox(path.join(dir, 'fake2.tar'), 'ferry-test/fake:2', 'two\n');
    const archive = mergeDockerArchives(path.join(dir, 'fake-both.tar'), [c.file, c2.file]);
    const old = sha256('an older image');
    const sock = path.join(dir, 'fake.sock');
    const fake = await startFakeDaemon(sock, {
      images: {'ferry-test/fake:2': old},
      loadMessages: [
        {stream: 'Loaded image: ferry-test/fake:1\n', tag: ['ferry-test/fake:1', c.id]},
        {stream: 'Loaded image: ferry-test/fake:2\n', tag: ['ferry-test/fake:2', c2.id]},
        {errorDetail: {message: 'fake refusal: no space left on device'}, error: 'fake refusal: no space left on device'},
      ],
    });
    try {
      const r = await ferryAsync(['load', archive, '--host', `unix://${sock}`], {env: env()});
      expectOneLineError(r, 'fake refusal: no space left on device', sock, '--host');
      expect(fake.requests.some((q) => q.method === 'POST' && q.url.startsWith('/v1.41/images/load'))).toBe(true);
      expect(fake.images.has('ferry-test/fake:1')).toBe(false);
      expect(fake.images.get('ferry-test/fake:2')).toBe(old);
    } finally {
      await fake.close();
    }
  });

  it('what Docker 23/24 (API 1.43) and Docker 25+ (API 1.45, spoken as 1.44) are sent: fake daemons keep the upload, skopeo reads it', async () => {
    const form = forms.get(FORMS[3])!; // zstd layers: kept for both
    for (const [api, spoken, layout] of [['1.43', '1.43', 'legacy'], ['1.45', '1.44', 'oci']] as const) {
      const sock = path.join(dir, `api-${api}.sock`);
      const upload = path.join(dir, `upload-${api}.tar`);
      const fake = await startFakeDaemon(sock, {apiVersion: api, uploadTo: upload, loadMessages: [{stream: 'Loaded image: ferry-test/load:zstd-d\n'}]});
      try {
        const r = await ferryAsync(['load', form.source, '--host', `unix://${sock}`], {env: env()});
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout.trim()).toBe('Loaded image: ferry-test/load:zstd-d');
        expect(fake.requests.filter((q) => q.method === 'POST').map((q) => q.url)).toEqual([`/v${spoken}/images/load?quiet=1`]);
      } finally {
        await fake.close();
      }
      const members = execFileSync('tar', ['-tf', upload], {encoding: 'utf8'}).split('\n');
      expect(members.includes('index.json'), members.join(' ')).toBe(layout === 'oci');
      const [image] = dockerArchiveFacts(upload);
      expect(image).toEqual({repoTags: ['ferry-test/load:zstd-d'], configDigest: form.id, diffIds: form.diffIds, compressions: form.diffIds.map(() => 'zstd')});
      const seen = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${upload}`], {encoding: 'utf8'})) as {Layers: string[]};
      expect(seen.Layers).toEqual(form.diffIds);
    }
  });

  it('no daemon at the socket: one line naming the socket and what chose it (--host, DOCKER_HOST, docker context, the default)', async () => {
    const home = path.join(dir, 'home-missing');
    mkdirSync(path.join(home, '.docker'), {recursive: true});
    const src = forms.get(FORMS[0])!.source;
    const missing = path.join(dir, 'nothing-here.sock');
    const run = (args: string[], extra: NodeJS.ProcessEnv, at = home) => ferryAsync(args, {env: cleanEnv(at, extra), exactEnv: true});
    expectOneLineError(await run(['load', src, '--host', `unix://${missing}`], {DOCKER_HOST: dockerd.host}), missing, '--host');
    expectOneLineError(await run(['load', src], {DOCKER_HOST: `unix://${missing}`}), missing, 'DOCKER_HOST');
    // A context made by the docker CLI itself, pointing at a socket nobody serves.
    execFileSync('/usr/bin/docker', ['context', 'create', 'gone', '--docker', `host=unix://${missing}`], {env: cleanEnv(home), stdio: 'ignore'});
    expectOneLineError(await run(['load', src], {DOCKER_CONTEXT: 'gone'}), missing, 'docker context gone');
    if (!existsSync('/var/run/docker.sock')) expectOneLineError(await run(['load', src], {}, path.join(dir, 'home-empty')), '/var/run/docker.sock', 'default');
  });

  it('permission denied on the socket: one line naming it and what chose it', async () => {
    // Everything but the socket is open to anyone: only the socket's mode may stop the caller.
    const open = mkdtempSync('/tmp/ferry-perm-');
    chmodSync(open, 0o755);
    const sock = path.join(open, 'docker.sock');
    const fake = await startFakeDaemon(sock);
    try {
      chmodSync(sock, 0o000);
      const src = path.join(open, 'image.tar');
      cpSync(forms.get(FORMS[0])!.source, src);
      chmodSync(src, 0o644);
      const home = path.join(open, 'home');
      mkdirSync(home, {mode: 0o777});
      chmodSync(home, 0o777);
      // root passes any mode check: the same call as an unprivileged user (nobody) is what users meet.
      const asUser = process.getuid?.() === 0 ? {uid: 65534, gid: 65534} : {};
      const r = await ferryAsync(['load', src], {env: {...cleanEnv(home), DOCKER_HOST: `unix://${sock}`, TMPDIR: home}, exactEnv: true, ...asUser});
      expectOneLineError(r, 'permission denied', sock, 'DOCKER_HOST');
      expect(fake.requests).toEqual([]);
    } finally {
      await fake.close();
      rmSync(open, {recursive: true, force: true});
    }
  });

  it('an API older than 1.24 (fake daemon answering API-Version 1.12): one line naming the version, the socket and what chose it', async () => {
    const sock = path.join(dir, 'old.sock');
    const fake = await startFakeDaemon(sock, {apiVersion: '1.12'});
    try {
      const r = await ferryAsync(['load', forms.get(FORMS[0])!.source, '-H', `unix://${sock}`], {env: env()});
      expectOneLineError(r, '1.12', '1.24', sock, '--host');
      expect(fake.requests.map((q) => q.url)).not.toContainEqual(expect.stringContaining('/images/load'));
    } finally {
      await fake.close();
    }
  });
});
