// The results of a finished TLS handshake as the rest of Posthorn uses them:
// the protocol version, cipher and key lengths, the peer certificate's names,
// and sendmail's ${verify} result, plus the macros and log line built from them.

import type * as tls from 'node:tls';
import { createHash, type X509Certificate } from 'node:crypto';
import { encodeMacroValue } from './encoding';

/**
 * sendmail's ${verify} values. OK, NO, NOT and FAIL describe a completed
 * handshake. The client side sets the others when STARTTLS did not complete:
 * NONE (not used), TEMP (454), USAGE (501), PROTOCOL (other reply),
 * SOFTWARE (handshake failed) and FAILURE (no reply).
 */
export type VerifyResult = 'OK' | 'NO' | 'NOT' | 'FAIL' | 'NONE' | 'TEMP' | 'USAGE' | 'PROTOCOL' | 'SOFTWARE' | 'FAILURE';

export interface TlsInfo {
  /** ${tls_version}, e.g. "TLSv1.3". */
  version: string;
  /** ${cipher}, the OpenSSL cipher suite name. */
  cipher: string;
  /** ${cipher_bits}: effective symmetric key length. */
  cipherBits: number;
  /** ${alg_bits}: maximum key length of the algorithm. */
  algBits: number;
  verify: VerifyResult;
  /** OpenSSL's verification error, e.g. "CERT_HAS_EXPIRED"; "ok" when verified. */
  verifyMessage: string;
  /** Encoded one-line DNs and CNs; empty when the peer sent no certificate. */
  certSubject: string;
  certIssuer: string;
  cnSubject: string;
  cnIssuer: string;
  /** ${cert_md5}: MD5 fingerprint of the peer certificate, "AB:CD:..."; empty without one. */
  certMd5: string;
}

/**
 * Key lengths of a cipher suite from its OpenSSL name: [cipher_bits, alg_bits].
 * Node does not report them, so they are read off the name.
 */
export function cipherBits(name: string): [number, number] {
  const n = name.toUpperCase();
  if (n.includes('CHACHA20')) return [256, 256];
  const sized = /(?:AES|CAMELLIA|ARIA|SEED)[-_]?(\d{3})/.exec(n);
  if (sized) return [Number(sized[1]), Number(sized[1])];
  if (n.includes('AES')) return [128, 128];
  if (n.includes('SEED') || n.includes('IDEA') || n.includes('RC4')) return [128, 128];
  if (n.includes('DES-CBC3') || n.includes('3DES')) return [112, 168];
  if (n.includes('DES')) return [56, 56];
  if (n.includes('NULL')) return [0, 0];
  return [0, 0];
}

/** Turns Node's multi-line DN ("C=US\nO=Example\nCN=mx") into OpenSSL's one-line form "/C=US/O=Example/CN=mx". */
export function oneLineDn(multiline: string): string {
  if (multiline === '') return '';
  return multiline
    .split('\n')
    .filter((part) => part !== '')
    .map((part) => `/${part}`)
    .join('');
}

/** Returns the last CN of a multi-line DN, or '' when it has none. */
function commonName(multiline: string): string {
  let cn = '';
  for (const part of multiline.split('\n')) {
    if (part.startsWith('CN=')) cn = part.slice(3);
  }
  return cn;
}

/**
 * Reads the negotiated parameters and the peer certificate of a secure socket.
 * `requested` is true when a certificate was requested. The server requests
 * one unless TLSSrvOptions has V, and a client is always offered one.
 */
export function tlsInfoOf(socket: tls.TLSSocket, requested: boolean): TlsInfo {
  const cipher = socket.getCipher();
  const [bits, algBits] = cipherBits(cipher?.name ?? '');
  let cert: X509Certificate | undefined;
  try {
    cert = socket.getPeerX509Certificate();
  } catch {
    cert = undefined;
  }

  let verify: VerifyResult;
  let verifyMessage = 'ok';
  if (cert === undefined) {
    verify = requested ? 'NO' : 'NOT';
  } else if (socket.authorized) {
    verify = 'OK';
  } else {
    verify = 'FAIL';
    verifyMessage = String(socket.authorizationError ?? 'unknown');
  }

  const subject = cert?.subject ?? '';
  const issuer = cert?.issuer ?? '';
  return {
    version: socket.getProtocol() ?? '',
    cipher: cipher?.name ?? '',
    cipherBits: bits,
    algBits,
    verify,
    verifyMessage,
    certSubject: encodeMacroValue(oneLineDn(subject)),
    certIssuer: encodeMacroValue(oneLineDn(issuer)),
    cnSubject: encodeMacroValue(commonName(subject)),
    cnIssuer: encodeMacroValue(commonName(issuer)),
    certMd5: cert === undefined ? '' : md5Fingerprint(cert.raw),
  };
}

/** Returns the MD5 digest of a DER certificate as upper-case hex pairs joined by ":", as sendmail's ${cert_md5}. */
export function md5Fingerprint(der: Buffer): string {
  const hex = createHash('md5').update(der).digest('hex').toUpperCase();
  return hex.match(/../g)!.join(':');
}

/** Sets ${tls_version}, ${cipher}, ${cipher_bits}, ${alg_bits}, ${verify} and the certificate macros, ${cert_md5} among them. */
export function setTlsMacros(macros: Map<string, string>, info: TlsInfo): void {
  macros.set('{tls_version}', info.version);
  macros.set('{cipher}', info.cipher);
  macros.set('{cipher_bits}', String(info.cipherBits));
  macros.set('{alg_bits}', String(info.algBits));
  macros.set('{verify}', info.verify);
  macros.set('{cert_subject}', info.certSubject);
  macros.set('{cert_issuer}', info.certIssuer);
  macros.set('{cn_subject}', info.cnSubject);
  macros.set('{cn_issuer}', info.cnIssuer);
  macros.set('{cert_md5}', info.certMd5);
}

/** sendmail's log line after a handshake, without the "STARTTLS=server" or "=client" prefix. */
export function tlsLogFields(relay: string, info: TlsInfo): string {
  return `relay=${relay}, version=${info.version}, verify=${info.verify}, cipher=${info.cipher}, bits=${info.algBits}/${info.cipherBits}`;
}
