// Headers the MTA adds: Received: in sendmail's layout, and Date:, Message-Id:
// and From: when the message lacks them. Header strings keep their folds as
// "\r\n\t" inside one string.

import { rfc822Date } from './dates';

/** Returns the unfolded value of the first header with that name, if any. */
export function headerValue(headers: readonly string[], name: string): string | undefined {
  const prefix = name.toLowerCase() + ':';
  for (const h of headers) {
    if (h.slice(0, prefix.length).toLowerCase() === prefix) {
      return h.slice(prefix.length).replace(/\r?\n[ \t]/g, ' ').trim();
    }
  }
  return undefined;
}

/** Returns the size in bytes of a message: its header lines with CRLF, plus the body. */
export function messageSize(headers: readonly string[], bodySize: number): number {
  return headers.reduce((n, h) => n + h.length + 2, bodySize);
}

export function hasHeader(headers: readonly string[], name: string): boolean {
  return headerValue(headers, name) !== undefined;
}

/**
 * Builds the Received: header as sendmail's default template does:
 * "from $s ($_)", "by $j ($v/$Z) with $r id $i", the STARTTLS parameters
 * when ${tls_version} is set, "for <rcpt>" when there is exactly one
 * recipient, then the date.
 */
export function receivedHeader(
  m: ReadonlyMap<string, string>,
  tx: { id: string; recipients: ReadonlyArray<{ address: string }> },
  now: Date,
): string {
  const helo = m.get('s');
  const client = m.get('_');
  let text = 'Received: ';

  if (helo) text += `from ${helo} `;
  if (client) text += `(${helo ? '' : 'from '}${client})\r\n\t`;

  const protocol = m.get('r');
  text += `by ${m.get('j')} (Posthorn ${m.get('v')}/${m.get('Z')})`;
  if (protocol) text += ` with ${protocol}`;
  text += ` id ${tx.id}`;
  const tlsVersion = m.get('{tls_version}');
  if (tlsVersion) {
    text += `\r\n\t(version=${tlsVersion} cipher=${m.get('{cipher}')} bits=${m.get('{cipher_bits}')} verify=${m.get('{verify}')})`;
  }

  if (tx.recipients.length === 1) text += `\r\n\tfor <${tx.recipients[0].address}>; `;
  else text += ';\r\n\t';
  return text + rfc822Date(now);
}

export interface AddedHeaderFields {
  sender: string;
  hostName: string;
  id: string;
  now: Date;
  /** Full name for From: (the -F flag). */
  fullName?: string;
  /**
   * The number of leading headers (a submission's own Received: and
   * X-Authentication-Warning:) that Date:, From: and Message-Id: follow, as
   * sendmail puts them before the message's headers. Without it they are appended.
   */
  insertAt?: number;
}

/** Headers that sendmail's configuration gives a default value (H?D?, H?F?, H?M? lines). */
const DEFAULTED = new Set(['date', 'from', 'message-id', 'resent-date', 'resent-from', 'resent-message-id']);

/**
 * Adds Date:, Message-Id: and From: when missing, as sendmail's H?D?, H?M?,
 * H?F? lines do. One of them with an empty value counts as missing: sendmail
 * drops it and adds its own, so the message never goes out with "From:" alone.
 */
export function addMissingHeaders(headers: string[], f: AddedHeaderFields): void {
  const resent = headers.some(isResentHeader);
  for (let i = headers.length - 1; i >= 0; i--) {
    const colon = headers[i].indexOf(':');
    if (colon < 0 || !DEFAULTED.has(headers[i].slice(0, colon).trim().toLowerCase())) continue;
    if (headers[i].slice(colon + 1).replace(/\r?\n[ \t]/g, ' ').trim() === '') headers.splice(i, 1);
  }

  const added: string[] = [];
  if (!hasHeader(headers, 'date')) added.push(`Date: ${rfc822Date(f.now)}`);

  if (f.insertAt !== undefined && !hasHeader(headers, 'from')) added.push(fromHeader(f));

  if (!hasHeader(headers, 'message-id')) {
    const stamp = f.now.toISOString().replace(/[-:TZ.]/g, '').slice(0, 14);
    added.push(`Message-Id: <${stamp}.${f.id}@${f.hostName}>`);
  }

  if (f.insertAt === undefined && !hasHeader(headers, 'from')) added.push(fromHeader(f));
  if (f.insertAt === undefined) headers.push(...added);
  else headers.splice(f.insertAt, 0, ...added);

  // A message with a Resent- header is being resent: sendmail adds the Resent- forms too.
  if (resent) addMissingResentHeaders(headers, f);
}

function fromHeader(f: AddedHeaderFields): string {
  const address = f.sender === '' ? `MAILER-DAEMON@${f.hostName}` : f.sender;
  return f.fullName ? `From: ${f.fullName} <${address}>` : `From: ${address}`;
}

function isResentHeader(header: string): boolean {
  return (header.charCodeAt(0) | 0x20) === 0x72 && /^resent-/i.test(header);
}

function addMissingResentHeaders(headers: string[], f: AddedHeaderFields): void {
  if (!hasHeader(headers, 'resent-date')) headers.push(`Resent-Date: ${rfc822Date(f.now)}`);
  if (!hasHeader(headers, 'resent-message-id')) {
    const stamp = f.now.toISOString().replace(/[-:TZ.]/g, '').slice(0, 14);
    headers.push(`Resent-Message-Id: <${stamp}.${f.id}@${f.hostName}>`);
  }
  if (!hasHeader(headers, 'resent-from')) {
    const address = f.sender === '' ? `MAILER-DAEMON@${f.hostName}` : f.sender;
    headers.push(f.fullName ? `Resent-From: ${f.fullName} <${address}>` : `Resent-From: ${address}`);
  }
}
