// Set-up shared by the STARTTLS scenarios: the .mc lines for posthorn's TLS
// client, a posthorn daemon that offers STARTTLS with the test certificates, a
// client session upgraded with STARTTLS, and the main.cf lines that make
// Postfix offer STARTTLS.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn, type Posthorn } from './posthorn';
import type { CertFile, TestCerts } from '../tls/certs';
import { TestSmtpClient } from '../tls/smtp-client';

/** .mc lines that make posthorn's SMTP client trust the test CA and present the client certificate. */
export function clientTlsMc(certs: TestCerts): string[] {
  return [
    `define(\`confCACERT', \`${certs.caCert}')`,
    `define(\`confCLIENT_CERT', \`${certs.client.cert}')`,
    `define(\`confCLIENT_KEY', \`${certs.client.key}')`,
  ];
}

/** .mc line that reads the access map from the text file `file`. */
export function textAccessDbMc(file: string): string {
  return `FEATURE(\`access_db', \`text ${file}')`;
}

/**
 * main.cf lines that make Postfix offer STARTTLS with the test server
 * certificate, ask for a client certificate, and record TLS in its log and in
 * the Received: header.
 */
export function postfixTlsMainCf(certs: TestCerts): string[] {
  return [
    `smtpd_tls_cert_file = ${certs.server.cert}`,
    `smtpd_tls_key_file = ${certs.server.key}`,
    `smtpd_tls_CAfile = ${certs.caCert}`,
    'smtpd_tls_security_level = may',
    'smtpd_tls_ask_ccert = yes',
    'smtpd_tls_received_header = yes',
    'smtpd_tls_loglevel = 1',
  ];
}

export interface TlsPosthornOptions {
  /** Text of the access map (default empty). */
  access?: string;
  /** More .mc lines, after the TLS lines. */
  extra?: string[];
  /** A DAEMON_OPTIONS line that replaces the default one, e.g. with M=s. */
  daemon?: string;
  /** ServerKeyFile in place of the test server key. */
  keyFile?: string;
  /** Lines in place of the CACertFile line, e.g. a CACertPath. */
  ca?: string[];
  /** Adds the CRL that revokes the `revoked` client certificate. */
  crl?: boolean;
  /** Leaves out ServerCertFile and ServerKeyFile. */
  noCert?: boolean;
}

const DEFAULT_DAEMON = "DAEMON_OPTIONS(`Port=@PORT@, Addr=@ADDR@, Name=MTA')";

let accessFiles = 0;

/**
 * Starts posthorn with the test server certificate and key, the test CA, log
 * level 12 (which logs the client certificate) and an access map in a file of
 * its own under certs.dir. The caller stops it.
 */
export async function startTlsPosthorn(certs: TestCerts, opts: TlsPosthornOptions = {}): Promise<Posthorn> {
  const accessPath = path.join(certs.dir, `access-${accessFiles++}`);
  fs.writeFileSync(accessPath, opts.access ?? '');
  const serverCert = [
    `define(\`confSERVER_CERT', \`${certs.server.cert}')`,
    `define(\`confSERVER_KEY', \`${opts.keyFile ?? certs.server.key}')`,
  ];
  const lines = [
    ...(opts.noCert ? [] : serverCert),
    ...(opts.ca ?? [`define(\`confCACERT', \`${certs.caCert}')`]),
    ...(opts.crl ? [`define(\`confCRL', \`${certs.crl}')`] : []),
    "define(`confLOG_LEVEL', `12')",
    textAccessDbMc(accessPath),
    ...(opts.extra ?? []),
  ];
  let mc = baseMc({ extra: lines });
  if (opts.daemon) mc = mc.replace(DEFAULT_DAEMON, opts.daemon);
  return startPosthorn({ mc });
}

/**
 * Connects (from `localAddress` when given), asserts the greeting, the
 * STARTTLS keyword in the EHLO reply and the 220 to STARTTLS, and runs the
 * handshake with the optional client certificate. The session then needs a
 * new EHLO.
 */
export async function startTlsSession(port: number, cert?: CertFile, localAddress?: string): Promise<TestSmtpClient> {
  const c = await TestSmtpClient.connect(port, localAddress);
  assert.match(await c.reply(), /^220 /);
  assert.match(await c.command('EHLO client.posthorn.test'), /250-STARTTLS/);
  assert.equal(await c.command('STARTTLS'), '220 2.0.0 Ready to start TLS');
  await c.startTls(cert ?? {});
  return c;
}
