// Building blocks shared by the end-to-end scenarios: test messages, DNS zones
// with MX records, one SMTP transaction over a raw socket, and posthorn set up
// to relay remote.example to a sink or to Postfix.

import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer, type DnsRecord, type DnsServer } from './dns-server';
import { rawSmtp } from './clients';
import { baseMc, startPosthorn, type Posthorn } from './posthorn';
import { startPostfix, type Postfix } from './postfix';
import { freePortOn } from './process';
import { startSink, type Sink, type SinkOptions } from './sink';
import { clientTlsMc, postfixTlsMainCf } from './tls-setup';
import type { TestCerts } from '../tls/certs';

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

/**
 * Sends one message from alice@posthorn.test to bob@remote.example with
 * `subject` as its subject and `body` (default: the subject) as its body, and
 * returns the transaction, accepted or not.
 */
export function sendRemoteMessage(port: number, subject: string, body = subject): Promise<SentTransaction> {
  return sendRaw({
    port,
    from: 'alice@posthorn.test',
    to: ['bob@remote.example'],
    data: makeMessage({ from: 'alice@posthorn.test', to: 'bob@remote.example', subject, body }),
  });
}

/**
 * Sends the message of sendRemoteMessage, asserts that it was accepted, and
 * returns the queue id.
 */
export async function sendToRemote(port: number, subject: string, body = subject): Promise<string> {
  const sent = await sendRemoteMessage(port, subject, body);
  assert.notEqual(sent.queueId, '', `no queue id in "${sent.accepted}"`);
  return sent.queueId;
}

/** Escapes a string for use inside a RegExp. */
export function quoteRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export interface HopOptions {
  /** More .mc lines for posthorn. */
  mc?: string[];
  /** Extra daemon arguments, e.g. ['-O', 'DeliveryMode=queueonly']. */
  args?: string[];
  /** Queue folder in place of the default one, e.g. on a test mount. */
  queueDir?: string;
}

export interface DnsHop {
  ph: Posthorn;
  dns: DnsServer;
}

/**
 * Starts a DNS server with the zone of remote.example and posthorn, which
 * sends its DNS queries there. Both are stopped after the test. The zone's MX
 * hosts are `mx`, by default mx1.remote.example on 127.0.0.2 alone. With
 * `mailerPort`, the esmtp mailer connects to that port in place of its default.
 */
export async function startPosthornWithDns(
  t: TestContext,
  opts: HopOptions & { mx?: MxHost[]; mailerPort?: number } = {},
): Promise<DnsHop> {
  const mx = opts.mx ?? [[10, 'mx1.remote.example', '127.0.0.2']];
  const dns = await startDnsServer({ zones: mxZone('remote.example', mx) });
  t.after(() => dns.close());
  const ph = await startPosthorn({
    mc: baseMc({ dnsPort: dns.port, mailerPort: opts.mailerPort, extra: opts.mc }),
    args: opts.args,
    queueDir: opts.queueDir,
  });
  t.after(() => ph.stop());
  return { ph, dns };
}

export interface SinkHop {
  ph: Posthorn;
  sink: Sink;
  /** The port of the sink, which the esmtp mailer connects to. */
  mailerPort: number;
}

/**
 * Starts a sink on 127.0.0.2 as the one MX of remote.example
 * (mx1.remote.example), a DNS server with that zone, and posthorn, which
 * delivers there. All three are stopped after the test.
 */
export async function startSinkHop(
  t: TestContext,
  opts: HopOptions & { sink?: Omit<SinkOptions, 'host' | 'port'> } = {},
): Promise<SinkHop> {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const sink = await startSink({ ...opts.sink, host: '127.0.0.2', port: mailerPort });
  t.after(() => sink.close());
  const { ph } = await startPosthornWithDns(t, { ...opts, mailerPort });
  return { ph, sink, mailerPort };
}

export interface DownHop {
  ph: Posthorn;
  /** The port on 127.0.0.2 that the esmtp mailer connects to. */
  mailerPort: number;
  /** Starts the sink on 127.0.0.2 at mailerPort so that later attempts deliver. The sink is closed after the test. */
  startSink(): Promise<Sink>;
}

/**
 * Sets up startSinkHop's DNS server and posthorn, but leaves the MX on
 * 127.0.0.2 down until the test calls startSink(), so attempts before that are
 * deferred. All are stopped after the test.
 */
export async function startNextHopDown(t: TestContext, opts: HopOptions = {}): Promise<DownHop> {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const { ph } = await startPosthornWithDns(t, { ...opts, mailerPort });
  const startLateSink = async (): Promise<Sink> => {
    const sink = await startSink({ host: '127.0.0.2', port: mailerPort });
    t.after(() => sink.close());
    return sink;
  };
  return { ph, mailerPort, startSink: startLateSink };
}

export interface PostfixHop {
  ph: Posthorn;
  postfix: Postfix;
}

/**
 * Starts Postfix on 127.0.0.4, which stores mail for remote.example in a
 * Maildir, on a port it returns as `mailerPort`. With `certs`, Postfix offers
 * STARTTLS. Postfix is stopped after the test.
 */
export async function startRemotePostfix(
  t: TestContext,
  opts: { certs?: TestCerts } = {},
): Promise<{ postfix: Postfix; mailerPort: number }> {
  const mailerPort = await freePortOn(['127.0.0.4']);
  const postfix = await startPostfix({
    port: mailerPort,
    addr: '127.0.0.4',
    mode: 'mailbox',
    domains: ['remote.example'],
    extraMainCf: opts.certs ? postfixTlsMainCf(opts.certs) : [],
  });
  t.after(() => postfix.stop());
  return { postfix, mailerPort };
}

/**
 * Starts Postfix as in startRemotePostfix and makes it the one MX of
 * remote.example (mx.remote.example). Also starts a DNS server with that zone
 * and posthorn, which delivers there. With `certs`, Postfix offers STARTTLS and
 * posthorn's client presents the test client certificate. All three are stopped
 * after the test.
 */
export async function startPostfixHop(t: TestContext, opts: HopOptions & { certs?: TestCerts } = {}): Promise<PostfixHop> {
  const { postfix, mailerPort } = await startRemotePostfix(t, { certs: opts.certs });
  const mc = [...(opts.certs ? clientTlsMc(opts.certs) : []), ...(opts.mc ?? [])];
  const { ph } = await startPosthornWithDns(t, {
    ...opts,
    mc,
    mailerPort,
    mx: [[10, 'mx.remote.example', '127.0.0.4']],
  });
  return { ph, postfix };
}
