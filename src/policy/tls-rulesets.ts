// sendmail's STARTTLS rulesets as the default cf builds them with
// FEATURE(`access_db'): tls_client, tls_server, tls_rcpt, try_tls, the shared
// requirement check TLS_connection, and relaying by a verified client
// certificate (CertIssuer:, CertSubject:). Each returns a reply on failure.

import { reply, type Reply } from '../smtp/reply';
import type { AccessHit, AccessMap } from './access';
import { CONTINUE, type CheckContext, type Checkpoint, type Verdict } from '../server/checkpoint';

/** Session macro values that TLS_connection reads. */
export interface TlsFacts {
  /** ${verify}; undefined on a server session that never ran STARTTLS. */
  verify?: string;
  /** ${cipher_bits}; 0 without TLS. */
  cipherBits: number;
  certSubject: string;
  certIssuer: string;
  cnSubject: string;
  /** {TLS_Name}: the peer's host name, for the bare CN extension. */
  tlsName: string;
}

/** Builds the facts from a macro table (server session or client connection). */
export function tlsFactsFromMacros(macros: ReadonlyMap<string, string>, tlsName: string): TlsFacts {
  const verify = macros.get('{verify}');
  return {
    verify: verify === '' ? undefined : verify,
    cipherBits: Number(macros.get('{cipher_bits}') ?? 0) || 0,
    certSubject: macros.get('{cert_subject}') ?? '',
    certIssuer: macros.get('{cert_issuer}') ?? '',
    cnSubject: macros.get('{cn_subject}') ?? '',
    tlsName,
  };
}

/** A parsed right-hand side: "PERM+VERIFY:128+CN:mx.example++CI:/C=DE/CN=Root". */
export interface TlsRequirement {
  /** Reply code and DSN for a failure: PERM+ gives 503 5.7.0, TEMP+ and no prefix 403 4.7.0. */
  code: number;
  enhanced: string;
  verify: boolean;
  bits: number;
  extensions: Array<{ kind: 'CN' | 'CS' | 'CI'; value?: string }>;
}

/**
 * Parses an access map value of TLS_Srv:, TLS_Clt: or TLS_Rcpt:. Returns
 * undefined for anything that is not a requirement, which TLS_connection accepts.
 */
export function parseTlsRequirement(value: string): TlsRequirement | undefined {
  let rest = value.trim();
  // sendmail 8.13's default pair; 8.17 changed it to 454 4.7.0.
  let code = 403;
  let enhanced = '4.7.0';
  const prefix = /^(PERM|TEMP)\+/i.exec(rest);
  if (prefix) {
    if (prefix[1].toUpperCase() === 'PERM') {
      code = 503;
      enhanced = '5.7.0';
    }
    rest = rest.slice(prefix[0].length);
  }

  const base = /^(VERIFY|ENCR)(?::(\d+))?/i.exec(rest);
  if (!base) return undefined;
  const isVerify = base[1].toUpperCase() === 'VERIFY';
  if (!isVerify && base[2] === undefined) return undefined;
  const requirement: TlsRequirement = { code, enhanced, verify: isVerify, bits: Number(base[2] ?? 0), extensions: [] };

  rest = rest.slice(base[0].length);
  if (rest === '') return requirement;
  if (!rest.startsWith('+')) return undefined;
  for (const part of rest.slice(1).split('++')) {
    const ext = /^(CN|CS|CI)(?::(.*))?$/i.exec(part);
    if (!ext) return undefined;
    const kind = ext[1].toUpperCase() as 'CN' | 'CS' | 'CI';
    if (kind !== 'CN' && ext[2] === undefined) return undefined;
    requirement.extensions.push({ kind, value: ext[2] });
  }
  return requirement;
}

/** sendmail's texts for a VERIFY requirement that ${verify} does not meet. */
function verifyFailureText(verify: string | undefined): string {
  switch (verify) {
    case undefined:
      return 'authentication required';
    case 'FAIL':
      return 'authentication failed';
    case 'NO':
      return 'not authenticated';
    case 'NOT':
      return 'no authentication requested';
    case 'NONE':
      return 'other side does not support STARTTLS';
    default:
      return `authentication failure ${verify}`;
  }
}

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/**
 * TLS_connection: checks `${verify} $| RHS`. Returns undefined when the
 * connection meets the requirement (or there is none), else the error reply.
 */
export function tlsConnection(facts: TlsFacts, value: string | undefined): Reply | undefined {
  const req = value === undefined ? undefined : parseTlsRequirement(value);
  const code = req?.code ?? 403;
  const enhanced = req?.enhanced ?? '4.7.0';
  const fail = (text: string): Reply => reply(code, enhanced, text);

  if (facts.verify === 'SOFTWARE') return fail('TLS handshake failed.');
  if (!req) return undefined;

  if (req.verify && facts.verify !== 'OK') return fail(verifyFailureText(facts.verify));
  if (req.bits > 0 && facts.cipherBits < req.bits) {
    return fail(`encryption too weak ${facts.cipherBits} less than ${req.bits}`);
  }
  for (const ext of req.extensions) {
    if (ext.kind === 'CN') {
      const wanted = ext.value ?? facts.tlsName;
      if (!same(facts.cnSubject, wanted)) return fail(`CN ${facts.cnSubject} does not match ${wanted}`);
    } else if (ext.kind === 'CS') {
      if (!same(facts.certSubject, ext.value ?? '')) return fail(`Cert Subject ${facts.certSubject} does not match ${ext.value}`);
    } else if (!same(facts.certIssuer, ext.value ?? '')) {
      return fail(`Cert Issuer ${facts.certIssuer} does not match ${ext.value}`);
    }
  }
  return undefined;
}

/** Looks up a host as sendmail's D, A and default lookups do: Tag:name and parents, Tag:address and prefixes, Tag:. */
export function lookupHost(access: AccessMap | undefined, tag: string, name: string, address: string): AccessHit | undefined {
  if (!access) return undefined;
  return access.domain(tag, name) ?? (address ? access.address(tag, address) : undefined) ?? access.defaultEntry(tag);
}

/** tls_client (server side): the TLS_Clt: requirement of a client, looked up by ${client_name} and ${client_addr}. */
export function tlsClientRequirement(access: AccessMap | undefined, clientName: string, clientAddr: string): AccessHit | undefined {
  return lookupHost(access, 'TLS_Clt', clientName, clientAddr);
}

/** tls_server (client side): checks ${verify} against TLS_Srv: for the server being talked to. */
export function tlsServer(access: AccessMap | undefined, serverName: string, serverAddr: string, facts: TlsFacts): Reply | undefined {
  return tlsConnection(facts, lookupHost(access, 'TLS_Srv', serverName, serverAddr)?.value);
}

/** try_tls (client side): returns false when the server's Try_TLS: entry is NO. */
export function tryTls(access: AccessMap | undefined, serverName: string, serverAddr: string): boolean {
  const hit = lookupHost(access, 'Try_TLS', serverName, serverAddr);
  return hit === undefined || hit.value.trim().toUpperCase() !== 'NO';
}

/**
 * Looks up the TLS_Rcpt: entry of a recipient: user+detail@domain, user+*@domain,
 * user@domain, the same three forms of user@, the domain and its parents, then TLS_Rcpt:.
 */
export function tlsRcptEntry(access: AccessMap | undefined, recipient: string): AccessHit | undefined {
  if (!access) return undefined;
  const at = recipient.lastIndexOf('@');
  const local = at < 0 ? recipient : recipient.slice(0, at);
  const domain = at < 0 ? '' : recipient.slice(at + 1).replace(/\.$/, '');
  const plus = local.indexOf('+');
  const locals = plus < 0 ? [local] : [local, `${local.slice(0, plus)}+*`, local.slice(0, plus)];

  if (domain !== '') {
    for (const l of locals) {
      const hit = access.exact('TLS_Rcpt', `${l}@${domain}`);
      if (hit) return hit;
    }
  }
  for (const l of locals) {
    const hit = access.exact('TLS_Rcpt', `${l}@`);
    if (hit) return hit;
  }
  return (domain !== '' ? access.domain('TLS_Rcpt', domain) : undefined) ?? access.defaultEntry('TLS_Rcpt');
}

/** tls_rcpt (client side): checks the connection against the recipient's TLS_Rcpt: requirement. */
export function tlsRcpt(access: AccessMap | undefined, recipient: string, facts: TlsFacts): Reply | undefined {
  const hit = tlsRcptEntry(access, recipient);
  if (!hit) return undefined;
  return tlsConnection(facts, hit.value);
}

/**
 * RelayTLS of check_rcpt: a client whose certificate verified may relay when
 * CertIssuer:<issuer> is RELAY, or is SUBJECT and CertSubject:<subject> is RELAY.
 */
export function relayByCertificate(access: AccessMap | undefined, facts: TlsFacts): boolean {
  if (!access || facts.verify !== 'OK') return false;
  const issuer = access.exact('CertIssuer', facts.certIssuer)?.value.trim().toUpperCase();
  if (issuer === 'RELAY') return true;
  if (issuer !== 'SUBJECT') return false;
  return access.exact('CertSubject', facts.certSubject)?.value.trim().toUpperCase() === 'RELAY';
}

/** DAEMON_OPTIONS modifier with which a listener requires STARTTLS before MAIL (`M=T`, a Posthorn addition). */
export const REQUIRE_TLS_MODIFIER = 'T';

/**
 * tls_client at MAIL (`${verify} $| MAIL`, as the default check_mail calls it
 * first), plus two STARTTLS rules of RFC 3207: a client that must use TLS and
 * has not started it gets 530, and after the handshake MAIL needs a new EHLO.
 */
export function tlsClientCheckpoint(accessOf: () => AccessMap | undefined): Checkpoint {
  return {
    name: 'tls_client',
    stages: new Set(['mail']),
    check(ctx: CheckContext): Verdict {
      const m = ctx.macros;
      const active = (m.get('{tls_version}') ?? '') !== '';
      if (active && !m.get('s')) {
        return { action: 'reject', reply: reply(503, '5.0.0', 'Polite people say HELO first'), source: 'STARTTLS' };
      }

      const clientName = m.get('{client_name}') ?? '';
      const hit = tlsClientRequirement(accessOf(), clientName, ctx.clientAddress);
      const required = (m.get('{daemon_flags}') ?? '').includes(REQUIRE_TLS_MODIFIER)
        || (hit !== undefined && parseTlsRequirement(hit.value) !== undefined);
      if (!active && required) {
        return { action: 'reject', reply: reply(530, '5.7.0', 'Must issue a STARTTLS command first') };
      }
      if (!hit) return CONTINUE;

      const failure = tlsConnection(tlsFactsFromMacros(m, clientName), hit.value);
      if (!failure) return CONTINUE;
      return { action: failure.code < 500 ? 'tempfail' : 'reject', reply: failure };
    },
  };
}
