import {execFileSync, spawnSync} from 'node:child_process';
import {copyFileSync, mkdirSync, mkdtempSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {DOCKER, startDockerd, type Dockerd} from '../helpers/daemons.js';
import {peerMissing} from '../helpers/peers.js';
import {freePort} from '../helpers/registry.js';
import {makeTestCertificates, signClientCertificate, type TestCa} from '../helpers/tls-certs.js';
import {cleanEnv, craftBusybox, expectOneLineError, ferryAsync, startFakeDaemon, type Crafted} from './support.js';

/**
 * Which daemon docker-daemon: reaches, chosen as the docker CLI chooses: --host, DOCKER_HOST, the
 * context (DOCKER_CONTEXT, else config.json's currentContext), else the default socket. The
 * contexts are made by the docker CLI itself in a private DOCKER_CONFIG, and the docker CLI with
 * the same environment is the judge of which daemon that environment means; the loads land in a
 * private dockerd listening on a unix socket and on a loopback TCP port with mutual TLS (a throw-away CA);
 * plain tcp:// reaches a fake Engine API on another loopback port.
 */
/** cert.pem and key.pem of a TLS client, signed by the given CA, in `dir` (DOCKER_CERT_PATH's names). */
const clientCertificate = (ca: TestCa, dir: string): void => signClientCertificate(ca, {certFile: path.join(dir, 'cert.pem'), keyFile: path.join(dir, 'key.pem')});

describe.skipIf(peerMissing('dockerd', 'python3', 'openssl'))('choosing the daemon: --host, DOCKER_HOST, docker contexts', () => {
  let dir: string;
  let dockerd: Dockerd;
  let tcp: string;
  let certs: string;
  let otherCa: string;
  let image: Crafted;
  let missing: string;
  let n = 0;
  const configDir = (): string => path.join(dir, 'home', '.docker');

  /** The docker CLI (20.10) with exactly this environment: which daemon does it reach? */
  const dockerCli = (env: NodeJS.ProcessEnv, args: string[]) => spawnSync(DOCKER, args, {env, encoding: 'utf8'});
  const reaches = (env: NodeJS.ProcessEnv): boolean => dockerCli(env, ['version', '--format', '{{.Server.Version}}']).status === 0;

  /** ferry load with this environment (and flags), adding a name of its own; true when that name reached our dockerd. */
  async function loadsInto(env: NodeJS.ProcessEnv, flags: string[] = []): Promise<boolean> {
    const tag = `ferry-test/select:${++n}`;
    const r = await ferryAsync(['load', image.file, '--tag', tag, ...flags], {env, exactEnv: true});
    expect(r.status, r.stderr).toBe(0);
    return dockerd.dockerRaw(['image', 'inspect', tag]).status === 0;
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-dselect-'));
    mkdirSync(configDir(), {recursive: true});
    const port = await freePort();
    tcp = `tcp://127.0.0.1:${port}`;
    const tls = makeTestCertificates(path.join(dir, 'tls'));
    // DOCKER_CERT_PATH as the docker CLI reads it: ca.pem, and the client's cert.pem and key.pem
    // (signed by the same CA) for a daemon started with --tlsverify.
    certs = path.join(dir, 'certs');
    mkdirSync(certs);
    copyFileSync(tls.caFile, path.join(certs, 'ca.pem'));
    clientCertificate(tls, certs);
    otherCa = path.join(dir, 'other-certs');
    mkdirSync(otherCa);
    const other = makeTestCertificates(path.join(dir, 'tls-other'));
    copyFileSync(other.caFile, path.join(otherCa, 'ca.pem'));
    clientCertificate(other, otherCa);
    dockerd = await startDockerd({extraArgs: ['-H', tcp, '--tlsverify', '--tlscacert', tls.caFile, '--tlscert', tls.certFile, '--tlskey', tls.keyFile]});
    image = craftBusybox(path.join(dir, 'select.tar'), 'ferry-test/select:base', 'select\n');
    missing = path.join(dir, 'nobody-listens.sock');
    const env = cleanEnv(path.join(dir, 'home'));
    execFileSync(DOCKER, ['context', 'create', 'private', '--docker', `host=${dockerd.host}`], {env, stdio: 'ignore'});
    execFileSync(DOCKER, ['context', 'create', 'gone', '--docker', `host=unix://${missing}`], {env, stdio: 'ignore'});
  });

  afterAll(async () => {
    await dockerd?.stop();
    if (dir) rmSync(dir, {recursive: true, force: true});
  });

  it('DOCKER_CONTEXT: the endpoint of a context the docker CLI made (a unix socket; tcp with the context\'s own TLS files)', async () => {
    const env = cleanEnv(path.join(dir, 'home'), {DOCKER_CONTEXT: 'private'});
    expect(reaches(env)).toBe(true);
    expect(await loadsInto(env)).toBe(true);
    const pem = (f: string): string => path.join(certs, f);
    execFileSync(DOCKER, ['context', 'create', 'private-tls', '--docker', `host=${tcp},ca=${pem('ca.pem')},cert=${pem('cert.pem')},key=${pem('key.pem')}`], {env: cleanEnv(path.join(dir, 'home')), stdio: 'ignore'});
    const tlsEnv = cleanEnv(path.join(dir, 'home'), {DOCKER_CONTEXT: 'private-tls'});
    expect(reaches(tlsEnv)).toBe(true);
    expect(await loadsInto(tlsEnv)).toBe(true);
  });

  it('config.json currentContext (docker context use), when DOCKER_CONTEXT is unset', async () => {
    const home = path.join(dir, 'home-current');
    mkdirSync(path.join(home, '.docker'), {recursive: true});
    const env = cleanEnv(home);
    execFileSync(DOCKER, ['context', 'create', 'private', '--docker', `host=${dockerd.host}`], {env, stdio: 'ignore'});
    execFileSync(DOCKER, ['context', 'use', 'private'], {env, stdio: 'ignore'});
    expect(reaches(env)).toBe(true);
    expect(await loadsInto(env)).toBe(true);
    // DOCKER_CONTEXT wins over currentContext, as for the docker CLI.
    execFileSync(DOCKER, ['context', 'create', 'gone', '--docker', `host=unix://${missing}`], {env, stdio: 'ignore'});
    const gone = cleanEnv(home, {DOCKER_CONTEXT: 'gone'});
    expect(reaches(gone)).toBe(false);
    expectOneLineError(await ferryAsync(['load', image.file], {env: gone, exactEnv: true}), missing, 'docker context gone');
  });

  it('DOCKER_HOST wins over DOCKER_CONTEXT (unix, and tcp with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH)', async () => {
    for (const extra of [{DOCKER_HOST: dockerd.host}, {DOCKER_HOST: tcp, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs}]) {
      const env = cleanEnv(path.join(dir, 'home'), {DOCKER_CONTEXT: 'gone', ...extra});
      expect(reaches(env)).toBe(true);
      expect(await loadsInto(env)).toBe(true);
    }
  });

  it('tcp with TLS: a daemon certificate the CA in DOCKER_CERT_PATH did not sign is one line naming the address and DOCKER_HOST', async () => {
    const env = cleanEnv(path.join(dir, 'home'), {DOCKER_HOST: tcp, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: otherCa});
    expect(reaches(env)).toBe(false);
    expectOneLineError(await ferryAsync(['load', image.file], {env, exactEnv: true}), tcp.slice('tcp://'.length), 'DOCKER_HOST', 'certificate');
  });

  it('plain tcp:// (no TLS variables): the API on that loopback port is the one reached', async () => {
    const port = await freePort();
    const fake = await startFakeDaemon({port}, {loadMessages: [{stream: 'Loaded image: ferry-test/select:base\n'}]});
    try {
      const r = await ferryAsync(['load', image.file], {env: cleanEnv(path.join(dir, 'home'), {DOCKER_HOST: `tcp://127.0.0.1:${port}`}), exactEnv: true});
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('Loaded image: ferry-test/select:base');
      expect(fake.requests.map((q) => q.url)).toContain('/v1.41/images/load?quiet=1');
    } finally {
      await fake.close();
    }
  });

  it('--host wins over DOCKER_HOST and DOCKER_CONTEXT', async () => {
    const env = cleanEnv(path.join(dir, 'home'), {DOCKER_CONTEXT: 'gone', DOCKER_HOST: `unix://${missing}`});
    expect(reaches(env)).toBe(false);
    expect(dockerCli(env, ['--host', dockerd.host, 'version']).status).toBe(0);
    expect(await loadsInto(env, ['--host', dockerd.host])).toBe(true);
    // The TLS variables apply to a tcp:// --host too, as for the docker CLI.
    const withTls = {...env, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs};
    expect(dockerCli(withTls, ['-H', tcp, 'version']).status).toBe(0);
    expect(await loadsInto(withTls, ['-H', tcp])).toBe(true);
    // ferry save and reading commands take it too.
    const saved = path.join(dir, 'saved.tar');
    const r = await ferryAsync(['save', '--host', dockerd.host, 'ferry-test/select:base', saved], {env, exactEnv: true});
    expect(r.status, r.stderr).toBe(0);
    const inspected = await ferryAsync(['inspect', '--json', '-H', dockerd.host, 'docker-daemon:ferry-test/select:base'], {env, exactEnv: true});
    expect(inspected.status, inspected.stderr).toBe(0);
    expect((JSON.parse(inspected.stdout) as {images: Array<{configDigest: string}>}).images[0]!.configDigest).toBe(dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', 'ferry-test/select:base']).trim());
  });

  it('a context nobody made: one line naming it, as the docker CLI refuses it too', async () => {
    const env = cleanEnv(path.join(dir, 'home'), {DOCKER_CONTEXT: 'never-made'});
    expect(dockerCli(env, ['version']).status).not.toBe(0);
    const r = await ferryAsync(['load', image.file], {env, exactEnv: true});
    expect(r.status).not.toBe(0);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('never-made');
  });
});
