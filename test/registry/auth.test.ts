/**
 * Registry authentication against the real registry (distribution 2.8.2): htpasswd Basic auth
 * (anonymous refused with a line naming `ferry login`, `--creds`, `ferry login`/`logout` and the
 * config.json they write, which skopeo accepts, podman's auth.json) and token auth through the test
 * token server (tokens fetched once per scope, identity tokens spent with OAuth2's refresh grant,
 * a mount's source repository in the push scope, a user without access). Every run's stdout,
 * stderr, --json and --report are searched for the password, its base64 forms and any JWT.
 */
import {readFileSync, statSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {peerMissing} from '../helpers/peers.js';
import {startRegistry, type RunningRegistry, type TokenRequestRecord} from '../helpers/registry.js';
import {b64, basic, buildImage, exec, execOk, expectNoSecrets, fetchToken, ferry, layoutDigests, makeSandbox, oneErrorLine, outputsOf, rawManifest, rawPush, readDockerConfig, request, secretForms, sha256, writeDockerConfig, writeLayout, type ExecResult, type Sandbox} from './auth-kit.js';

/** Anything shaped like a JWT (base64url of `{"` twice, dot-separated): no token may be printed. */
const JWT = /eyJ[\w-]{10,}\.eyJ[\w-]{10,}/;

function expectNoJwt(texts: Record<string, string>): void {
  for (const [where, text] of Object.entries(texts)) expect(JWT.test(text), `a token in ${where}`).toBe(false);
}

describe.skipIf(peerMissing('docker-registry', 'htpasswd', 'skopeo'))('htpasswd (Basic) auth against docker-registry 2.8.2', () => {
  const password = 'basic-pw-3f9a1c77e2';
  const otherPassword = 'other-pw-8b2d4e61a0';
  const users = {ferry: password, other: otherPassword};
  const secrets = [...secretForms(password, 'ferry'), ...secretForms(otherPassword, 'other')];
  const image = buildImage('basic auth image', {layers: 2});
  let reg: RunningRegistry;
  const sandboxes: Sandbox[] = [];
  const sandbox = (): Sandbox => {
    const s = makeSandbox('freg-basic-');
    sandboxes.push(s);
    return s;
  };
  /** Every run of this describe, for the leak check at the end of each test. */
  const runs: Record<string, ExecResult> = {};
  let seq = 0;
  const run = async (sb: Sandbox, args: string[], options: {input?: string; env?: NodeJS.ProcessEnv} = {}): Promise<ExecResult> => {
    const r = await ferry(sb, args, options);
    runs[`#${seq++} ferry ${args[0]}`] = r;
    return r;
  };

  beforeAll(async () => {
    reg = await startRegistry({auth: 'htpasswd', users});
    await rawPush({url: reg.url, authorization: basic({username: 'ferry', password})}, 'basic/app', '1', image);
  });
  afterAll(async () => {
    await reg?.stop();
    for (const s of sandboxes) s.cleanup();
    expectNoSecrets(outputsOf(runs), secrets);
  });

  it('anonymous pull, push and tags: exit 1, one line naming `ferry login HOST`; nothing written', async () => {
    const sb = sandbox();
    const dest = sb.file('pulled');
    const layout = writeLayout(sb.file('layout'), [{built: buildImage('anonymous push'), name: '1'}]);
    for (const r of [await run(sb, ['pull', `${reg.host}/basic/app:1`, `oci:${dest}`]), await run(sb, ['push', `oci:${layout}`, `${reg.host}/basic/anon:1`]), await run(sb, ['tags', `${reg.host}/basic/app`])]) {
      const line = oneErrorLine(r);
      expect(line).toContain(`ferry login ${reg.host}`);
      expect(line).toContain('--creds');
    }
    expect(() => statSync(dest)).toThrow();
    expect(await rawManifest({url: reg.url, authorization: basic({username: 'ferry', password})}, 'basic/anon', '1')).toBeUndefined();
  });

  it('--creds: pull, push and tags work; --json and --report hold no secret', async () => {
    const sb = sandbox();
    const dest = sb.file('pulled');
    const report = sb.file('report.json');
    const pull = await run(sb, ['pull', '--json', '--report', report, '--creds', `ferry:${password}`, `${reg.host}/basic/app:1`, `oci:${dest}`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(layoutDigests(dest)).toEqual([image.digest]);
    expect(JSON.parse(pull.stdout).refs).toEqual([{ref: `${reg.host}/basic/app:1`, digest: image.digest}]);
    const pushed = buildImage('pushed with --creds', {layers: 3});
    const pushReport = sb.file('push-report.json');
    const push = await run(sb, ['push', '--json', '--report', pushReport, '--creds', `other:${otherPassword}`, `oci:${writeLayout(sb.file('layout'), [{built: pushed, name: '1'}])}`, `${reg.host}/basic/pushed:1`]);
    expect(push.code, push.stderr).toBe(0);
    expect((await rawManifest({url: reg.url, authorization: basic({username: 'ferry', password})}, 'basic/pushed', '1'))?.bytes.equals(pushed.manifest)).toBe(true);
    const tags = await run(sb, ['tags', '--json', '--creds', `ferry:${password}`, `${reg.host}/basic/app`]);
    expect(tags.code, tags.stderr).toBe(0);
    expect(JSON.parse(tags.stdout).tags).toEqual(['1']);
    expectNoSecrets({report: readFileSync(report, 'utf8'), pushReport: readFileSync(pushReport, 'utf8')}, secrets);
  });

  it('a wrong password (--creds): exit 1, one line, and neither --json nor --report repeats it', async () => {
    const sb = sandbox();
    const wrong = 'wrong-pw-55e0c9d1b3';
    const report = sb.file('report.json');
    const pull = await run(sb, ['pull', '--json', '--report', report, '--creds', `ferry:${wrong}`, `${reg.host}/basic/app:1`, `oci:${sb.file('pulled')}`]);
    expect(oneErrorLine(pull)).toContain(`${reg.host} refused the credentials`);
    const doc = JSON.parse(pull.stdout) as {ok: boolean; error: {code: string}};
    expect(doc.ok).toBe(false);
    expect(doc.error.code).toBe('AUTH');
    expectNoSecrets({...outputsOf({pull}), report: readFileSync(report, 'utf8')}, secretForms(wrong, 'ferry'));
  });

  it('login --password-stdin checks the password, writes auths to $DOCKER_CONFIG/config.json (0600); pulls and pushes then use it; skopeo accepts the file', async () => {
    const sb = sandbox();
    writeDockerConfig(sb, {auths: {'registry.example:5000': {auth: b64('someone:elsewhere')}}, psFormat: 'table {{.ID}}'});
    const login = await run(sb, ['login', reg.host, '-u', 'ferry', '--password-stdin'], {input: `${password}\n`});
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toBe('Login Succeeded\n');
    expect(login.stderr).toContain(sb.configFile);
    expect(statSync(sb.configFile).mode & 0o777).toBe(0o600);
    // docker's own shape, the other host and the unrelated key kept.
    expect(readDockerConfig(sb)).toEqual({auths: {'registry.example:5000': {auth: b64('someone:elsewhere')}, [reg.host]: {auth: b64(`ferry:${password}`)}}, psFormat: 'table {{.ID}}'});

    const dest = sb.file('pulled');
    const pull = await run(sb, ['pull', `${reg.host}/basic/app:1`, `oci:${dest}`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(layoutDigests(dest)).toEqual([image.digest]);
    const pushed = buildImage('pushed after login');
    const push = await run(sb, ['push', `oci:${writeLayout(sb.file('layout'), [{built: pushed, name: '1'}])}`, `${reg.host}/basic/after-login:1`]);
    expect(push.code, push.stderr).toBe(0);

    // skopeo, given the file ferry wrote, reads what ferry pushed (the registry lets nobody read anonymously).
    const raw = await execOk('skopeo', ['inspect', '--raw', '--tls-verify=false', '--authfile', sb.configFile, `docker://${reg.host}/basic/after-login:1`], {env: sb.env});
    expect(Buffer.from(raw).equals(pushed.manifest)).toBe(true);
  });

  it('login with a wrong password: exit 1, one line, nothing stored (a config.json already there is left byte for byte)', async () => {
    const sb = sandbox();
    const fresh = await run(sb, ['login', reg.host, '-u', 'ferry', '--password-stdin'], {input: 'not-the-password-1\n'});
    expect(oneErrorLine(fresh)).toContain(`login to ${reg.host}: ${reg.host} refused the credentials`);
    expect(() => statSync(sb.configFile)).toThrow();
    writeDockerConfig(sb, {auths: {[reg.host]: {auth: b64(`other:${otherPassword}`)}}});
    const before = readFileSync(sb.configFile);
    const again = await run(sb, ['login', reg.host, '-u', 'ferry', '-p', 'not-the-password-2']);
    // -p earns a warning first; the error is still one line.
    expect(again.stderr.split('\n')[0]).toBe('ferry: a password given with -p shows in ps and shell history; --password-stdin does not');
    oneErrorLine({...again, stderr: again.stderr.split('\n').slice(1).join('\n')});
    expect(readFileSync(sb.configFile).equals(before)).toBe(true);
    expectNoSecrets(outputsOf({fresh, again}), [...secretForms('not-the-password-1', 'ferry'), ...secretForms('not-the-password-2', 'ferry')]);
  });

  it('logout removes the entry from $DOCKER_CONFIG/config.json ("Removed login credentials for HOST"), then says "Not logged in to HOST"; pulls are anonymous again', async () => {
    const sb = sandbox();
    writeDockerConfig(sb, {auths: {[reg.host]: {auth: b64(`ferry:${password}`)}, 'registry.example:5000': {auth: b64('someone:elsewhere')}}});
    const first = await run(sb, ['logout', reg.host]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toBe(`Removed login credentials for ${reg.host}\n`);
    expect(readDockerConfig(sb)).toEqual({auths: {'registry.example:5000': {auth: b64('someone:elsewhere')}}});
    expect(statSync(sb.configFile).mode & 0o777).toBe(0o600);
    const second = await run(sb, ['logout', reg.host]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe(`Not logged in to ${reg.host}\n`);
    expect(oneErrorLine(await run(sb, ['pull', `${reg.host}/basic/app:1`, `oci:${sb.file('pulled')}`]))).toContain(`ferry login ${reg.host}`);
  });

  it("podman's auth.json: written by skopeo login, found through $REGISTRY_AUTH_FILE and in $XDG_RUNTIME_DIR/containers/auth.json", async () => {
    const sb = sandbox();
    const authFile = path.join(sb.root, 'podman-auth.json');
    const login = await exec('skopeo', ['login', '--tls-verify=false', '--authfile', authFile, '-u', 'other', '--password-stdin', reg.host], {env: sb.env, input: `${otherPassword}\n`});
    expect(login.code, login.stderr).toBe(0);
    const dest = sb.file('pulled');
    const viaEnv = await run(sb, ['pull', `${reg.host}/basic/app:1`, `oci:${dest}`], {env: {REGISTRY_AUTH_FILE: authFile}});
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect(layoutDigests(dest)).toEqual([image.digest]);
    // Without the variable that file is not read...
    oneErrorLine(await run(sb, ['pull', `${reg.host}/basic/app:1`, `oci:${sb.file('pulled')}`]));
    // ...but skopeo login's default file, in $XDG_RUNTIME_DIR, is. (skopeo 1.9 writes $DOCKER_CONFIG/config.json instead when that is set.)
    const defaultLogin = await exec('skopeo', ['login', '--tls-verify=false', '-u', 'other', '--password-stdin', reg.host], {env: {...sb.env, DOCKER_CONFIG: undefined}, input: `${otherPassword}\n`});
    expect(defaultLogin.code, defaultLogin.stderr).toBe(0);
    expect(readFileSync(path.join(sb.env.XDG_RUNTIME_DIR!, 'containers', 'auth.json'), 'utf8')).toContain(reg.host);
    const viaXdg = await run(sb, ['pull', `${reg.host}/basic/app:1`, `oci:${sb.file('pulled')}`]);
    expect(viaXdg.code, viaXdg.stderr).toBe(0);
    runs['skopeo login'] = login;
    runs['skopeo login (default file)'] = defaultLogin;
  });

  it('--creds wins over config.json; an auth entry that is not base64 of user:password is named, not printed', async () => {
    const sb = sandbox();
    writeDockerConfig(sb, {auths: {[reg.host]: {auth: b64('ferry:stale-password-1')}}});
    const pull = await run(sb, ['pull', '--creds', `ferry:${password}`, `${reg.host}/basic/app:1`, `oci:${sb.file('pulled')}`]);
    expect(pull.code, pull.stderr).toBe(0);
    const garbage = 'no-colon-in-this-secret-9d2';
    writeDockerConfig(sb, {auths: {[reg.host]: {auth: b64(garbage)}}});
    const bad = await run(sb, ['pull', `${reg.host}/basic/app:1`, `oci:${sb.file('pulled')}`]);
    const line = oneErrorLine(bad);
    expect(line).toContain(sb.configFile);
    expect(line).toContain(reg.host);
    expectNoSecrets(outputsOf({bad}), secretForms(garbage));
  });
});

describe.skipIf(peerMissing('docker-registry', 'openssl', 'skopeo'))('token auth against docker-registry 2.8.2 and the test token server', () => {
  const password = 'token-pw-0c4e8a91d2';
  const malloryPassword = 'mallory-pw-6a1f0b3c95';
  const secrets = [...secretForms(password, 'ferry'), ...secretForms(malloryPassword, 'mallory')];
  let reg: RunningRegistry;
  const image = buildImage('token auth image', {layers: 3});
  const sandboxes: Sandbox[] = [];
  const sandbox = (): Sandbox => {
    const s = makeSandbox('freg-token-');
    sandboxes.push(s);
    return s;
  };
  const runs: Record<string, ExecResult> = {};
  const extraSecrets: string[] = [];
  let seq = 0;
  const run = async (sb: Sandbox, args: string[], options: {input?: string} = {}): Promise<ExecResult> => {
    const r = await ferry(sb, args, options);
    runs[`#${seq++} ferry ${args[0]}`] = r;
    return r;
  };
  const requests = (): TokenRequestRecord[] => reg.tokenServer!.requests;
  const issued = (): TokenRequestRecord[] => requests().filter((r) => r.status === 200);
  const admin = async (scope: string): Promise<string> => `Bearer ${await fetchToken(reg.tokenServer!.realm, reg.tokenServer!.service, scope, {username: 'ferry', password})}`;

  beforeAll(async () => {
    reg = await startRegistry({auth: 'token', users: {ferry: password, mallory: malloryPassword}, token: {allowedUsers: ['ferry']}});
    await rawPush({url: reg.url, authorization: await admin('repository:tok/app:pull,push')}, 'tok/app', '1', image);
  });
  afterAll(async () => {
    await reg?.stop();
    for (const s of sandboxes) s.cleanup();
    const texts = outputsOf(runs);
    expectNoSecrets(texts, [...secrets, ...extraSecrets]);
    expectNoJwt(texts);
  });

  it('anonymous: exit 1, one line naming `ferry login HOST`', async () => {
    const sb = sandbox();
    const line = oneErrorLine(await run(sb, ['pull', `${reg.host}/tok/app:1`, `oci:${sb.file('pulled')}`]));
    expect(line).toContain(`ferry login ${reg.host}`);
  });

  it('push and pull with --creds: one token per scope for the whole run, not one per request', async () => {
    const sb = sandbox();
    const pushed = buildImage('token push', {layers: 5});
    reg.tokenServer!.resetCounts();
    const push = await run(sb, ['push', '--jobs', '4', '--creds', `ferry:${password}`, `oci:${writeLayout(sb.file('layout'), [{built: pushed, name: '1'}])}`, `${reg.host}/tok/pushed:1`]);
    expect(push.code, push.stderr).toBe(0);
    // Six blobs HEADed and uploaded four at a time, then the manifest: all under one scope, one token.
    expect(issued().map((r) => r.scopes)).toEqual([['repository:tok/pushed:pull,push']]);
    expect(requests().every((r) => r.grantType === 'basic' && r.user === 'ferry')).toBe(true);
    expect((await rawManifest({url: reg.url, authorization: await admin('repository:tok/pushed:pull')}, 'tok/pushed', '1'))?.bytes.equals(pushed.manifest)).toBe(true);

    reg.tokenServer!.resetCounts();
    const dest = sb.file('pulled');
    const pull = await run(sb, ['pull', '--jobs', '4', '--creds', `ferry:${password}`, `${reg.host}/tok/pushed:1`, `oci:${dest}`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(layoutDigests(dest)).toEqual([pushed.digest]);
    expect(issued().map((r) => r.scopes)).toEqual([['repository:tok/pushed:pull']]);
  });

  it('login through the token server stores the password; later runs use it', async () => {
    const sb = sandbox();
    const login = await run(sb, ['login', reg.host, '-u', 'ferry', '--password-stdin'], {input: password});
    expect(login.code, login.stderr).toBe(0);
    expect(requests().at(-1)).toMatchObject({grantType: 'basic', user: 'ferry', status: 200});
    const wrong = await run(sb, ['login', reg.host, '-u', 'ferry', '--password-stdin'], {input: 'token-wrong-pw-1'});
    expect(oneErrorLine(wrong)).toContain('refused the credentials');
    extraSecrets.push(...secretForms('token-wrong-pw-1', 'ferry'));
    reg.tokenServer!.resetCounts();
    const dest = sb.file('pulled');
    const pull = await run(sb, ['pull', `${reg.host}/tok/app:1`, `oci:${dest}`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(layoutDigests(dest)).toEqual([image.digest]);
    expect(issued()).toHaveLength(1);
  });

  it('an identity token in config.json is spent with an OAuth2 POST grant_type=refresh_token (no password anywhere)', async () => {
    const sb = sandbox();
    const form = new URLSearchParams({grant_type: 'password', username: 'ferry', password, access_type: 'offline', service: reg.tokenServer!.service, client_id: 'ferry-test'});
    const res = await request(reg.tokenServer!.realm, {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: Buffer.from(form.toString())});
    const refresh = (JSON.parse(res.body.toString()) as {refresh_token: string}).refresh_token;
    expect(typeof refresh).toBe('string');
    extraSecrets.push(...secretForms(refresh));
    // What docker login writes when the registry hands out an identity token.
    writeDockerConfig(sb, {auths: {[reg.host]: {auth: b64('ferry:'), identitytoken: refresh}}});
    reg.tokenServer!.resetCounts();
    const dest = sb.file('pulled');
    const report = sb.file('report.json');
    const pull = await run(sb, ['pull', '--json', '--report', report, `${reg.host}/tok/app:1`, `oci:${dest}`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(layoutDigests(dest)).toEqual([image.digest]);
    expect(requests()).toEqual([expect.objectContaining({method: 'POST', grantType: 'refresh_token', user: 'ferry', status: 200, scopes: ['repository:tok/app:pull']})]);
    expectNoSecrets({report: readFileSync(report, 'utf8')}, secretForms(refresh));

    reg.tokenServer!.revokeRefreshTokens();
    const revoked = await run(sb, ['pull', `${reg.host}/tok/app:1`, `oci:${sb.file('pulled')}`]);
    expect(oneErrorLine(revoked)).toContain(reg.host);
  });

  it('push to repository B mounting a blob pushed to A in the same run asks for pull on A in the same token', async () => {
    const sb = sandbox();
    const one = buildImage('mount one', {shared: 'the shared base layer'});
    const two = buildImage('mount two', {shared: 'the shared base layer'});
    const sharedLayer = one.layers[0]!;
    expect(two.layers[0]!.equals(sharedLayer)).toBe(true);
    const layout = writeLayout(sb.file('layout'), [
      {built: one, name: 'example.com/team/one:1'},
      {built: two, name: 'example.com/team/two:1'},
    ]);
    reg.tokenServer!.resetCounts();
    const push = await run(sb, ['push', '--all', '--json', '--creds', `ferry:${password}`, `oci:${layout}`, `${reg.host}/mirror`]);
    expect(push.code, push.stderr).toBe(0);
    const summary = JSON.parse(push.stdout) as {refs: Array<{ref: string; digest: string}>; transfer: {mounted: number}};
    expect(summary.refs).toEqual([
      {ref: `${reg.host}/mirror/team/one:1`, digest: one.digest},
      {ref: `${reg.host}/mirror/team/two:1`, digest: two.digest},
    ]);
    expect(summary.transfer.mounted).toBe(1);
    const mountToken = issued().find((r) => r.scopes.includes('repository:mirror/team/one:pull') && r.scopes.includes('repository:mirror/team/two:pull,push'));
    expect(mountToken, JSON.stringify(requests())).toBeDefined();
    expect(mountToken!.granted).toEqual(expect.arrayContaining(['repository:mirror/team/one:pull', 'repository:mirror/team/two:pull,push']));
    // The registry's own word: B has the shared layer and serves both manifests.
    const b = await admin('repository:mirror/team/two:pull');
    const head = await request(`${reg.url}/v2/mirror/team/two/blobs/${sha256(sharedLayer)}`, {method: 'HEAD', headers: {Authorization: b}});
    expect(head.status).toBe(200);
    expect((await rawManifest({url: reg.url, authorization: b}, 'mirror/team/two', '1'))?.bytes.equals(two.manifest)).toBe(true);
  });

  it('a user the token server gives no access: exit 1 and one line saying access was denied', async () => {
    const sb = sandbox();
    const layout = writeLayout(sb.file('layout'), [{built: buildImage('mallory push', {layers: 4}), name: '1'}]);
    for (const args of [
      ['push', '--creds', `mallory:${malloryPassword}`, `oci:${layout}`, `${reg.host}/tok/mallory:1`],
      ['pull', '--creds', `mallory:${malloryPassword}`, `${reg.host}/tok/app:1`, `oci:${sb.file('pulled')}`],
    ]) {
      const line = oneErrorLine(await run(sb, args));
      expect(line).toContain(reg.host);
      expect(line).toMatch(/denie|access/);
      expect(line).toMatch(/insufficient_scope/);
    }
  });

  it('a wrong password: exit 1, one line naming the token service', async () => {
    const sb = sandbox();
    const wrong = 'token-wrong-pw-2';
    extraSecrets.push(...secretForms(wrong, 'ferry'));
    const layout = writeLayout(sb.file('layout'), [{built: buildImage('wrong password push', {layers: 4}), name: '1'}]);
    const line = oneErrorLine(await run(sb, ['push', '--creds', `ferry:${wrong}`, `oci:${layout}`, `${reg.host}/tok/wrong:1`]));
    expect(line).toContain(`${reg.host} refused the credentials (401 from its token service)`);
  });
});
