/**
 * Docker credential helpers, for real: a `docker-credential-ferrytest` shell script placed first on
 * PATH keeps one JSON file per server URL and logs every call (action and server, never the secret).
 * `credsStore` and per-host `credHelpers` each take ferry login's store, pull's get and logout's
 * erase against docker-registry 2.8.2 (htpasswd); an identity token a helper hands out
 * (`Username: "<token>"`) is spent through the token server's refresh grant; a missing or broken
 * helper is one line. No password or token reaches any output.
 */
import {chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {peerMissing} from '../helpers/peers.js';
import {startRegistry, type RunningRegistry} from '../helpers/registry.js';
import {b64, basic, buildImage, expectNoSecrets, ferry, layoutDigests, makeSandbox, oneErrorLine, outputsOf, rawPush, request, secretForms, writeDockerConfig, type ExecResult, type Sandbox} from './auth-kit.js';

const HELPER = `#!/bin/sh
# docker-credential-ferrytest: a credential helper for ferry's tests. One file per server URL under
# $FERRYTEST_STORE (named by the URL's hex), and a log of each call: action and server, no secret.
set -u
store=\${FERRYTEST_STORE:?FERRYTEST_STORE is not set}
action=\${1:-}
input=$(cat)
keyof() { printf '%s' "$1" | od -An -tx1 | tr -d ' \\n'; }
case "$action" in
  store)
    url=$(printf '%s' "$input" | sed -n 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/p')
    printf 'store %s\\n' "$url" >> "$store/log"
    printf '%s' "$input" > "$store/$(keyof "$url").json"
    ;;
  get)
    printf 'get %s\\n' "$input" >> "$store/log"
    f="$store/$(keyof "$input").json"
    if [ -f "$f" ]; then cat "$f"; else echo 'credentials not found in native keychain'; exit 1; fi
    ;;
  erase)
    printf 'erase %s\\n' "$input" >> "$store/log"
    f="$store/$(keyof "$input").json"
    if [ -f "$f" ]; then rm -f "$f"; else echo 'credentials not found in native keychain'; exit 1; fi
    ;;
  list) echo '{}' ;;
  *) echo "unknown action: $action" >&2; exit 1 ;;
esac
`;

/** A helper that fails every call the way a locked keychain does. */
const BROKEN_HELPER = `#!/bin/sh
cat >/dev/null
echo "error: the keychain is locked" >&2
exit 3
`;

interface HelperSandbox extends Sandbox {
  store: string;
  /** The helper's log lines so far. */
  log(): string[];
  /** What the helper holds for a server URL (the JSON ferry stored), or undefined. */
  entry(serverUrl: string): {ServerURL: string; Username: string; Secret: string} | undefined;
  put(serverUrl: string, username: string, secret: string): void;
}

function helperSandbox(): HelperSandbox {
  const sb = makeSandbox('freg-cred-');
  const bin = path.join(sb.root, 'bin');
  const store = path.join(sb.root, 'helper-store');
  mkdirSync(bin);
  mkdirSync(store);
  for (const [name, text] of [['docker-credential-ferrytest', HELPER], ['docker-credential-ferrybroken', BROKEN_HELPER]] as const) {
    writeFileSync(path.join(bin, name), text);
    chmodSync(path.join(bin, name), 0o755);
  }
  sb.env.PATH = `${bin}:${sb.env.PATH ?? '/usr/bin:/bin'}`;
  sb.env.FERRYTEST_STORE = store;
  const file = (url: string): string => path.join(store, `${Buffer.from(url).toString('hex')}.json`);
  return {
    ...sb,
    store,
    log: () => (existsSync(path.join(store, 'log')) ? readFileSync(path.join(store, 'log'), 'utf8').split('\n').filter(Boolean) : []),
    entry: (url) => (existsSync(file(url)) ? (JSON.parse(readFileSync(file(url), 'utf8')) as {ServerURL: string; Username: string; Secret: string}) : undefined),
    put: (url, username, secret) => writeFileSync(file(url), JSON.stringify({ServerURL: url, Username: username, Secret: secret})),
  };
}

describe.skipIf(peerMissing('docker-registry', 'htpasswd', 'openssl'))('docker credential helpers (credsStore, credHelpers) against docker-registry 2.8.2', () => {
  const password = 'helper-pw-5be1d0a7c4';
  const image = buildImage('credential helper image');
  let reg: RunningRegistry;
  const sandboxes: Sandbox[] = [];
  const runs: Record<string, ExecResult> = {};
  const extraSecrets: string[] = [];
  let seq = 0;
  const run = async (sb: Sandbox, args: string[], options: {input?: string} = {}): Promise<ExecResult> => {
    const r = await ferry(sb, args, options);
    runs[`#${seq++} ferry ${args[0]}`] = r;
    return r;
  };
  const sandbox = (): HelperSandbox => {
    const s = helperSandbox();
    sandboxes.push(s);
    return s;
  };

  beforeAll(async () => {
    reg = await startRegistry({auth: 'htpasswd', users: {ferry: password}});
    await rawPush({url: reg.url, authorization: basic({username: 'ferry', password})}, 'cred/app', '1', image);
  });
  afterAll(async () => {
    await reg?.stop();
    for (const s of sandboxes) s.cleanup();
    expectNoSecrets(outputsOf(runs), [...secretForms(password, 'ferry'), ...extraSecrets]);
  });

  /** login stores through the helper, pull gets through it, logout erases through it; config.json is never written. */
  async function helperRoundTrip(sb: HelperSandbox): Promise<void> {
    const config = readFileSync(sb.configFile, 'utf8');
    const login = await run(sb, ['login', reg.host, '-u', 'ferry', '--password-stdin'], {input: `${password}\n`});
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toBe('Login Succeeded\n');
    expect(login.stderr).toContain('credentials stored in docker-credential-ferrytest');
    expect(sb.log()).toEqual([`store ${reg.host}`]);
    expect(sb.entry(reg.host)).toEqual({ServerURL: reg.host, Username: 'ferry', Secret: password});
    // login leaves config.json alone when a helper takes the credentials.
    expect(readFileSync(sb.configFile, 'utf8')).toBe(config);

    const dest = sb.file('pulled');
    const pull = await run(sb, ['pull', `${reg.host}/cred/app:1`, `oci:${dest}`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(layoutDigests(dest)).toEqual([image.digest]);
    expect(sb.log().slice(1)).toEqual([`get ${reg.host}`]);

    const logout = await run(sb, ['logout', reg.host]);
    expect(logout.code, logout.stderr).toBe(0);
    expect(logout.stdout).toBe(`Removed login credentials for ${reg.host}\n`);
    expect(sb.log()).toContain(`erase ${reg.host}`);
    expect(sb.entry(reg.host)).toBeUndefined();
    // logout may rewrite config.json (docker does too), but keeps everything else in it.
    expect(JSON.parse(readFileSync(sb.configFile, 'utf8'))).toEqual(JSON.parse(config));
    const again = await run(sb, ['logout', reg.host]);
    expect(again.stdout).toBe(`Not logged in to ${reg.host}\n`);
    expect(oneErrorLine(await run(sb, ['pull', `${reg.host}/cred/app:1`, `oci:${sb.file('pulled')}`]))).toContain(`ferry login ${reg.host}`);
  }

  it('credsStore: login stores, pull gets, logout erases through docker-credential-ferrytest', async () => {
    const sb = sandbox();
    writeDockerConfig(sb, {credsStore: 'ferrytest'});
    await helperRoundTrip(sb);
  });

  it("credHelpers: the host's own helper is used (over a credsStore that is not even installed); other hosts' entries are left alone", async () => {
    const sb = sandbox();
    writeDockerConfig(sb, {credsStore: 'not-installed-anywhere', credHelpers: {[reg.host]: 'ferrytest'}, auths: {'registry.example:5000': {auth: b64('someone:elsewhere')}}});
    await helperRoundTrip(sb);
  });

  it('a credsStore that is not installed: one line naming docker-credential-NAME; login checks first and stores nothing', async () => {
    const sb = sandbox();
    writeDockerConfig(sb, {credsStore: 'absent-ferrytest'});
    const pull = await run(sb, ['pull', `${reg.host}/cred/app:1`, `oci:${sb.file('pulled')}`]);
    const line = oneErrorLine(pull);
    expect(line).toContain('docker-credential-absent-ferrytest is not installed');
    expect(line).toContain(sb.configFile);
    const login = await run(sb, ['login', reg.host, '-u', 'ferry', '--password-stdin'], {input: `${password}\n`});
    expect(oneErrorLine(login)).toContain('docker-credential-absent-ferrytest is not installed');
    expect(JSON.parse(readFileSync(sb.configFile, 'utf8'))).toEqual({credsStore: 'absent-ferrytest'});
  });

  it("a helper that fails: one line with its exit status and its own first line", async () => {
    const sb = sandbox();
    writeDockerConfig(sb, {credHelpers: {[reg.host]: 'ferrybroken'}});
    const line = oneErrorLine(await run(sb, ['pull', `${reg.host}/cred/app:1`, `oci:${sb.file('pulled')}`]));
    expect(line).toContain('docker-credential-ferrybroken get failed (exit 3): error: the keychain is locked');
  });

  it('a helper handing out an identity token ("<token>") is spent with the refresh grant at the token server', async () => {
    const tokenReg = await startRegistry({auth: 'token', users: {ferry: password}});
    try {
      const sb = sandbox();
      const ts = tokenReg.tokenServer!;
      const form = new URLSearchParams({grant_type: 'password', username: 'ferry', password, access_type: 'offline', service: ts.service, client_id: 'ferry-test'});
      const refresh = (JSON.parse((await request(ts.realm, {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: Buffer.from(form.toString())})).body.toString()) as {refresh_token: string}).refresh_token;
      extraSecrets.push(...secretForms(refresh));
      const pushed = buildImage('identity token via helper');
      const admin = await request(`${ts.realm}?service=${ts.service}&scope=repository:idt/app:pull,push`, {headers: {Authorization: basic({username: 'ferry', password})}});
      await rawPush({url: tokenReg.url, authorization: `Bearer ${(JSON.parse(admin.body.toString()) as {token: string}).token}`}, 'idt/app', '1', pushed);
      writeDockerConfig(sb, {credHelpers: {[tokenReg.host]: 'ferrytest'}});
      sb.put(tokenReg.host, '<token>', refresh);
      ts.resetCounts();
      const dest = sb.file('pulled');
      const pull = await run(sb, ['pull', '--json', `${tokenReg.host}/idt/app:1`, `oci:${dest}`]);
      expect(pull.code, pull.stderr).toBe(0);
      expect(layoutDigests(dest)).toEqual([pushed.digest]);
      expect(ts.requests).toEqual([expect.objectContaining({method: 'POST', grantType: 'refresh_token', user: 'ferry', status: 200})]);
      expect(sb.log()).toEqual([`get ${tokenReg.host}`]);
    } finally {
      await tokenReg.stop();
    }
  });
});
