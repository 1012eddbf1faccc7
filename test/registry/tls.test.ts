/**
 * TLS against the real registry (distribution 2.8.2 serving HTTPS with a CA made at test time):
 * without the CA ferry fails with one line that says how to trust it, and never falls back to plain
 * HTTP; `--cert-dir`, podman's per-user certs.d tree and `--tls-verify=false` each make it work; a
 * registry that demands a client certificate gets the `*.cert`/`*.key` pair; login takes the same
 * flags. skopeo, given the same directory, judges what ferry pushed; digests are computed here.
 */
import {copyFileSync, existsSync, mkdirSync, readFileSync} from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {peerMissing} from '../helpers/peers.js';
import {startRegistry, type RunningRegistry} from '../helpers/registry.js';
import {basic, buildImage, execOk, expectNoSecrets, ferry, layoutDigests, makeSandbox, oneErrorLine, outputsOf, rawManifest, rawPush, readDockerConfig, secretForms, sha256, writeLayout, type Sandbox} from './auth-kit.js';

/** A TCP relay in front of a registry that records the first byte of every connection (0x16: a TLS handshake; 'G', 'H', 'P': plain HTTP). */
async function startRelay(targetPort: number): Promise<{port: number; host: string; firstBytes: number[]; stop(): Promise<void>}> {
  const firstBytes: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    const upstream = net.connect({host: '127.0.0.1', port: targetPort});
    sockets.add(upstream);
    client.once('data', (chunk: Buffer) => firstBytes.push(chunk[0]!));
    client.pipe(upstream).pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen({host: '127.0.0.1', port: 0}, () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    host: `127.0.0.1:${port}`,
    firstBytes,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A certs.d host directory under the sandbox's ~/.config/containers/certs.d (podman's per-user tree). */
function userCertsDir(sandbox: Sandbox, host: string): string {
  const dir = path.join(sandbox.home, '.config', 'containers', 'certs.d', host);
  mkdirSync(dir, {recursive: true});
  return dir;
}

describe.skipIf(peerMissing('docker-registry', 'openssl', 'skopeo'))('TLS against docker-registry 2.8.2', () => {
  let reg: RunningRegistry;
  let ca: Buffer;
  const image = buildImage('tls image', {layers: 2});
  const sandboxes: Sandbox[] = [];
  const sandbox = (): Sandbox => {
    const s = makeSandbox('freg-tls-');
    sandboxes.push(s);
    return s;
  };

  beforeAll(async () => {
    reg = await startRegistry({tls: true});
    ca = readFileSync(reg.caFile!);
    await rawPush({url: reg.url, ca}, 'tls/app', '1', image);
  });
  afterAll(async () => {
    await reg?.stop();
    for (const s of sandboxes) s.cleanup();
  });

  it('without the CA: pull, push, tags and login fail with one line naming --cert-dir, certs.d and --tls-verify=false; nothing is written', async () => {
    const sb = sandbox();
    const layout = writeLayout(sb.file('layout'), [{built: buildImage('never pushed'), name: '1'}]);
    const dest = sb.file('pulled');
    const runs = {
      pull: await ferry(sb, ['pull', `${reg.host}/tls/app:1`, `oci:${dest}`]),
      push: await ferry(sb, ['push', `oci:${layout}`, `${reg.host}/tls/other:1`]),
      tags: await ferry(sb, ['tags', `${reg.host}/tls/app`]),
      login: await ferry(sb, ['login', reg.host, '-u', 'someone', '--password-stdin'], {input: 'tls-login-secret-1\n'}),
    };
    for (const [name, r] of Object.entries(runs)) {
      const line = oneErrorLine(r);
      expect(line, name).toContain(reg.host);
      expect(line, name).toMatch(/TLS/);
      expect(line, name).toContain('--cert-dir');
      expect(line, name).toContain(`certs.d/${reg.host}/ca.crt`);
      expect(line, name).toContain('--tls-verify=false');
      expect(r.stdout, name).toBe('');
    }
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(sb.configFile)).toBe(false);
    expect(await rawManifest({url: reg.url, ca}, 'tls/other', '1')).toBeUndefined();
    expectNoSecrets(outputsOf(runs), secretForms('tls-login-secret-1', 'someone'));
  });

  it('never falls back to plain HTTP for a loopback TLS registry that fails verification', async () => {
    const relay = await startRelay(reg.port);
    try {
      const sb = sandbox();
      const failed = await ferry(sb, ['pull', `${relay.host}/tls/app:1`, `oci:${sb.file('pulled')}`]);
      oneErrorLine(failed);
      expect(relay.firstBytes.length).toBeGreaterThan(0);
      // Every connection ferry made opened with a TLS handshake record: no plain-HTTP retry.
      expect(relay.firstBytes.every((b) => b === 0x16), `first bytes: ${relay.firstBytes.join(',')}`).toBe(true);
      // The relay itself carries TLS fine: trusted, the same pull works through it.
      const dir = sb.file('certs');
      mkdirSync(dir);
      copyFileSync(reg.caFile!, path.join(dir, 'ca.crt'));
      const ok = await ferry(sb, ['pull', '--cert-dir', dir, `${relay.host}/tls/app:1`, `oci:${sb.file('pulled')}`]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(relay.firstBytes.every((b) => b === 0x16)).toBe(true);
    } finally {
      await relay.stop();
    }
  });

  it('--cert-dir: ferry pushes, skopeo reads it back with the same directory, ferry pulls and lists tags', async () => {
    const sb = sandbox();
    const pushed = buildImage('pushed over tls', {layers: 3});
    const layout = writeLayout(sb.file('layout'), [{built: pushed, name: '2'}]);
    const push = await ferry(sb, ['push', '--cert-dir', reg.hostCertDir!, `oci:${layout}`, `docker://${reg.host}/tls/pushed:2`]);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout).toContain(pushed.digest);
    const raw = Buffer.from(await execOk('skopeo', ['inspect', '--raw', '--cert-dir', reg.hostCertDir!, `docker://${reg.host}/tls/pushed:2`], {env: sb.env}));
    expect(raw.equals(pushed.manifest)).toBe(true);

    const dest = sb.file('pulled');
    const pull = await ferry(sb, ['pull', '--cert-dir', reg.hostCertDir!, `${reg.host}/tls/app:1`, `oci:${dest}`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(layoutDigests(dest)).toEqual([image.digest]);
    for (const blob of image.blobs) expect(readFileSync(path.join(dest, 'blobs', 'sha256', sha256(blob).slice(7))).equals(blob)).toBe(true);

    const tags = await ferry(sb, ['tags', '--cert-dir', reg.hostCertDir!, '--json', `${reg.host}/tls/app`]);
    expect(tags.code, tags.stderr).toBe(0);
    expect(JSON.parse(tags.stdout)).toEqual({repository: `${reg.host}/tls/app`, tags: ['1']});
  });

  it("a certs.d tree: podman's ~/.config/containers/certs.d/HOST:PORT/ca.crt is trusted with no flag, and only for that HOST:PORT", async () => {
    const sb = sandbox();
    // The CA filed under another port does not make this registry trusted.
    copyFileSync(reg.caFile!, path.join(userCertsDir(sb, '127.0.0.1:1'), 'ca.crt'));
    const refused = await ferry(sb, ['pull', `${reg.host}/tls/app:1`, `oci:${sb.file('pulled')}`]);
    expect(oneErrorLine(refused)).toMatch(/TLS/);
    copyFileSync(reg.caFile!, path.join(userCertsDir(sb, reg.host), 'ca.crt'));
    const dest = sb.file('pulled');
    const pull = await ferry(sb, ['pull', `${reg.host}/tls/app:1`, `oci:${dest}`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(layoutDigests(dest)).toEqual([image.digest]);
  });

  it('--tls-verify=false: pull and push work with no CA anywhere', async () => {
    const sb = sandbox();
    const dest = sb.file('pulled');
    const pull = await ferry(sb, ['pull', '--tls-verify=false', `${reg.host}/tls/app:1`, `oci:${dest}`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(layoutDigests(dest)).toEqual([image.digest]);
    const pushed = buildImage('pushed unverified');
    const push = await ferry(sb, ['push', '--tls-verify=false', `oci:${writeLayout(sb.file('layout'), [{built: pushed, name: '1'}])}`, `${reg.host}/tls/unverified:1`]);
    expect(push.code, push.stderr).toBe(0);
    expect((await rawManifest({url: reg.url, ca}, 'tls/unverified', '1'))?.bytes.equals(pushed.manifest)).toBe(true);
  });
});

describe.skipIf(peerMissing('docker-registry', 'openssl', 'skopeo'))('a registry that demands a client certificate (http.tls.clientcas)', () => {
  let reg: RunningRegistry;
  const sandboxes: Sandbox[] = [];
  beforeAll(async () => {
    reg = await startRegistry({tls: true, clientCerts: true});
  });
  afterAll(async () => {
    await reg?.stop();
    for (const s of sandboxes) s.cleanup();
  });

  /** ca.crt, plus the client pair as `client.cert`/`client.key` when `withClient`. */
  function certDir(dir: string, withClient: boolean): string {
    mkdirSync(dir, {recursive: true});
    copyFileSync(reg.caFile!, path.join(dir, 'ca.crt'));
    if (withClient) {
      copyFileSync(reg.clientCert!.certFile, path.join(dir, 'client.cert'));
      copyFileSync(reg.clientCert!.keyFile, path.join(dir, 'client.key'));
    }
    return dir;
  }

  it('without a client pair: one line saying the registry wants a client certificate and where ferry looks for one', async () => {
    const sb = makeSandbox('freg-tls-');
    sandboxes.push(sb);
    const layout = writeLayout(sb.file('layout'), [{built: buildImage('client cert refused'), name: '1'}]);
    for (const flags of [['--cert-dir', certDir(sb.file('ca-only'), false)], ['--tls-verify=false']]) {
      const r = await ferry(sb, ['push', ...flags, `oci:${layout}`, `${reg.host}/mtls/app:1`]);
      const line = oneErrorLine(r);
      expect(line).toContain(reg.host);
      expect(line).toMatch(/client certificate/);
      expect(line).toContain('.cert');
      expect(line).toContain('.key');
      // OpenSSL's internals are not the user's business.
      expect(line).not.toMatch(/ssl3_|rec_layer|\\x0a/);
    }
  });

  it('a *.cert/*.key pair in --cert-dir or in the certs.d tree is presented; skopeo reads back what ferry pushed', async () => {
    const sb = makeSandbox('freg-tls-');
    sandboxes.push(sb);
    const pushed = buildImage('client cert accepted', {layers: 2});
    const dir = certDir(sb.file('with-client'), true);
    const push = await ferry(sb, ['push', '--cert-dir', dir, `oci:${writeLayout(sb.file('layout'), [{built: pushed, name: '1'}])}`, `${reg.host}/mtls/app:1`]);
    expect(push.code, push.stderr).toBe(0);
    const raw = Buffer.from(await execOk('skopeo', ['inspect', '--raw', '--cert-dir', dir, `docker://${reg.host}/mtls/app:1`], {env: sb.env}));
    expect(raw.equals(pushed.manifest)).toBe(true);

    certDir(path.join(sb.home, '.config', 'containers', 'certs.d', reg.host), true);
    const dest = sb.file('pulled');
    const pull = await ferry(sb, ['pull', `${reg.host}/mtls/app:1`, `oci:${dest}`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(layoutDigests(dest)).toEqual([pushed.digest]);
  });
});

describe.skipIf(peerMissing('docker-registry', 'openssl', 'htpasswd', 'skopeo'))('TLS and Basic auth together', () => {
  it('login takes --cert-dir, checks the password over TLS and stores it; later pulls use it; no secret is printed', async () => {
    const password = 'tls-basic-pw-7fd1c2a9';
    const reg = await startRegistry({tls: true, auth: 'htpasswd', users: {tlsuser: password}});
    const sb = makeSandbox('freg-tls-');
    try {
      const ca = readFileSync(reg.caFile!);
      const image = buildImage('tls basic');
      await rawPush({url: reg.url, ca, authorization: basic({username: 'tlsuser', password})}, 'secure/app', '1', image);
      const login = await ferry(sb, ['login', '--cert-dir', reg.hostCertDir!, reg.host, '-u', 'tlsuser', '--password-stdin'], {input: `${password}\n`});
      expect(login.code, login.stderr).toBe(0);
      expect(login.stdout).toBe('Login Succeeded\n');
      expect((readDockerConfig(sb).auths as Record<string, unknown>)[reg.host]).toEqual({auth: Buffer.from(`tlsuser:${password}`).toString('base64')});
      const dest = sb.file('pulled');
      const report = sb.file('report.json');
      const pull = await ferry(sb, ['pull', '--json', '--report', report, '--cert-dir', reg.hostCertDir!, `${reg.host}/secure/app:1`, `oci:${dest}`]);
      expect(pull.code, pull.stderr).toBe(0);
      expect(layoutDigests(dest)).toEqual([image.digest]);
      expectNoSecrets({...outputsOf({login, pull}), report: readFileSync(report, 'utf8')}, secretForms(password, 'tlsuser'));
    } finally {
      await reg.stop();
      sb.cleanup();
    }
  });
});
