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

/** One attribute of a DN: its short name, its value, and whether it shares the RDN of the one before. */
interface DnEntry {
  name: string;
  value: string;
  sameSet: boolean;
}

// Characters that Node's RFC 2253 escaping (ASN1_STRFLGS_ESC_2253) puts a backslash before.
const BACKSLASHED = new Set([',', '+', '"', '\\', '<', '>', ';', '#', ' ', '=']);

/**
 * Reads Node's multi-line DN ("C=US\nO=Example\\, Inc.\nCN=a + UID=b"): one RDN per
 * line, " + " between the attributes of one RDN, and backslash escapes
 * ("\\," for a character, "\\0A" for a control byte) undone.
 */
function parseNodeDn(multiline: string): DnEntry[] {
  const entries: DnEntry[] = [];
  for (const line of multiline.split('\n')) {
    if (line === '') continue;
    let sameSet = false;
    let start = 0;
    while (start < line.length) {
      const equals = line.indexOf('=', start);
      if (equals < 0) break;
      const name = line.slice(start, equals);
      let value = '';
      let pos = equals + 1;
      for (; pos < line.length; pos++) {
        const ch = line[pos];
        if (ch === '\\' && pos + 1 < line.length) {
          const next = line[pos + 1];
          const hex = line.slice(pos + 1, pos + 3);
          if (BACKSLASHED.has(next)) {
            value += next;
            pos++;
          } else if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
            value += String.fromCharCode(parseInt(hex, 16));
            pos += 2;
          } else {
            value += ch;
          }
          continue;
        }
        if (line.startsWith(' + ', pos)) break;
        value += ch;
      }
      entries.push({ name, value, sameSet });
      sameSet = true;
      start = pos + 3;
    }
  }
  return entries;
}

/** Writes a value as OpenSSL's X509_NAME_oneline() does: "\\xHH" for bytes outside space..~, "\\/" and "\\+". */
function onelineValue(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (byte < 0x20 || byte > 0x7e) out += `\\x${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    else if (c === '/' || c === '+') out += `\\${c}`;
    else out += c;
  }
  return out;
}

/**
 * Turns Node's multi-line DN into the one-line form sendmail takes from
 * OpenSSL's X509_NAME_oneline(): "/C=US/O=Example, Inc./CN=mx", with
 * non-ASCII bytes as "\\xC3\\xBC" and the attributes of one RDN joined by "+".
 */
export function oneLineDn(multiline: string): string {
  return parseNodeDn(multiline)
    .map((entry) => `${entry.sameSet ? '+' : '/'}${entry.name}=${onelineValue(entry.value)}`)
    .join('');
}

/** Returns the first CN of a multi-line DN as its raw text (X509_NAME_get_text_by_NID), or ''. */
function commonName(multiline: string): string {
  return parseNodeDn(multiline).find((entry) => entry.name === 'CN')?.value ?? '';
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
