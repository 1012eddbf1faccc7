/**
 * The same digest-exact round trip through the real registry's secured variants: TLS with a test CA
 * (trusted through --cert-dir, refused without it), htpasswd Basic auth (--creds, and `ferry login`
 * writing docker's config.json, which push and pull then use; `ferry logout` forgets it), and token
 * auth from a token server in this process (so every peer and ferry run with an async spawn).
 * skopeo, given the same trust and credentials, judges each push.
 */
import {readFileSync, rmSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FIXTURES} from '../helpers/cli.js';
import {peerMissing} from '../helpers/peers.js';
import {startRegistry, type RunningRegistry} from '../helpers/registry.js';
import {execOk, ferry, ferryOk, isolatedEnv, sha256, tempDir} from './common.js';

const SOURCE = `oci-archive:${path.join(FIXTURES, 'edge.skopeo.oci-archive.tar')}`;

describe.skipIf(peerMissing('docker-registry', 'skopeo', 'openssl', 'htpasswd'))('secured registries: TLS, htpasswd, token auth (distribution 2.8.2, judged by skopeo)', () => {
  let work: string;
  let expected: string;
  const registries: RunningRegistry[] = [];

  beforeAll(async () => {
    work = tempDir('ferry-reg-auth-');
    expected = sha256((await execOk('skopeo', ['inspect', '--raw', SOURCE])).stdoutBytes);
  });
  afterAll(async () => {
    await Promise.all(registries.map((r) => r.stop()));
    if (work) rmSync(work, {recursive: true, force: true});
  });

  async function start(options: Parameters<typeof startRegistry>[0]): Promise<RunningRegistry> {
    const reg = await startRegistry(options);
    registries.push(reg);
    return reg;
  }

  /** skopeo's digest of REF with the registry's trust and credentials. */
  async function skopeoDigest(reg: RunningRegistry, ref: string): Promise<string> {
    const trust = reg.hostCertDir ? ['--cert-dir', reg.hostCertDir] : ['--tls-verify=false'];
    const creds = reg.credentials ? ['--creds', `${reg.credentials.username}:${reg.credentials.password}`] : [];
    return sha256((await execOk('skopeo', ['inspect', '--raw', ...trust, ...creds, `docker://${ref}`])).stdoutBytes);
  }

  it('TLS: --cert-dir trusts the test CA; without it the certificate is refused, in one line', async () => {
    const reg = await start({tls: true});
    const env = isolatedEnv(path.join(work, 'tls'));
    const ref = `${reg.host}/tls/edge:1`;
    const refused = await ferry(['push', SOURCE, ref], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/certificate|self.signed|unable to verify/i);
    await ferryOk(['push', '--cert-dir', reg.hostCertDir!, SOURCE, ref], env);
    expect(await skopeoDigest(reg, ref)).toBe(expected);
    const dest = path.join(work, 'tls.tar');
    expect((await ferryOk(['pull', '--cert-dir', reg.hostCertDir!, ref, dest], env)).stdout).toContain(`pulled ${ref} ${expected}`);
    // --tls-verify=false reads it without the CA.
    expect((await ferryOk(['tags', '--tls-verify=false', `${reg.host}/tls/edge`], env)).stdout.trim()).toBe('1');
  });

  it('htpasswd: --creds, or ferry login (docker config.json) then push and pull without flags; logout forgets', async () => {
    const reg = await start({auth: 'htpasswd'});
    const env = isolatedEnv(path.join(work, 'htpasswd'));
    const {username, password} = reg.credentials!;
    const ref = `${reg.host}/basic/edge:1`;
    const anonymous = await ferry(['push', SOURCE, ref], env);
    expect(anonymous.code).toBe(1);
    // One line: the blobs in flight beside the failed one end quietly (no "retrying" note after the error).
    expect(anonymous.stderr.trim().split('\n')).toHaveLength(1);
    expect(anonymous.stderr).toMatch(/asks for a user name and password \(ferry login /);
    await ferryOk(['push', '--creds', `${username}:${password}`, SOURCE, ref], env);
    expect(await skopeoDigest(reg, ref)).toBe(expected);

    // A wrong password is refused at login, and nothing is written.
    const wrong = await ferry(['login', reg.host, '-u', username, '--password-stdin'], env, {input: `not-${password}\n`});
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).not.toContain(password);
    const config = path.join(env.DOCKER_CONFIG!, 'config.json');
    await ferryOk(['login', reg.host, '-u', username, '--password-stdin'], env, {input: `${password}\n`});
    const auths = (JSON.parse(readFileSync(config, 'utf8')) as {auths: Record<string, {auth: string}>}).auths;
    expect(Buffer.from(auths[reg.host]!.auth, 'base64').toString()).toBe(`${username}:${password}`);
    // skopeo reads the same config.json (docker's format) and agrees.
    expect(sha256((await execOk('skopeo', ['inspect', '--raw', '--tls-verify=false', '--authfile', config, `docker://${ref}`])).stdoutBytes)).toBe(expected);
    const ref2 = `${reg.host}/basic/edge:2`;
    await ferryOk(['push', SOURCE, ref2], env);
    expect(await skopeoDigest(reg, ref2)).toBe(expected);
    expect((await ferryOk(['pull', ref2, `oci:${path.join(work, 'basic.oci')}`], env)).stdout).toContain(expected);
    await ferryOk(['logout', reg.host], env);
    expect((JSON.parse(readFileSync(config, 'utf8')) as {auths?: Record<string, unknown>}).auths?.[reg.host]).toBeUndefined();
    expect((await ferry(['tags', `${reg.host}/basic/edge`], env)).code).toBe(1);
  });

  it('token auth: ferry does the token dance with --creds for push, pull and tags; a user without access is refused', async () => {
    const reg = await start({auth: 'token', users: {alice: 'wonderland', bob: 'builder'}, token: {allowedUsers: ['alice']}});
    const env = isolatedEnv(path.join(work, 'token'));
    const ref = `${reg.host}/token/edge:1`;
    await ferryOk(['push', '--creds', 'alice:wonderland', SOURCE, ref], env);
    expect(await skopeoDigest(reg, ref)).toBe(expected);
    const ts = reg.tokenServer!;
    expect(ts.requests.some((r) => r.user === 'alice' && r.scopes.includes('repository:token/edge:pull,push') && r.status === 200)).toBe(true);
    expect((await ferryOk(['pull', '--creds', 'alice:wonderland', ref, path.join(work, 'token.tar')], env)).stdout).toContain(expected);
    expect((await ferryOk(['tags', '--creds', 'alice:wonderland', `${reg.host}/token/edge`], env)).stdout.trim()).toBe('1');
    const bob = await ferry(['pull', '--creds', 'bob:builder', ref, path.join(work, 'bob.tar')], env);
    expect(bob.code).toBe(1);
    expect(bob.stderr.trim().split('\n')).toHaveLength(1);
    expect(bob.stderr).not.toContain('builder');
  });
});
