import {randomBytes} from 'node:crypto';
import {mkdirSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {runOk} from './daemons.js';

/**
 * A throw-away certificate authority and one server certificate it signed, made with openssl at test
 * time (never committed). EC P-256 keys: fast to generate and accepted by Go (skopeo, dockerd,
 * docker-registry) and Node alike.
 */
export interface TestCertificates {
  /** The directory holding every file below. */
  dir: string;
  /** PEM CA certificate: what a client must trust. */
  caFile: string;
  caKeyFile: string;
  /** PEM server certificate (SAN: the requested IPs and DNS names). */
  certFile: string;
  keyFile: string;
}

export interface TestCertificateOptions {
  /** IP subjectAltNames; default ['127.0.0.1']. */
  ips?: string[];
  /** DNS subjectAltNames; default ['localhost']. */
  dnsNames?: string[];
}

function randomSerial(): string {
  // A fresh serial per certificate: clients that cache by issuer+serial must not confuse two runs.
  return `0x${randomBytes(12).toString('hex')}`;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A CA's certificate and key files. */
export interface TestCa {
  caFile: string;
  caKeyFile: string;
}

function makeCa(dir: string, base: string, subject: string): TestCa {
  const ca = {caFile: path.join(dir, `${base}.crt`), caKeyFile: path.join(dir, `${base}.key`)};
  runOk('openssl', ['req', '-x509', ...EC_KEY, '-keyout', ca.caKeyFile, '-out', ca.caFile, '-days', '2', '-set_serial', randomSerial(), '-subj', subject, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return ca;
}

/** A key and a certificate `ca` signed for it, with `extensions` (openssl -extfile lines); the CSR and extension file land beside the certificate. */
function signLeaf(ca: TestCa, files: {certFile: string; keyFile: string}, subject: string, extensions: string[]): void {
  const csrFile = files.certFile.replace(/\.[a-z]+$/, '') + '.csr';
  const extFile = files.certFile.replace(/\.[a-z]+$/, '') + '.ext';
  runOk('openssl', ['req', '-new', ...EC_KEY, '-keyout', files.keyFile, '-out', csrFile, '-subj', subject]);
  writeFileSync(extFile, [...extensions, ''].join('\n'));
  runOk('openssl', ['x509', '-req', '-in', csrFile, '-CA', ca.caFile, '-CAkey', ca.caKeyFile, '-set_serial', randomSerial(), '-days', '2', '-extfile', extFile, '-out', files.certFile]);
}

export function makeTestCertificates(dir: string, options: TestCertificateOptions = {}): TestCertificates {
  mkdirSync(dir, {recursive: true});
  const ips = options.ips ?? ['127.0.0.1'];
  const dnsNames = options.dnsNames ?? ['localhost'];
  const ca = makeCa(dir, 'ca', '/CN=ferry test CA');
  const files = {certFile: path.join(dir, 'server.crt'), keyFile: path.join(dir, 'server.key')};
  // Go ignores the CN since 1.15: the SANs are what make the certificate valid for 127.0.0.1.
  const san = [...ips.map((ip) => `IP:${ip}`), ...dnsNames.map((d) => `DNS:${d}`)].join(',');
  signLeaf(ca, files, `/CN=${ips[0] ?? dnsNames[0] ?? 'ferry-test'}`, [`subjectAltName=${san}`, 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth']);
  return {dir, ...ca, ...files};
}

/** A TLS client's key and certificate (extendedKeyUsage clientAuth), signed by `ca`. */
export function signClientCertificate(ca: TestCa, files: {certFile: string; keyFile: string}): void {
  signLeaf(ca, files, '/CN=ferry test client', ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth']);
}

/** A second throw-away CA and a client certificate it signed: what a registry with `clientcas` asks for. */
export function makeClientCertificate(dir: string): {caFile: string; certFile: string; keyFile: string} {
  mkdirSync(dir, {recursive: true});
  const ca = makeCa(dir, 'client-ca', '/CN=ferry test client CA');
  const files = {certFile: path.join(dir, 'client.cert'), keyFile: path.join(dir, 'client.key')};
  signClientCertificate(ca, files);
  return {caFile: ca.caFile, ...files};
}
