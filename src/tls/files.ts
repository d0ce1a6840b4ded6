// Reads the STARTTLS options (ServerCertFile, ServerKeyFile, ClientCertFile,
// ClientKeyFile, CACertFile, CACertPath, CRLFile, CipherList, DHParameters)
// into Node secure-context options, with sendmail's file safety checks.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tls from 'node:tls';
import type { Config } from '../config/types';

/** Returns a string option, or undefined when it is unset or empty. */
export function tlsOption(config: Config, name: string): string | undefined {
  const value = config.options.get(name);
  if (value === undefined || value === '') return undefined;
  return String(value);
}

/** The files whose changes make a secure context stale, for the re-check on each connection. */
export function watchedFiles(config: Config, side: 'server' | 'client'): string[] {
  const names = side === 'server'
    ? ['ServerCertFile', 'ServerKeyFile', 'CACertFile', 'CACertPath', 'CRLFile', 'DHParameters']
    : ['ClientCertFile', 'ClientKeyFile', 'CACertFile', 'CACertPath', 'CRLFile'];
  const files: string[] = [];
  for (const name of names) {
    const value = tlsOption(config, name);
    if (value !== undefined && value.startsWith('/')) files.push(value);
    else if (value !== undefined && name !== 'DHParameters') files.push(path.resolve(value));
  }
  return files;
}

/** A stamp of the files' identity, size, modes and times; it changes when any of them does. */
export function filesStamp(files: string[]): string {
  return files
    .map((file) => {
      try {
        const s = fs.statSync(file);
        return `${file}:${s.ino}:${s.size}:${s.mode}:${s.mtimeMs}:${s.ctimeMs}`;
      } catch (err) {
        return `${file}:${(err as NodeJS.ErrnoException).code ?? 'error'}`;
      }
    })
    .join('|');
}

function readPem(option: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${option} ${file} is not readable: ${(err as Error).message}`);
  }
}

/**
 * Reads a private key, refusing one that other users may read or any user
 * may change, as sendmail does unless DontBlameSendmail allows it.
 */
function readKey(option: string, file: string): Buffer {
  let mode: number;
  try {
    mode = fs.statSync(file).mode;
  } catch (err) {
    throw new Error(`${option} ${file} is not readable: ${(err as Error).message}`);
  }
  // NOTE: DontBlameSendmail cannot relax this check.
  if ((mode & 0o004) !== 0) throw new Error(`${option} ${file} is readable by other users (mode ${(mode & 0o777).toString(8)})`);
  if ((mode & 0o022) !== 0) throw new Error(`${option} ${file} is group or world writable (mode ${(mode & 0o777).toString(8)})`);
  return readPem(option, file);
}

/** Reads the PEM certificates of CACertFile and every file in CACertPath. */
function readCaCertificates(config: Config): Buffer[] | undefined {
  const certs: Buffer[] = [];
  const file = tlsOption(config, 'CACertFile');
  if (file !== undefined) certs.push(readPem('CACertFile', file));

  const dir = tlsOption(config, 'CACertPath');
  if (dir !== undefined) {
    let names: string[];
    try {
      names = fs.readdirSync(dir).sort();
    } catch (err) {
      throw new Error(`CACertPath ${dir} is not readable: ${(err as Error).message}`);
    }
    // NOTE: OpenSSL looks certificates up by subject hash; Posthorn loads every
    // PEM file of the folder instead, which trusts the same set.
    for (const name of names) {
      const full = path.join(dir, name);
      if (!fs.statSync(full).isFile()) continue;
      const text = fs.readFileSync(full);
      if (text.includes('-----BEGIN CERTIFICATE-----')) certs.push(text);
    }
  }
  return certs.length > 0 ? certs : undefined;
}

/** Options for the DH parameters: a PEM file, or Node's built-in groups for 1, 2, 5, i and none. */
function dhOptions(config: Config): Pick<tls.SecureContextOptions, 'dhparam'> {
  const value = tlsOption(config, 'DHParameters');
  if (value === undefined || !value.startsWith('/')) return {};
  return { dhparam: readPem('DHParameters', value) };
}

/** Builds the secure-context options of one side; throws an Error that says which file is unusable. */
export function secureContextOptions(config: Config, side: 'server' | 'client'): tls.SecureContextOptions {
  const certName = side === 'server' ? 'ServerCertFile' : 'ClientCertFile';
  const keyName = side === 'server' ? 'ServerKeyFile' : 'ClientKeyFile';
  const certFile = tlsOption(config, certName);
  const keyFile = tlsOption(config, keyName);

  const options: tls.SecureContextOptions = {};
  if (certFile !== undefined) options.cert = readPem(certName, certFile);
  if (keyFile !== undefined) options.key = readKey(keyName, keyFile);
  if (side === 'server' && (options.cert === undefined || options.key === undefined)) {
    throw new Error('ServerCertFile and ServerKeyFile must both be set');
  }
  if (side === 'client' && (options.cert === undefined) !== (options.key === undefined)) {
    throw new Error('ClientCertFile and ClientKeyFile must be set together');
  }

  const ca = readCaCertificates(config);
  if (ca !== undefined) options.ca = ca;
  const crlFile = tlsOption(config, 'CRLFile');
  if (crlFile !== undefined) {
    const crl = readPem('CRLFile', crlFile);
    if (!crl.includes('-----BEGIN X509 CRL-----')) throw new Error(`CRLFile ${crlFile} contains no PEM CRL`);
    options.crl = crl;
  }
  const ciphers = tlsOption(config, 'CipherList');
  if (ciphers !== undefined) options.ciphers = ciphers;
  if (side === 'server') Object.assign(options, dhOptions(config));
  return options;
}

/** Reads TLSSrvOptions: V means the server does not ask clients for a certificate. */
export function requestsClientCertificate(config: Config): boolean {
  const value = tlsOption(config, 'TLSSrvOptions') ?? '';
  return !value.split(/[\s,]+/).includes('V');
}
