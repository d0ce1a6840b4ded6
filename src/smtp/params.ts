// ESMTP parameters of MAIL and RCPT: SIZE (RFC 1870), BODY (RFC 6152), RET,
// ENVID, NOTIFY and ORCPT (RFC 3461), BY (RFC 2852), with sendmail 8.18's
// replies from mail_esmtp_args() and rcpt_esmtp_args() in srvrsmtp.c.

import { parseDeliverBy, type DeliverBy } from './deliver-by';

/** One "KEY=value" or "KEY" word after the path of MAIL or RCPT. */
export interface EsmtpParam {
  /** The keyword in upper case. */
  key: string;
  /** The keyword as sent, which replies about it echo as sendmail does. */
  name?: string;
  /** The value as sent; undefined when the word had no "=". */
  value?: string;
}

/** A rejected parameter with the reply sendmail gives. */
export interface ParamError {
  ok: false;
  code: number;
  enhanced: string;
  text: string;
}

export interface MailParams {
  ok: true;
  /** Declared message size in bytes. */
  size?: number;
  body?: '7BIT' | '8BITMIME';
  ret?: 'FULL' | 'HDRS';
  /** ENVID still in xtext form, as sendmail stores it. */
  envid?: string;
  /** BY= (DELIVERBY); a later BY= replaces an earlier one, as in sendmail. */
  deliverBy?: DeliverBy;
}

export interface RcptParams {
  ok: true;
  /** Upper-case NOTIFY keywords: ["NEVER"] or some of SUCCESS, FAILURE, DELAY. */
  notify?: string[];
  /** ORCPT as sent: "addr-type;xtext". */
  orcpt?: string;
}

export interface MailExtensions {
  /** MaxMessageSize in bytes; 0 means unlimited. */
  maxMessageSize: number;
  /** Whether DSN is offered, so RET, ENVID, NOTIFY and ORCPT are allowed. */
  dsn: boolean;
  /** DeliverByMin in seconds; BY= is unrecognized when it is negative or absent. */
  deliverByMin?: number;
}

function fail(code: number, enhanced: string, text: string): ParamError {
  return { ok: false, code, enhanced, text };
}

/** Makes client text safe to echo in a reply: '?' for control and 8-bit bytes. */
function shown(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

/** Maximum keyword length a reply echoes, so that the reply line stays within RFC 5321's 512 octets. */
const MAX_ECHOED_KEYWORD = 200;

function unrecognized(key: string): ParamError {
  const name = key.length > MAX_ECHOED_KEYWORD ? `${key.slice(0, MAX_ECHOED_KEYWORD)}...` : key;
  return fail(555, '5.5.4', `${shown(name)} parameter unrecognized`);
}

function noDsn(key: string): ParamError {
  return fail(504, '5.7.0', `Sorry, ${key} not supported, we do not allow DSN`);
}

function needsValue(key: string): ParamError {
  return fail(501, '5.5.2', `${key} requires a value`);
}

/** Checks the parameters of MAIL FROM; the first bad one decides the reply. */
export function checkMailParams(
  params: EsmtpParam[],
  ext: MailExtensions,
): MailParams | ParamError {
  const result: MailParams = { ok: true };

  for (const param of params) {
    const error = applyMailParam(result, param, ext);
    if (error !== undefined) return error;
  }

  // sendmail checks the declared size against the limit after all parameters.
  const max = ext.maxMessageSize;
  if (max > 0 && result.size !== undefined && result.size > max) {
    return fail(552, '5.2.3', `Message size exceeds fixed maximum message size (${max})`);
  }
  return result;
}

function applyMailParam(
  result: MailParams,
  { key, name, value }: EsmtpParam,
  ext: MailExtensions,
): ParamError | undefined {
  switch (key) {
    case 'SIZE':
      if (value === undefined) return needsValue('SIZE');
      return applySize(result, value);

    case 'BODY': {
      if (value === undefined) return needsValue('BODY');
      const body = value.toUpperCase();
      if (body !== '7BIT' && body !== '8BITMIME') {
        return fail(501, '5.5.4', `Unknown BODY type ${shown(value)}`);
      }
      result.body = body;
      return undefined;
    }

    case 'ENVID':
      if (!ext.dsn) return noDsn('ENVID');
      if (value === undefined) return needsValue('ENVID');
      if (xtextDecode(value) === undefined) {
        return fail(501, '5.5.4', 'Syntax error in ENVID parameter value');
      }
      if (result.envid !== undefined) return fail(501, '5.5.0', 'Duplicate ENVID parameter');
      // An empty ENVID= is accepted, as by sendmail, and means none.
      if (value !== '') result.envid = value;
      return undefined;

    case 'RET':
      return applyRet(result, value, ext);

    case 'AUTH':
      // sendmail checks the xtext and, with no authenticated client to
      // trust it from, ignores the address (RFC 4954 section 5).
      if (value === undefined) return fail(501, '5.5.2', 'AUTH= requires a value');
      if (xtextDecode(value) === undefined) return fail(501, '5.5.4', 'Syntax error in AUTH parameter value');
      return undefined;

    case 'BY': {
      // A negative DeliverByMin turns DELIVERBY off, and BY is then unknown.
      const min = ext.deliverByMin;
      if (min === undefined || min < 0) return unrecognized(name ?? key);
      const by = parseDeliverBy(value, min);
      if ('ok' in by) return by;
      result.deliverBy = by;
      return undefined;
    }

    default:
      // NOTE: SMTPUTF8 is not implemented, so it gets the reply of an unknown
      // parameter, as from a sendmail built without it.
      return unrecognized(name ?? key);
  }
}

function applySize(result: MailParams, value: string): ParamError | undefined {
  if (/^-\d+$/.test(value)) return fail(552, '5.2.3', 'Message size invalid');

  // sendmail reads the leading digits with strtol() and ignores the rest, so a
  // value without digits (or an empty one) declares size 0.
  const digits = /^\+?(\d+)/.exec(value);
  const size = digits === null ? 0 : Number(digits[1]);
  if (!Number.isSafeInteger(size)) {
    return fail(552, '5.2.3', 'Message size exceeds maximum value');
  }
  result.size = size;
  return undefined;
}

function applyRet(
  result: MailParams,
  value: string | undefined,
  ext: MailExtensions,
): ParamError | undefined {
  if (!ext.dsn) return noDsn('RET');
  if (value === undefined) return needsValue('RET');
  if (result.ret !== undefined) return fail(501, '5.5.0', 'Duplicate RET parameter');

  const ret = value.toUpperCase();
  if (ret !== 'FULL' && ret !== 'HDRS') {
    return fail(501, '5.5.2', `Bad argument "${shown(value)}" to RET`);
  }
  result.ret = ret;
  return undefined;
}

/** Checks the parameters of RCPT TO; the first bad one decides the reply. */
export function checkRcptParams(
  params: EsmtpParam[],
  ext: { dsn: boolean },
): RcptParams | ParamError {
  const result: RcptParams = { ok: true };

  for (const { key, name, value } of params) {
    let error: ParamError | undefined;
    if (key === 'NOTIFY') error = applyNotify(result, value, ext);
    else if (key === 'ORCPT') error = applyOrcpt(result, value, ext);
    else error = unrecognized(name ?? key);
    if (error !== undefined) return error;
  }
  return result;
}

const NOTIFY_KEYWORDS = new Set(['SUCCESS', 'FAILURE', 'DELAY']);

function applyNotify(
  result: RcptParams,
  value: string | undefined,
  ext: { dsn: boolean },
): ParamError | undefined {
  if (!ext.dsn) return noDsn('NOTIFY');
  if (value === undefined) return needsValue('NOTIFY');

  // sendmail takes the last NOTIFY of a command; it has no duplicate check.
  if (value.toUpperCase() === 'NEVER') {
    result.notify = ['NEVER'];
    return undefined;
  }

  const notify: string[] = [];
  for (const word of value.split(',')) {
    const keyword = word.toUpperCase();
    if (!NOTIFY_KEYWORDS.has(keyword)) {
      // The two blanks before "to" are in sendmail's own text.
      return fail(501, '5.5.4', `Bad argument "${shown(word)}"  to NOTIFY`);
    }
    if (!notify.includes(keyword)) notify.push(keyword);
  }
  result.notify = notify;
  return undefined;
}

const ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+$/;

function applyOrcpt(
  result: RcptParams,
  value: string | undefined,
  ext: { dsn: boolean },
): ParamError | undefined {
  if (!ext.dsn) return noDsn('ORCPT');
  if (value === undefined) return needsValue('ORCPT');
  if (result.orcpt !== undefined) return fail(501, '5.5.0', 'Duplicate ORCPT parameter');

  const semicolon = value.indexOf(';');
  const addrType = value.slice(0, Math.max(semicolon, 0));
  const address = value.slice(semicolon + 1);
  if (semicolon < 0 || !ATOM.test(addrType) || xtextDecode(address) === undefined) {
    return fail(501, '5.5.4', 'Syntax error in ORCPT parameter value');
  }
  result.orcpt = value;
  return undefined;
}

/**
 * Decodes xtext (RFC 3461 4): "+XX" is the byte with hex value XX, any other
 * char is itself. Returns undefined for chars outside "!" to "~", for "=", and
 * for a "+" without two hex digits. Like sendmail's xtextok(), lower-case hex
 * digits are accepted. Bytes come back as latin1 chars.
 */
export function xtextDecode(s: string): string | undefined {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);

    if (c === 0x2b) {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
      out += String.fromCharCode(parseInt(hex, 16));
      i += 2;
      continue;
    }
    if (c < 0x21 || c > 0x7e || c === 0x3d) return undefined;
    out += s[i];
  }
  return out;
}

/**
 * Encodes a string as xtext with upper-case hex. Chars up to U+00FF are
 * taken as one byte each; a char above that is encoded as its UTF-8 bytes.
 */
export function xtextEncode(s: string): string {
  let out = '';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    const bytes = code <= 0xff ? [code] : [...Buffer.from(ch, 'utf8')];
    for (const b of bytes) {
      const plain = b >= 0x21 && b <= 0x7e && b !== 0x2b && b !== 0x3d;
      out += plain ? String.fromCharCode(b) : '+' + b.toString(16).toUpperCase().padStart(2, '0');
    }
  }
  return out;
}
