import {spawn, type ChildProcess} from 'node:child_process';
import {createHash, createPrivateKey, generateKeyPairSync, randomBytes, randomUUID, sign, timingSafeEqual, X509Certificate, type KeyObject} from 'node:crypto';
import {closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import {runOk} from './daemons.js';
import {makeClientCertificate, makeTestCertificates} from './tls-certs.js';

/**
 * Debian's real registry (docker-registry = distribution 2.8.2) on 127.0.0.1, with a config file we
 * write ourselves: the package's /etc/docker/registry/config.yml listens on :5000 on every
 * interface, so it is never used. Optional TLS (CA made at test time), htpasswd Basic auth, or
 * token auth backed by a Node token server that signs JWTs with a key made at test time.
 */
export const REGISTRY_BIN = '/usr/bin/docker-registry';

/** distribution 2.8.2 accepts a token until exp + 60 s and from nbf - 60 s (registry/auth/token/token.go `Leeway`). */
export const DISTRIBUTION_TOKEN_LEEWAY_SECONDS = 60;

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface Credentials {
  username: string;
  password: string;
}

export interface RegistryOptions {
  /** Serve HTTPS with a server certificate for 127.0.0.1 and localhost signed by a fresh test CA. */
  tls?: boolean;
  /**
   * With tls: require a client certificate signed by a second test CA (distribution's
   * `http.tls.clientcas`, which makes Go demand and verify one). The pair is in `clientCert`.
   */
  clientCerts?: boolean;
  /** 'htpasswd': Basic auth (bcrypt file from `htpasswd -B`); 'token': Bearer tokens from a test token server. */
  auth?: RegistryAuth;
  /** Users for htpasswd or token auth; default one user `ferry` with a random password. */
  users?: Record<string, string>;
  /** Token server options (auth: 'token'); `users` above wins over `token.users`. */
  token?: Omit<TokenServerOptions, 'users'>;
  /** Log level passed to the registry (default 'info'; 'debug' logs every auth decision). */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
}

export interface RunningRegistry {
  /** 'http://127.0.0.1:PORT' or 'https://127.0.0.1:PORT'. */
  url: string;
  /** '127.0.0.1:PORT', as used in image references and certs.d directory names. */
  host: string;
  port: number;
  /** PEM CA to trust (tls only). */
  caFile?: string;
  /** A certs.d-style tree `<certsDir>/<host>/ca.crt` (tls only): docker's /etc/docker/certs.d layout. */
  certsDir?: string;
  /** `<certsDir>/<host>`: the directory skopeo's `--src-cert-dir`/`--dest-cert-dir` want (tls only). */
  hostCertDir?: string;
  /** clientCerts only: a client certificate and key the registry accepts (PEM), and the CA that signed them. Not in certsDir. */
  clientCert?: {certFile: string; keyFile: string; caFile: string};
  /** The first user (htpasswd or token auth). */
  credentials?: Credentials;
  tokenServer?: TokenServer;
  /** The registry's stdout+stderr (access log and application log). */
  logFile: string;
  /** filesystem driver root: blobs under docker/registry/v2/blobs, uploads under …/repositories/<name>/_uploads. */
  storageRoot: string;
  configFile: string;
  /** The helper's temp directory (config, certs, storage, log). Removed by stop(). */
  root: string;
  /** The child's pid (changes on restart()). */
  pid(): number | undefined;
  /**
   * Stops the registry process and starts it again on the same port with the same config, storage and
   * `http.secret`, so upload URLs (their `_state` is HMAC'd with the secret) stay valid across it.
   */
  restart(): Promise<void>;
  /** Stops the registry (SIGTERM, then SIGKILL after a grace period) and the token server; removes root. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1: bind port 0, read the port, close. */
export async function freePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({host: '127.0.0.1', port: 0}, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port from 127.0.0.1:0'))));
    });
  });
}

/** A child's environment without REGISTRY_* variables: distribution lets them override any config key (even http.addr). */
function registryEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REGISTRY_')) env[k] = v;
  return env;
}

/** YAML double-quoted scalars are JSON strings. */
const q = (s: string): string => JSON.stringify(s);

async function probe(url: string, ca: Buffer | undefined, client?: {cert: Buffer; key: Buffer}): Promise<number> {
  return await new Promise<number>((resolve) => {
    const lib = url.startsWith('https:') ? https : http;
    const req = lib.get(url, {timeout: 2000, ...(ca ? {ca} : {}), ...client}, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

async function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

/** Starts docker-registry with its own config; resolves once `GET /v2/` answers (200, or 401 with auth). */
export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  const root = mkdtempSync('/tmp/freg-');
  const storageRoot = path.join(root, 'storage');
  const logFile = path.join(root, 'registry.log');
  const configFile = path.join(root, 'config.yml');
  mkdirSync(storageRoot);
  const auth = options.auth ?? 'none';
  const users = options.users ?? {ferry: randomBytes(12).toString('hex')};
  const firstUser = Object.entries(users)[0];
  let tokenServer: TokenServer | undefined;
  let child: ChildProcess | undefined;
  const cleanup = async (): Promise<void> => {
    if (child) await stopProcess(child);
    await tokenServer?.stop();
    rmSync(root, {recursive: true, force: true});
  };
  try {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const lines = [
      'version: 0.1',
      'log:',
      `  level: ${options.logLevel ?? 'info'}`,
      '  formatter: text',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${q(storageRoot)}`,
      '  delete:',
      '    enabled: true',
      // Uploads must stay put while a test inspects or resumes them.
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: ${q(host)}`,
      // Fixed for the life of the helper: restart() keeps in-flight upload URLs valid.
      `  secret: ${q(randomBytes(24).toString('hex'))}`,
    ];
    let caFile: string | undefined;
    let certsDir: string | undefined;
    let hostCertDir: string | undefined;
    let clientCert: RunningRegistry['clientCert'];
    if (options.tls) {
      const certs = makeTestCertificates(path.join(root, 'tls'));
      caFile = certs.caFile;
      certsDir = path.join(root, 'certs.d');
      hostCertDir = path.join(certsDir, host);
      mkdirSync(hostCertDir, {recursive: true});
      writeFileSync(path.join(hostCertDir, 'ca.crt'), readFileSync(certs.caFile));
      lines.push('  tls:', `    certificate: ${q(certs.certFile)}`, `    key: ${q(certs.keyFile)}`);
      if (options.clientCerts) {
        clientCert = makeClientCertificate(path.join(root, 'client-tls'));
        lines.push('    clientcas:', `      - ${q(clientCert.caFile)}`);
      }
    }
    if (auth === 'htpasswd') {
      const file = path.join(root, 'htpasswd');
      let first = true;
      for (const [user, password] of Object.entries(users)) {
        // -B: bcrypt, the only scheme distribution's htpasswd reader accepts.
        runOk('htpasswd', [first ? '-Bbc' : '-Bb', file, user, password]);
        first = false;
      }
      lines.push('auth:', '  htpasswd:', '    realm: "ferry-test"', `    path: ${q(file)}`);
    } else if (auth === 'token') {
      tokenServer = await startTokenServer({...options.token, users});
      lines.push('auth:', '  token:', `    realm: ${q(tokenServer.realm)}`, `    service: ${q(tokenServer.service)}`, `    issuer: ${q(tokenServer.issuer)}`, `    rootcertbundle: ${q(tokenServer.rootCertFile)}`);
    }
    lines.push('health:', '  storagedriver:', '    enabled: false', '');
    writeFileSync(configFile, lines.join('\n'));
    const url = `${options.tls ? 'https' : 'http'}://${host}`;
    const ca = caFile ? readFileSync(caFile) : undefined;
    const probeClient = clientCert ? {cert: readFileSync(clientCert.certFile), key: readFileSync(clientCert.keyFile)} : undefined;

    const launch = async (): Promise<void> => {
      const fd = openSync(logFile, 'a');
      try {
        child = spawn(REGISTRY_BIN, ['serve', configFile], {stdio: ['ignore', fd, fd], env: registryEnv()});
      } finally {
        closeSync(fd);
      }
      const proc = child;
      const deadline = Date.now() + 20_000;
      for (;;) {
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`docker-registry exited early (${proc.exitCode ?? proc.signalCode}); see ${logFile}`);
        const status = await probe(`${url}/v2/`, ca, probeClient);
        if (status === 200 || status === 401) return;
        if (Date.now() > deadline) throw new Error(`docker-registry did not answer GET /v2/ within 20 s; see ${logFile}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await launch();
    const handle: RunningRegistry = {
      url,
      host,
      port,
      logFile,
      storageRoot,
      configFile,
      root,
      pid: () => child?.pid,
      restart: async () => {
        if (child) await stopProcess(child);
        await launch();
      },
      stop: cleanup,
    };
    if (caFile !== undefined) handle.caFile = caFile;
    if (certsDir !== undefined) handle.certsDir = certsDir;
    if (hostCertDir !== undefined) handle.hostCertDir = hostCertDir;
    if (clientCert !== undefined) handle.clientCert = clientCert;
    if (auth !== 'none' && firstUser) handle.credentials = {username: firstUser[0], password: firstUser[1]};
    if (tokenServer) handle.tokenServer = tokenServer;
    return handle;
  } catch (e) {
    await cleanup();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Token server (Docker token auth, https://distribution.github.io/distribution/spec/auth/token/)
// ---------------------------------------------------------------------------------------------

/**
 * How the JWT names its signing key. distribution 2.8.2 (registry/auth/token/token.go,
 * VerifySigningKey) tries, in order: `x5c` (a certificate chain verified against rootcertbundle),
 * `jwk`, then `kid` read as a libtrust key ID of one of rootcertbundle's public keys.
 */
export type TokenKeyHeader = 'x5c' | 'kid';

export interface TokenServerOptions {
  /** username → password. Only these may authenticate. */
  users: Record<string, string>;
  /** The registry's `auth.token.service` and the token's `aud` (default 'ferry-test-registry'). */
  service?: string;
  /** `iss` (default 'ferry-test-issuer'). */
  issuer?: string;
  /** Token lifetime as told to the client in `expires_in` (default 300). */
  lifetimeSeconds?: number;
  /**
   * Backdate `exp` by this much so the registry's own leeway is cancelled out and it refuses the token
   * right when `expires_in` runs out (default DISTRIBUTION_TOKEN_LEEWAY_SECONDS; 0 for a plain exp).
   */
  registryLeewaySeconds?: number;
  /** What an anonymous request is granted: nothing (default; the token then carries no access) or pull. */
  anonymous?: 'none' | 'pull';
  /** Only these users get any access; others authenticate but receive empty tokens (default: all users). */
  allowedUsers?: string[];
  keyHeader?: TokenKeyHeader;
}

export interface TokenRequestRecord {
  method: 'GET' | 'POST';
  grantType: 'basic' | 'anonymous' | 'password' | 'refresh_token';
  user?: string;
  /** Scopes as requested (`repository:name:pull,push`, `registry:catalog:*`). */
  scopes: string[];
  status: number;
  /** The access actually granted, as `type:name:actions` strings. */
  granted: string[];
  refreshTokenIssued: boolean;
}

export interface TokenServer {
  /** The realm URL (`http://127.0.0.1:PORT/token`). */
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate of the signing key: the registry's `rootcertbundle`. */
  rootCertFile: string;
  /** Every request, in order. */
  requests: TokenRequestRecord[];
  /** How many tokens were issued for requests that asked for exactly this scope string. */
  scopeCount(scope: string): number;
  /** Issued tokens in total. */
  issuedCount(): number;
  resetCounts(): void;
  /** Changes the lifetime of tokens issued from now on. */
  setLifetime(seconds: number): void;
  setKeyHeader(header: TokenKeyHeader): void;
  /** Forgets every refresh token handed out (a refresh grant then fails with invalid_grant). */
  revokeRefreshTokens(): void;
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** libtrust's key ID: sha256 of the DER SubjectPublicKeyInfo, first 240 bits, base32, 12 groups of 4 joined by ':'. */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({type: 'spki', format: 'der'});
  const bytes = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  // 240 bits are exactly 48 base32 characters: no padding, no leftover bits.
  return out.match(/.{4}/g)!.join(':');
}

function parseBasic(header: string | undefined): Credentials | undefined {
  if (!header || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return undefined;
  return {username: decoded.slice(0, i), password: decoded.slice(i + 1)};
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Splits `repository:ns/name:pull,push` (names never contain ':'; the type is the first field, actions the last). */
function parseScope(scope: string): {type: string; name: string; actions: string[]} | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  return {type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean)};
}

async function readBody(req: http.IncomingMessage, limit = 64 * 1024): Promise<string> {
  let size = 0;
  const parts: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error('token request body too large');
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString('utf8');
}

/** A Docker token server on 127.0.0.1: GET with optional Basic credentials, and OAuth2 POST (password and refresh_token grants). */
export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const dir = mkdtempSync('/tmp/ftok-');
  const service = options.service ?? 'ferry-test-registry';
  const issuer = options.issuer ?? 'ferry-test-issuer';
  let lifetime = options.lifetimeSeconds ?? 300;
  const leeway = options.registryLeewaySeconds ?? DISTRIBUTION_TOKEN_LEEWAY_SECONDS;
  let keyHeader: TokenKeyHeader = options.keyHeader ?? 'x5c';
  // The signing key is made by node:crypto; openssl only wraps its public half in a self-signed
  // certificate, because rootcertbundle must hold certificates, not bare keys.
  const {privateKey, publicKey} = generateKeyPairSync('ec', {namedCurve: 'P-256'});
  const keyFile = path.join(dir, 'signer.key');
  const rootCertFile = path.join(dir, 'signer.crt');
  writeFileSync(keyFile, privateKey.export({type: 'pkcs8', format: 'pem'}), {mode: 0o600});
  runOk('openssl', ['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=ferry test token signer', '-days', '2', '-out', rootCertFile]);
  const certDer = new X509Certificate(readFileSync(rootCertFile)).raw;
  const kid = libtrustKeyId(publicKey);
  const signingKey = createPrivateKey(readFileSync(keyFile));

  const requests: TokenRequestRecord[] = [];
  const refreshTokens = new Map<string, string>();
  const allowed = new Set(options.allowedUsers ?? Object.keys(options.users));

  const grant = (user: string | undefined, scopes: string[]): {access: {type: string; name: string; actions: string[]}[]; granted: string[]} => {
    const access: {type: string; name: string; actions: string[]}[] = [];
    for (const s of scopes) {
      const parsed = parseScope(s);
      if (!parsed) continue;
      let actions: string[] = [];
      if (user !== undefined && allowed.has(user)) actions = parsed.actions;
      else if (user === undefined && options.anonymous === 'pull' && parsed.type === 'repository') actions = parsed.actions.filter((a) => a === 'pull');
      if (actions.length > 0) access.push({type: parsed.type, name: parsed.name, actions});
    }
    return {access, granted: access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`)};
  };

  const mint = (user: string | undefined, access: {type: string; name: string; actions: string[]}[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const header: Record<string, unknown> = {typ: 'JWT', alg: 'ES256'};
    if (keyHeader === 'x5c') header.x5c = [certDer.toString('base64')];
    else header.kid = kid;
    // `aud` must be a plain string: 2.8.2's ClaimSet declares it as one and refuses an array as malformed.
    const claims = {iss: issuer, sub: user ?? '', aud: service, exp: now + lifetime - leeway, nbf: now - 1, iat: now, jti: randomUUID(), access};
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    // JOSE ES256 wants the raw r||s pair (libtrust checks its length is 64), not DER.
    const signature = sign('sha256', Buffer.from(input), {key: signingKey, dsaEncoding: 'ieee-p1363'});
    return `${input}.${b64url(signature)}`;
  };

  const send = (res: http.ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text)});
    res.end(text);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/token') return send(res, 404, {errors: [{code: 'NOT_FOUND'}]});
    const record: TokenRequestRecord = {method: req.method === 'POST' ? 'POST' : 'GET', grantType: 'anonymous', scopes: [], status: 0, granted: [], refreshTokenIssued: false};
    requests.push(record);
    const finish = (status: number, body: unknown): void => {
      record.status = status;
      send(res, status, body);
    };
    let user: string | undefined;
    let wantsRefresh = false;
    let params: URLSearchParams;
    if (req.method === 'GET') {
      params = url.searchParams;
      const creds = parseBasic(req.headers.authorization);
      if (creds) {
        record.grantType = 'basic';
        record.user = creds.username;
        const expected = options.users[creds.username];
        if (expected === undefined || !safeEqual(expected, creds.password)) return finish(401, {errors: [{code: 'UNAUTHORIZED', message: 'invalid username or password'}]});
        user = creds.username;
      }
      wantsRefresh = user !== undefined && params.get('offline_token') === 'true';
    } else if (req.method === 'POST') {
      params = new URLSearchParams(await readBody(req));
      const grantType = params.get('grant_type');
      if (grantType === 'password') {
        record.grantType = 'password';
        const username = params.get('username') ?? '';
        record.user = username;
        const expected = options.users[username];
        if (expected === undefined || !safeEqual(expected, params.get('password') ?? '')) return finish(400, {error: 'invalid_grant', error_description: 'invalid username or password'});
        user = username;
        wantsRefresh = params.get('access_type') === 'offline';
      } else if (grantType === 'refresh_token') {
        record.grantType = 'refresh_token';
        const owner = refreshTokens.get(params.get('refresh_token') ?? '');
        if (owner === undefined) return finish(400, {error: 'invalid_grant', error_description: 'unknown refresh token'});
        user = owner;
        record.user = owner;
      } else {
        return finish(400, {error: 'unsupported_grant_type'});
      }
    } else {
      return finish(405, {errors: [{code: 'UNSUPPORTED'}]});
    }
    if (params.get('service') !== service) return finish(400, {error: 'invalid_request', error_description: `unknown service ${JSON.stringify(params.get('service'))}`});
    // GET repeats `scope`; OAuth2 POST separates scopes with spaces.
    record.scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const {access, granted} = grant(user, record.scopes);
    record.granted = granted;
    const token = mint(user, access);
    const body: Record<string, unknown> = {token, access_token: token, expires_in: lifetime, issued_at: new Date().toISOString()};
    if (wantsRefresh && user !== undefined) {
      const refresh = randomBytes(24).toString('hex');
      refreshTokens.set(refresh, user);
      body.refresh_token = refresh;
      record.refreshTokenIssued = true;
    }
    finish(200, body);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, {error: 'server_error', error_description: String(e)});
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({host: '127.0.0.1', port: 0}, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertFile,
    requests,
    scopeCount: (scope) => requests.filter((r) => r.status === 200 && r.scopes.includes(scope)).length,
    issuedCount: () => requests.filter((r) => r.status === 200).length,
    resetCounts: () => {
      requests.length = 0;
    },
    setLifetime: (seconds) => {
      lifetime = seconds;
    },
    setKeyHeader: (header) => {
      keyHeader = header;
    },
    revokeRefreshTokens: () => refreshTokens.clear(),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, {recursive: true, force: true});
    },
  };
}
