// Parses the reverse-path of MAIL and the forward-path of RCPT (RFC 5321
// 4.1.2) and rejects bad ones with sendmail 8.18's replies. These are the
// "Unbalanced" texts of prescan() and the 8-bit and control character checks
// in parseaddr.c, and the texts of the Parse0 ruleset in cf/m4/proto.m4
// ("User address required", "Invalid route address", ...). A reply text
// starts with the path as the client wrote it.

import * as net from 'node:net';
import type { EsmtpParam } from './params';

export { parseHeaderAddresses } from './headeraddress';

export interface PathError {
  ok: false;
  code: number;
  enhanced: string;
  text: string;
}

export type PathResult =
  | {
      ok: true;
      /** The mailbox without brackets or source route; '' for <>. */
      address: string;
      params: EsmtpParam[];
    }
  | PathError;

/** Maximum path length in octets, brackets included (RFC 5321 4.5.3.1.3). */
const MAX_PATH_LENGTH = 256;

/** sendmail's MAXSMTPARGS is 20, and it counts the address and one spare slot. */
const MAX_PARAMS = 17;

const BLANK = /[ \t]/;
const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]$/;
const HOST_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/;

function fail(code: number, enhanced: string, text: string): PathError {
  return { ok: false, code, enhanced, text };
}

/**
 * Parses the argument of MAIL or RCPT after "FROM:" or "TO:": a path in
 * angle brackets (blanks before it are tolerated, as sendmail does) or a bare
 * address, then ESMTP parameters. A source route (<@a,@b:user@c>) is dropped
 * (RFC 5321 4.1.1.3) and a quoted local part is kept quoted.
 */
export function parsePath(arg: string, kind: 'mail' | 'rcpt'): PathResult {
  const text = arg.replace(/^[ \t]+/, '');
  if (text === '') {
    const keyword = kind === 'mail' ? 'from' : 'to';
    return fail(501, '5.5.2', `Syntax error in parameters scanning "${keyword}"`);
  }

  const split = text.startsWith('<') ? splitBracketed(text) : splitBare(text);
  if (!split.ok) return split;

  const mailbox = checkPath(split.inner, split.path, kind);
  if (!mailbox.ok) return mailbox;

  const params = parseParams(split.rest);
  if (!params.ok) return params;
  return { ok: true, address: mailbox.address, params: params.params };
}

type Split = { ok: true; path: string; inner: string; rest: string } | PathError;

function splitBracketed(text: string): Split {
  let depth = 0;
  let nested = false;
  let quoted = false;
  let end = -1;

  for (let i = 0; i < text.length && end < 0; i++) {
    const ch = text[i];
    if (ch === '\\') i++;
    else if (ch === '"') quoted = !quoted;
    else if (quoted) continue;
    else if (ch === '<') nested ||= ++depth > 1;
    else if (ch === '>' && --depth === 0) end = i;
  }

  if (end < 0) {
    const which = quoted ? '"' : '<';
    return fail(553, '5.0.0', `${shown(text)}... Unbalanced '${which}'`);
  }

  const path = text.slice(0, end + 1);
  const rest = text.slice(end + 1);
  if (nested || (rest !== '' && !BLANK.test(rest[0]))) {
    const word = text.split(BLANK)[0];
    return fail(553, '5.1.3', `${shown(word)}... Invalid address`);
  }
  return { ok: true, path, inner: path.slice(1, -1), rest };
}

function splitBare(text: string): Split {
  let quoted = false;
  let end = text.length;

  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\') i++;
    else if (ch === '"') quoted = !quoted;
    else if (!quoted && BLANK.test(ch)) {
      end = i;
      break;
    }
  }

  const path = text.slice(0, end);
  for (const bracket of ['>', '<']) {
    if (indexesOutside(path, bracket).length > 0) {
      return fail(553, '5.0.0', `${shown(path)}... Unbalanced '${bracket}'`);
    }
  }
  return { ok: true, path, inner: path, rest: text.slice(end) };
}

type Mailbox = { ok: true; address: string } | PathError;

function checkPath(inner: string, path: string, kind: 'mail' | 'rcpt'): Mailbox {
  const who = shown(path);
  const badEnhanced = kind === 'mail' ? '5.1.7' : '5.1.3';

  if (inner.length + 2 > MAX_PATH_LENGTH) return fail(553, '5.1.1', `${who}... Address too long`);
  if (/[^\x00-\x7f]/.test(inner)) {
    return fail(501, badEnhanced, `8-bit character in mailbox address "${who}"`);
  }
  if (/[\x00-\x1f\x7f]/.test(inner)) {
    return fail(501, badEnhanced, `Syntax error in mailbox address "${who}" (non-printable character)`);
  }

  if (inner === '') {
    if (kind === 'mail') return { ok: true, address: '' };
    return fail(553, '5.0.0', `${who}... User address required`);
  }

  const syntax = checkQuotingAndComments(inner, who, badEnhanced);
  if (syntax !== undefined) return syntax;

  let mailbox = inner;
  if (inner.startsWith('@')) {
    const colon = indexesOutside(inner, ':')[0];
    if (colon === undefined) return fail(553, '5.1.3', `${who}... User address required`);
    if (!inner.slice(0, colon).split(',').every(isRouteHop)) {
      return fail(553, '5.1.3', `${who}... Invalid route address`);
    }
    mailbox = inner.slice(colon + 1);
  }

  const error = checkMailbox(mailbox, who);
  return error ?? { ok: true, address: mailbox };
}

/** Checks quotes, a trailing backslash and comments, as prescan() does. */
function checkQuotingAndComments(
  inner: string,
  who: string,
  badEnhanced: string,
): PathError | undefined {
  let quoted = false;
  let comment = 0;

  for (let i = 0; i < inner.length; i++) {
    const ch = inner[i];
    if (ch === '\\') {
      if (i === inner.length - 1) {
        const text = `Syntax error in mailbox address "${who}" (trailing \\ character)`;
        return fail(501, badEnhanced, text);
      }
      i++;
    } else if (ch === '"') {
      quoted = !quoted;
    } else if (!quoted && ch === '(') {
      comment++;
    } else if (!quoted && ch === ')') {
      if (comment === 0) return fail(553, '5.0.0', `${who}... Unbalanced ')'`);
      comment--;
    }
  }

  if (quoted) return fail(553, '5.0.0', `${who}... Unbalanced '"'`);
  if (comment > 0) return fail(553, '5.0.0', `${who}... Unbalanced '('`);
  // NOTE: sendmail strips balanced comments from a path; they are rejected
  // here because RFC 5321 paths have no comments.
  if (indexesOutside(inner, '(').length > 0) return fail(553, '5.1.3', `${who}... Invalid address`);
  return undefined;
}

function isRouteHop(hop: string): boolean {
  return hop.startsWith('@') && checkDomain(hop.slice(1), '') === undefined;
}

/** Checks "local@domain" or a bare local part, after any source route. */
function checkMailbox(mailbox: string, who: string): PathError | undefined {
  const ats = indexesOutside(mailbox, '@');
  const at = ats.length > 0 ? ats[ats.length - 1] : -1;
  const local = at < 0 ? mailbox : mailbox.slice(0, at);

  if (local === '') return fail(553, '5.1.3', `${who}... User address required`);
  if (ats.length > 1 || indexesOutside(local, ',').length > 0) {
    return fail(553, '5.1.3', `${who}... Invalid route address`);
  }
  if (!isLocalPart(local)) return fail(553, '5.1.3', `${who}... Invalid address`);

  if (at < 0) return undefined;
  const domain = mailbox.slice(at + 1);
  if (domain === '') return fail(553, '5.1.3', `${who}... Hostname required`);
  return checkDomain(domain, who);
}

/** Dot-atoms, quoted strings and backslash pairs, as sendmail accepts them. */
function isLocalPart(local: string): boolean {
  for (let i = 0; i < local.length; i++) {
    const ch = local[i];
    if (ch === '\\') {
      i++;
    } else if (ch === '"') {
      i = closingQuote(local, i);
    } else if (!ATEXT.test(ch)) {
      return false;
    }
  }
  return true;
}

function checkDomain(domain: string, who: string): PathError | undefined {
  if (domain.startsWith('[')) {
    return isAddressLiteral(domain) ? undefined : fail(553, '5.1.2', `${who}... Invalid address`);
  }
  if (domain.includes(':')) return fail(553, '5.1.3', `${who}... Colon illegal in host name part`);
  if (!HOST_NAME.test(domain)) return fail(553, '5.1.2', `${who}... Invalid host name`);
  return undefined;
}

/** "[IPv4]" or "[IPv6:...]" (RFC 5321 4.1.3). */
function isAddressLiteral(domain: string): boolean {
  if (!domain.endsWith(']')) return false;
  const literal = domain.slice(1, -1);
  if (net.isIPv4(literal)) return true;
  return /^IPv6:/i.test(literal) && net.isIPv6(literal.slice(5));
}

type Params = { ok: true; params: EsmtpParam[] } | PathError;

const PARAM_KEY = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const PARAM_VALUE = /^[\x21-\x3c\x3e-\x7e]*$/;

/** Splits "KEY=value KEY ..." (RFC 5321 4.1.2 Mail-parameters). */
function parseParams(rest: string): Params {
  const params: EsmtpParam[] = [];

  for (const word of rest.split(/[ \t]+/)) {
    if (word === '') continue;
    if (params.length >= MAX_PARAMS) return fail(501, '5.5.4', 'Too many parameters');

    const equals = word.indexOf('=');
    // Replies echo the keyword as sent, as sendmail's do.
    const name = equals < 0 ? word : word.slice(0, equals);
    const key = name.toUpperCase();
    if (!PARAM_KEY.test(key)) {
      const echoed = name === '' ? word : name;
      // At most 200 bytes of it, so that the reply line stays within RFC 5321's 512 octets.
      return fail(555, '5.5.4', `${shown(echoed.length > 200 ? `${echoed.slice(0, 200)}...` : echoed)} parameter unrecognized`);
    }
    if (equals < 0) {
      params.push({ key, name });
      continue;
    }

    const value = word.slice(equals + 1);
    if (!PARAM_VALUE.test(value)) {
      return fail(501, '5.5.4', `Syntax error in ${key} parameter value`);
    }
    params.push({ key, name, value });
  }
  return { ok: true, params };
}

/**
 * Splits an address on its last "@" outside quotes and brackets. The domain
 * is lower-cased; it is '' when there is no "@".
 */
export function splitAddress(addr: string): { local: string; domain: string } {
  const ats = indexesOutside(addr, '@');
  if (ats.length === 0) return { local: addr, domain: '' };

  const at = ats[ats.length - 1];
  return { local: addr.slice(0, at), domain: addr.slice(at + 1).toLowerCase() };
}

/**
 * Tells whether a local part routes mail onward by itself: "%" (user%host),
 * "!" (host!user) or an "@" inside quotes. Quotes and backslashes do not hide
 * them.
 */
export function hasRoutingCharacters(local: string): boolean {
  return /[%!@]/.test(local);
}

/** Positions of ch outside quoted strings, backslash pairs and [literals]. */
function indexesOutside(text: string, ch: string): number[] {
  const found: number[] = [];
  let bracket = false;

  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === '"' && !bracket) i = closingQuote(text, i);
    else if (c === '[') bracket = true;
    else if (c === ']') bracket = false;
    else if (c === ch && !bracket) found.push(i);
  }
  return found;
}

/** Index of the quote that closes the one at start, or the last index. */
function closingQuote(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return text.length - 1;
}

/** Makes a path printable for a reply: '?' for control and 8-bit chars, 256 chars max. */
function shown(path: string): string {
  return path.replace(/[^\x20-\x7e]/g, '?').slice(0, MAX_PATH_LENGTH);
}
