// Makes the certificates the STARTTLS tests need with the openssl command, in
// a fresh temporary folder: a CA with a CRL, a server certificate, client
// certificates (valid, expired, revoked) and one signed by an unknown CA.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCommand } from '../helpers/process';

export interface CertFile {
  cert: string;
  key: string;
}

export interface TestCerts {
  dir: string;
  caCert: string;
  /** A CRL of the CA that revokes `revoked`. */
  crl: string;
  server: CertFile;
  client: CertFile;
  expired: CertFile;
  revoked: CertFile;
  /** Signed by a CA that no test configuration trusts. */
  stranger: CertFile;
  /** The subject and issuer of `client` as OpenSSL prints them in one line. */
  clientSubject: string;
  caSubject: string;
  remove(): void;
}

const CA_CONFIG = `
[ ca ]
default_ca = testca
[ testca ]
dir = @DIR@
database = @DIR@/index.txt
new_certs_dir = @DIR@/newcerts
serial = @DIR@/serial
crlnumber = @DIR@/crlnumber
default_md = sha256
default_crl_days = 30
policy = anything
unique_subject = no
copy_extensions = copy
[ anything ]
countryName = optional
stateOrProvinceName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[ leaf ]
basicConstraints = CA:FALSE
subjectAltName = \${ENV::SAN}
`;

async function openssl(args: string[], env?: NodeJS.ProcessEnv): Promise<void> {
  const result = await runCommand('openssl', args, { env: { ...process.env, ...env }, timeoutMs: 30_000 });
  if (result.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
}

/** Makes a key and a CSR, then has the CA sign it for the given validity period. */
async function issue(
  dir: string,
  name: string,
  subject: string,
  san: string,
  ca: { config: string; cert: string; key: string },
  dates: string[] = ['-days', '30'],
): Promise<CertFile> {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.crt`);
  await openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-subj', subject, '-out', csr]);
  fs.chmodSync(key, 0o600);
  await openssl(
    ['ca', '-batch', '-config', ca.config, '-cert', ca.cert, '-keyfile', ca.key, '-extensions', 'leaf',
      ...dates, '-in', csr, '-out', cert, '-notext'],
    { SAN: san },
  );
  return { cert, key };
}

async function makeCa(dir: string, name: string, subject: string): Promise<{ config: string; cert: string; key: string }> {
  const caDir = path.join(dir, name);
  fs.mkdirSync(path.join(caDir, 'newcerts'), { recursive: true });
  fs.writeFileSync(path.join(caDir, 'index.txt'), '');
  fs.writeFileSync(path.join(caDir, 'serial'), '1000\n');
  fs.writeFileSync(path.join(caDir, 'crlnumber'), '1000\n');
  const config = path.join(caDir, 'ca.cnf');
  fs.writeFileSync(config, CA_CONFIG.replace(/@DIR@/g, caDir));
  const key = path.join(caDir, 'ca.key');
  const cert = path.join(caDir, 'ca.crt');
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-subj', subject, '-days', '30', '-out', cert]);
  return { config, cert, key };
}

/** Creates every certificate in a new temporary folder; call remove() when done. */
export async function makeTestCerts(): Promise<TestCerts> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-certs-'));
  const ca = await makeCa(dir, 'ca', '/C=DE/O=Posthorn Test/CN=Posthorn Test CA');
  const other = await makeCa(dir, 'other', '/C=DE/O=Elsewhere/CN=Unknown CA');

  const server = await issue(dir, 'server', '/C=DE/O=Posthorn Test/CN=mx.posthorn.test',
    'DNS:mx.posthorn.test,DNS:localhost,IP:127.0.0.1', ca);
  const client = await issue(dir, 'client', '/C=DE/O=Posthorn Test/CN=client.posthorn.test',
    'DNS:client.posthorn.test', ca);
  const expired = await issue(dir, 'expired', '/C=DE/O=Posthorn Test/CN=expired.posthorn.test',
    'DNS:expired.posthorn.test', ca, ['-startdate', '20200101000000Z', '-enddate', '20200201000000Z']);
  const revoked = await issue(dir, 'revoked', '/C=DE/O=Posthorn Test/CN=revoked.posthorn.test',
    'DNS:revoked.posthorn.test', ca);
  const stranger = await issue(dir, 'stranger', '/C=DE/O=Elsewhere/CN=stranger.posthorn.test',
    'DNS:stranger.posthorn.test', other);

  await openssl(['ca', '-config', ca.config, '-cert', ca.cert, '-keyfile', ca.key, '-revoke', revoked.cert], { SAN: 'DNS:unused' });
  const crl = path.join(dir, 'ca.crl');
  await openssl(['ca', '-config', ca.config, '-cert', ca.cert, '-keyfile', ca.key, '-gencrl', '-out', crl], { SAN: 'DNS:unused' });

  return {
    dir,
    caCert: ca.cert,
    crl,
    server,
    client,
    expired,
    revoked,
    stranger,
    clientSubject: '/C=DE/O=Posthorn Test/CN=client.posthorn.test',
    caSubject: '/C=DE/O=Posthorn Test/CN=Posthorn Test CA',
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
