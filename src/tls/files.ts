// Reads the STARTTLS options (ServerCertFile, ServerKeyFile, ClientCertFile,
// ClientKeyFile, CACertFile, CACertPath, CRLFile, CipherList, DHParameters)
// into Node secure-context options, with sendmail's file safety checks.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type { Config } from '../config/types';

/** Returns a string option, or undefined when it is unset or empty. */
export function tlsOption(config: Config, name: string): string | undefined {
  const value = config.options.get(name);
  if (value === undefined || value === '') return undefined;
  return String(value);
}

/** Lists the files whose changes make a secure context stale, for the re-check on each connection. */
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

/** Returns a stamp of the files' identity, size, modes and times, which changes when any of them does. */
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

/** File names of OpenSSL's hashed certificate folders: eight hex digits, a dot, a sequence number. */
const HASHED_CERT_NAME = /^[0-9a-f]{8}\.\d+$/;

/** Reads the PEM certificates of CACertFile and the hash-named files of CACertPath. */
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
    // As OpenSSL's hashed-directory lookup, which sendmail uses, only files
    // named "<subject hash>.<n>" count; `openssl rehash` or c_rehash makes them.
    // NOTE: the hash in the name is not compared with the certificate's
    // subject, so a certificate under a wrong hash name is trusted here while
    // OpenSSL would never find it.
    for (const name of names) {
      if (!HASHED_CERT_NAME.test(name)) continue;
      const full = path.join(dir, name);
      let text: Buffer;
      try {
        if (!fs.statSync(full).isFile()) continue;
        text = fs.readFileSync(full);
      } catch {
        continue;
      }
      if (text.includes('-----BEGIN CERTIFICATE-----')) certs.push(text);
    }
  }
  return certs.length > 0 ? certs : undefined;
}

/**
 * Reads DHParameters by its first character, as sendmail does. `/path` is a
 * PEM file of DH parameters. `1`, `2`, `5`, `i` (sendmail's generated or
 * built-in groups) and an unset option map onto Node's built-in groups,
 * sized to the certificate's key. `n`, `N` and `none` turn DH suites off.
 * Any other value is reported through `warn` and treated as unset.
 */
function dhOptions(config: Config, warn: (message: string) => void): Pick<tls.SecureContextOptions, 'dhparam'> {
  const value = tlsOption(config, 'DHParameters');
  if (value === undefined) return { dhparam: 'auto' };
  if (value.startsWith('/')) return { dhparam: readPem('DHParameters', value) };
  const first = value[0];
  if (first === 'n' || first === 'N') return {};
  if ('125i'.includes(first)) return { dhparam: 'auto' };
  warn(`STARTTLS=server, error: illegal value '${value}' for DHParameters`);
  return { dhparam: 'auto' };
}

/**
 * Checks CipherList with OpenSSL. As sendmail does, a list OpenSSL rejects
 * is reported through `warn` and ignored, so the default ciphers are used.
 */
function cipherOptions(config: Config, side: 'server' | 'client', warn: (message: string) => void): Pick<tls.SecureContextOptions, 'ciphers'> {
  const ciphers = tlsOption(config, 'CipherList');
  if (ciphers === undefined) return {};
  try {
    tls.createSecureContext({ ciphers });
  } catch (err) {
    warn(`STARTTLS=${side}, error: SSL_CTX_set_cipher_list(${ciphers}) failed, list ignored: ${(err as Error).message}`);
    return {};
  }
  return { ciphers };
}

/** Builds the secure-context options of one side. Throws an Error that names the unusable file. */
export function secureContextOptions(
  config: Config,
  side: 'server' | 'client',
  warn: (message: string) => void = () => undefined,
): tls.SecureContextOptions {
  const certName = side === 'server' ? 'ServerCertFile' : 'ClientCertFile';
  const keyName = side === 'server' ? 'ServerKeyFile' : 'ClientKeyFile';
  const certFile = tlsOption(config, certName);
  const keyFile = tlsOption(config, keyName);

  const options: tls.SecureContextOptions = {};
  if (certFile !== undefined) options.cert = readPem(certName, certFile);
  if (keyFile !== undefined) options.key = readKey(keyName, keyFile);
  const anonymous = side === 'server' && tlsServerOptions(config).has('C') && options.cert === undefined && options.key === undefined;
  if (side === 'server' && !anonymous && (options.cert === undefined || options.key === undefined)) {
    throw new Error('ServerCertFile and ServerKeyFile must both be set');
  }
  // TLSSrvOptions C: no server certificate, so only anonymous DH suites can
  // work, and those exist up to TLS 1.2. CipherList must name them, e.g.
  // "aNULL:@SECLEVEL=0", as with sendmail.
  if (anonymous) options.maxVersion = 'TLSv1.2';
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
  Object.assign(options, cipherOptions(config, side, warn));
  if (side === 'server') Object.assign(options, dhOptions(config, warn));
  return options;
}

/**
 * Reads TLSSrvOptions, single letters separated by spaces or commas: `V`
 * means the server does not ask clients for a certificate, `C` that it runs
 * without a certificate of its own.
 */
export function tlsServerOptions(config: Config): Set<string> {
  const value = tlsOption(config, 'TLSSrvOptions') ?? '';
  return new Set(value.split(/[\s,]+/).filter((letter) => letter !== ''));
}

/** Returns whether the server requests a client certificate (TLSSrvOptions without V). */
export function requestsClientCertificate(config: Config): boolean {
  return !tlsServerOptions(config).has('V');
}
