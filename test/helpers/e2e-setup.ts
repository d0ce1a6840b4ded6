// Building blocks shared by the end-to-end scenarios: test messages, DNS zones
// with MX records, and one SMTP transaction over a raw socket.

import type { DnsRecord } from './dns-server';
import { rawSmtp } from './clients';

export interface MessageOptions {
  from: string;
  to: string;
  subject: string;
  body: string;
  /** Extra header lines, e.g. ['Cc: bob@posthorn.test']. */
  headers?: string[];
  /** Leave out Date and Message-ID, as `sendmail -t` callers often do. */
  bare?: boolean;
}

/** Builds an RFC 5322 message with CRLF line ends. */
export function makeMessage(opts: MessageOptions): string {
  const lines = [`From: ${opts.from}`, `To: ${opts.to}`, `Subject: ${opts.subject}`];
  if (!opts.bare) {
    lines.push('Date: Thu, 04 Dec 2025 16:10:48 +0000');
    lines.push(`Message-ID: <${opts.subject.replace(/\W+/g, '-')}@client.posthorn.test>`);
  }
  lines.push(...(opts.headers ?? []), '', ...opts.body.split('\n'));
  return lines.join('\r\n') + '\r\n';
}

/** One MX record of a test zone: preference, exchange name, and its A address. */
export type MxHost = [preference: number, exchange: string, address: string];

/**
 * Returns zone records for `domain` with the given MX hosts, plus localhost's
 * PTR and A records so that a client on 127.0.0.1 is named "localhost".
 */
export function mxZone(domain: string, hosts: MxHost[]): Record<string, DnsRecord[]> {
  const zone: Record<string, DnsRecord[]> = {
    [domain]: hosts.map(([preference, exchange]) => ({ type: 'MX', preference, exchange })),
    localhost: [{ type: 'A', address: '127.0.0.1' }],
    '1.0.0.127.in-addr.arpa': [{ type: 'PTR', name: 'localhost' }],
  };
  for (const [, exchange, address] of hosts) zone[exchange] = [{ type: 'A', address }];
  return zone;
}

export interface SentTransaction {
  /** Greeting, EHLO, MAIL, each RCPT, DATA, end of data, QUIT replies. */
  replies: string[];
  /** The reply to the final dot. */
  accepted: string;
  /** Queue id from "250 2.0.0 <qid> Message accepted for delivery", or '' if absent. */
  queueId: string;
}

/** Sends one message over a raw socket and returns the replies and the queue id. */
export async function sendRaw(opts: {
  port: number;
  host?: string;
  from: string;
  to: string[];
  data: string;
  localAddress?: string;
}): Promise<SentTransaction> {
  const script = [
    'EHLO client.posthorn.test',
    `MAIL FROM:<${opts.from}>`,
    ...opts.to.map((rcpt) => `RCPT TO:<${rcpt}>`),
    'DATA',
    opts.data.replace(/^\./gm, '..') + '.\r\n',
    'QUIT',
  ];
  const replies = await rawSmtp(opts.port, script, { host: opts.host, localAddress: opts.localAddress });
  const accepted = replies[4 + opts.to.length] ?? '';
  const match = /^250 2\.0\.0 (\S+) Message accepted for delivery$/.exec(accepted);
  return { replies, accepted, queueId: match ? match[1] : '' };
}

/** Escapes a string for use inside a RegExp. */
export function quoteRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
