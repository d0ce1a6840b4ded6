// Delivery status notifications (RFC 3464): a multipart/report with a human
// readable part in sendmail's wording, a message/delivery-status part, and the
// original message or its headers. The original body is streamed by the caller
// between `head` and `tail`, so a large message is never held in memory.

import type { QueueItem } from '../queue/types';

export interface DsnRecipient {
  address: string;
  /** ORCPT as received, e.g. "rfc822;bob@example.com". */
  orcpt?: string;
  action: 'failed' | 'delayed' | 'delivered' | 'relayed';
  /** Enhanced status code, e.g. "5.1.1". */
  status: string;
  /** Status text as logged, e.g. "User unknown". */
  reason: string;
  /** Host that sent the final reply, e.g. "mx.example.com". */
  remoteMta?: string;
  /** The remote reply, e.g. "550 5.1.1 <bob@example.com>... User unknown". */
  diagnostic?: string;
  lastAttempt: Date;
}

export interface DsnInput {
  kind: 'failure' | 'delay' | 'success';
  /** The message the report is about. */
  item: QueueItem;
  recipients: DsnRecipient[];
  /** Envelope recipient of the report: the original sender or the postmaster. */
  to: string;
  /** True when the report goes to the postmaster because the sender was <>. */
  postmasterCopy?: boolean;
  /** $j, the name of this host. */
  hostName: string;
  messageId: string;
  now: Date;
  /** SMTP dialogue lines (">>> MAIL ...", "<<< 550 ...") behind the failures. */
  transcript: string[];
  /** For delay notices: "4 hours" and the time delivery is given up. */
  delayedFor?: string;
  willRetryUntil?: Date;
  giveUpAfter?: string;
  /**
   * For delay notices: the warning that replaces the Timeout.queuewarn wording
   * in the subject and the transcript, e.g. "Warning: Delivery time (60s) exceeded".
   */
  warning?: string;
}

export interface DsnMessage {
  /** Header lines of the report, without CRLF. */
  headers: string[];
  /** Body text up to where the original body goes, CRLF line ends. */
  head: string;
  /**
   * Whether the caller writes the original body between head and tail; the
   * body must then end with CRLF.
   */
  includeBody: boolean;
  tail: string;
  boundary: string;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Formats a date for headers and DSN fields (RFC 5322 section 3.3), in UTC. */
export function rfc5322Date(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${time} +0000`;
}

function subjectOf(input: DsnInput): string {
  if (input.kind === 'delay') return input.warning ?? `Warning: could not send message for past ${input.delayedFor ?? '4 hours'}`;
  if (input.kind === 'success') return 'Return receipt';
  if (input.postmasterCopy) return 'Postmaster notify: see transcript for details';
  return 'Returned mail: see transcript for details';
}

function reportHeaders(input: DsnInput, boundary: string): string[] {
  const autoSubmitted = `auto-generated (${input.kind})`;
  return [
    `From: Mail Delivery Subsystem <MAILER-DAEMON@${input.hostName}>`,
    `To: <${input.to}>`,
    `Subject: ${subjectOf(input)}`,
    `Date: ${rfc5322Date(input.now)}`,
    `Message-Id: <${input.messageId}>`,
    `Auto-Submitted: ${autoSubmitted}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="${boundary}"`,
  ];
}

const WARNING_BANNER = [
  '    **********************************************',
  '    **      THIS IS A WARNING MESSAGE ONLY      **',
  '    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **',
  '    **********************************************',
  '',
];

/** Builds the human-readable first part, in sendmail's layout. */
function explanation(input: DsnInput): string[] {
  const relay = input.item.macros.get('_');
  const lines = input.kind === 'delay' ? [...WARNING_BANNER] : [];
  lines.push(`The original message was received at ${rfc5322Date(new Date(input.item.created * 1000))}`);
  if (relay) lines.push(`from ${relay}`);
  lines.push('');
  if (input.kind === 'success') return [...lines, ...successList(input)];

  const heading =
    input.kind === 'delay'
      ? '   ----- The following addresses had transient non-fatal errors -----'
      : '   ----- The following addresses had permanent fatal errors -----';
  lines.push(heading);
  for (const r of input.recipients) {
    lines.push(`<${r.address}>`);
    lines.push(`    (reason: ${r.diagnostic ?? r.reason})`);
  }
  lines.push('', '   ----- Transcript of session follows -----');
  lines.push(...input.transcript);
  for (const r of input.recipients) {
    lines.push(`<${r.address}>... ${input.kind === 'delay' ? 'Deferred: ' : ''}${r.reason}`);
  }
  if (input.kind === 'delay') {
    lines.push(input.warning ?? `Warning: message still undelivered after ${input.delayedFor ?? '4 hours'}`);
    if (input.giveUpAfter) lines.push(`Will keep trying until message is ${input.giveUpAfter} old`);
  }
  return lines;
}

/** The list of a success notice, with sendmail's wording per action. */
function successList(input: DsnInput): string[] {
  const lines = ['   ----- The following addresses had successful delivery notifications -----'];
  for (const r of input.recipients) {
    const how = r.action === 'relayed' ? 'relayed to non-DSN-aware mailer' : 'successfully delivered to mailbox';
    lines.push(`<${r.address}>  (${how})`);
  }
  if (input.transcript.length > 0) lines.push('', '   ----- Transcript of session follows -----', ...input.transcript);
  return lines;
}

/** Builds the fields of the message/delivery-status part (RFC 3464 section 2). */
function statusFields(input: DsnInput): string[] {
  const relay = input.item.macros.get('_');
  const lines = [`Reporting-MTA: dns; ${input.hostName}`];
  const clientName = relay?.split(' ')[0];
  // A command-line submission has "user@localhost" here: no MTA sent it, and sendmail writes no field.
  if (clientName && !clientName.startsWith('[') && !clientName.includes('@')) lines.push(`Received-From-MTA: DNS; ${clientName}`);
  if (input.item.envid) lines.push(`Original-Envelope-Id: ${input.item.envid}`);
  lines.push(`Arrival-Date: ${rfc5322Date(new Date(input.item.created * 1000))}`);

  for (const r of input.recipients) {
    lines.push('');
    if (r.orcpt) lines.push(`Original-Recipient: ${r.orcpt}`);
    lines.push(`Final-Recipient: RFC822; ${r.address}`);
    lines.push(`Action: ${r.action}`);
    lines.push(`Status: ${r.status}`);
    if (r.remoteMta) lines.push(`Remote-MTA: DNS; ${r.remoteMta}`);
    if (r.diagnostic) lines.push(`Diagnostic-Code: SMTP; ${r.diagnostic}`);
    lines.push(`Last-Attempt-Date: ${rfc5322Date(r.lastAttempt)}`);
    if (input.willRetryUntil) lines.push(`Will-Retry-Until: ${rfc5322Date(input.willRetryUntil)}`);
  }
  return lines;
}

/**
 * Builds a report about `input.item`. The original message part carries the
 * whole message, or only its headers when the sender asked for RET=HDRS.
 */
export function buildDsn(input: DsnInput): DsnMessage {
  const boundary = `${input.item.id}.${Math.floor(input.now.getTime() / 1000)}/${input.hostName}`;
  // A success notice returns only the headers, as sendmail's MSG_NOBODYRETN does.
  const headersOnly = input.item.ret === 'HDRS' || input.kind === 'success';
  const crlf = (lines: string[]): string => lines.map((l) => l + '\r\n').join('');

  const head = crlf([
    'This is a MIME-encapsulated message',
    '',
    `--${boundary}`,
    '',
    ...explanation(input),
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    ...statusFields(input),
    '',
    `--${boundary}`,
    `Content-Type: ${headersOnly ? 'text/rfc822-headers' : 'message/rfc822'}`,
    '',
    ...input.item.headers,
    ...(headersOnly ? [] : ['']),
  ]);
  return {
    headers: reportHeaders(input, boundary),
    head,
    includeBody: !headersOnly,
    tail: crlf(['', `--${boundary}--`]),
    boundary,
  };
}
