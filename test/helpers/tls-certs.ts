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

export function makeTestCertificates(dir: string, options: TestCertificateOptions = {}): TestCertificates {
  mkdirSync(dir, {recursive: true});
  const ips = options.ips ?? ['127.0.0.1'];
  const dnsNames = options.dnsNames ?? ['localhost'];
  const caFile = path.join(dir, 'ca.crt');
  const caKeyFile = path.join(dir, 'ca.key');
  const certFile = path.join(dir, 'server.crt');
  const keyFile = path.join(dir, 'server.key');
  const csrFile = path.join(dir, 'server.csr');
  const extFile = path.join(dir, 'server.ext');
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  runOk('openssl', ['req', '-x509', ...ecKey, '-keyout', caKeyFile, '-out', caFile, '-days', '2', '-set_serial', randomSerial(), '-subj', '/CN=ferry test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  runOk('openssl', ['req', '-new', ...ecKey, '-keyout', keyFile, '-out', csrFile, '-subj', `/CN=${ips[0] ?? dnsNames[0] ?? 'ferry-test'}`]);
  // Go ignores the CN since 1.15: the SANs are what make the certificate valid for 127.0.0.1.
  const san = [...ips.map((ip) => `IP:${ip}`), ...dnsNames.map((d) => `DNS:${d}`)].join(',');
  writeFileSync(extFile, [`subjectAltName=${san}`, 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth', ''].join('\n'));
  runOk('openssl', ['x509', '-req', '-in', csrFile, '-CA', caFile, '-CAkey', caKeyFile, '-set_serial', randomSerial(), '-days', '2', '-extfile', extFile, '-out', certFile]);
  return {dir, caFile, caKeyFile, certFile, keyFile};
}

/** A second throw-away CA and a client certificate (extendedKeyUsage clientAuth) it signed: what a registry with `clientcas` asks for. */
export function makeClientCertificate(dir: string): {caFile: string; certFile: string; keyFile: string} {
  mkdirSync(dir, {recursive: true});
  const caFile = path.join(dir, 'client-ca.crt');
  const caKeyFile = path.join(dir, 'client-ca.key');
  const certFile = path.join(dir, 'client.cert');
  const keyFile = path.join(dir, 'client.key');
  const csrFile = path.join(dir, 'client.csr');
  const extFile = path.join(dir, 'client.ext');
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  runOk('openssl', ['req', '-x509', ...ecKey, '-keyout', caKeyFile, '-out', caFile, '-days', '2', '-set_serial', randomSerial(), '-subj', '/CN=ferry test client CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  runOk('openssl', ['req', '-new', ...ecKey, '-keyout', keyFile, '-out', csrFile, '-subj', '/CN=ferry test client']);
  writeFileSync(extFile, ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth', ''].join('\n'));
  runOk('openssl', ['x509', '-req', '-in', csrFile, '-CA', caFile, '-CAkey', caKeyFile, '-set_serial', randomSerial(), '-days', '2', '-extfile', extFile, '-out', certFile]);
  return {caFile, certFile, keyFile};
}
