// The outbound SMTP client: one session to one address of a relay host, one
// transaction with all recipients that go there. Replies are read through a
// queue of waiting handlers so that PIPELINING (RFC 2920) sends MAIL, every RCPT
// and DATA in one write and then takes their replies in order. With `lmtp` set
// it speaks LMTP (RFC 2033): LHLO, and one reply per recipient after the dot.

import * as net from 'node:net';
import type { SecureContext } from 'node:tls';

import type { Reply } from '../smtp/reply';
import { connectionCache } from './connection-cache';
import { DotStuffer } from './dot-stuff';
import { ReplyReader, SmtpClientError } from './reply-reader';
import type { Logger } from '../log/logger';
import { outboundTranscript, type OutboundTranscript } from '../log/transcript';
import type { ClientTls } from '../tls/client';
import { setTlsMacros, tlsLogFields } from '../tls/peer';
import { tlsFactsFromMacros } from '../policy/tls-rulesets';
import { MessageWriter } from './message-writer';
import { byParameter, deliverByRefusal, nextHopMinimum, secondsSince, type DeliverBy } from '../smtp/deliver-by';

/** Timeout.* values in milliseconds, as sendmail names them. */
export interface ClientTimeouts {
  connect: number;
  initial: number;
  helo: number;
  mail: number;
  rcpt: number;
  datainit: number;
  datablock: number;
  datafinal: number;
  quit: number;
}

export interface SessionOptions {
  /** IP address to connect to. */
  address: string;
  port: number;
  /** Relay host name for status texts, e.g. "mx.example.". */
  hostName: string;
  /** Name sent in EHLO/HELO ($j). */
  heloName: string;
  timeouts: ClientTimeouts;
  lmtp?: boolean;
  localAddress?: string;
  /** STARTTLS settings and the rulesets try_tls, tls_server, tls_rcpt; without them STARTTLS is not used. */
  tls?: ClientTls;
  /** Skips STARTTLS, for the clear-text retry after a failed handshake. */
  noTls?: boolean;
  /** Receives the STARTTLS=client lines. */
  logger?: Logger;
  /** The mailer's L= in bytes (line-limit.ts); longer lines are split. 0 or absent: no limit. */
  lineLimit?: number;
  /** Skips the check that the next hop is not this host (sendmail's F=k), for a submission to the own daemon. */
  noLoopCheck?: boolean;
}

export interface OutboundRecipient {
  address: string;
  /** DSN NOTIFY words, sent only when the server offers DSN. */
  notify?: string[];
  orcpt?: string;
}

export interface Transaction {
  sender: string;
  recipients: OutboundRecipient[];
  /** Header lines without CRLF; folds are kept. */
  headers: string[];
  /** The data file: body bytes with CRLF line ends, not dot-stuffed. */
  dataPath: string;
  /** The whole body when the caller has it in memory (a message just received); else it is read from dataPath. */
  body?: Buffer;
  bodySize: number;
  eightBit: boolean;
  ret?: 'FULL' | 'HDRS';
  envid?: string;
  /** BY= request (RFC 2852) and the item's creation time in seconds since the epoch. */
  deliverBy?: DeliverBy & { created: number };
}

export type RecipientStatus = 'sent' | 'tempfail' | 'permfail';

export interface RecipientResult {
  address: string;
  status: RecipientStatus;
  /** Enhanced status code, e.g. "2.0.0" or "5.1.1". */
  dsn: string;
  /** Status text without the "Deferred: " prefix, e.g. "451 4.3.0 Try later". */
  text: string;
  /** The remote reply as one line, for Diagnostic-Code; absent for local errors. */
  diagnostic?: string;
  /** Whether the next hop offered DSN, so that success notices pass to it; absent for local delivery. */
  nextHopDsn?: boolean;
  /** LMTP: the next hop gave this recipient its reply to the final dot, so a later break changes nothing. */
  final?: boolean;
}

/**
 * The result of one session. `unreachable` means the host could not take the
 * transaction at all (connection failed, 4xx greeting or HELO), so the caller
 * tries the next host. `rejected` means it rejected with 5xx before MAIL.
 */
export type SessionResult = (
  | {
      kind: 'unreachable';
      text: string;
      /** The enhanced status of a tls_server failure, e.g. 4.7.0. */
      dsn?: string;
    }
  | { kind: 'rejected'; dsn: string; text: string; diagnostic: string }
  | { kind: 'transaction'; recipients: RecipientResult[] }
) & {
  transcript: string[];
  /** The TLS handshake failed and no TLS_Srv: requirement forbids sending in clear text. */
  retryWithoutTls?: boolean;
};

const MAX_TRANSCRIPT_LINES = 200;

/**
 * A next hop's reply text goes into status fields, the log and DSN lines.
 * Longer text is cut, so that no bounce line passes RFC 5322's 998 octets.
 */
const MAX_REPLY_TEXT = 800;

function clipText(text: string): string {
  return text.length > MAX_REPLY_TEXT ? text.slice(0, MAX_REPLY_TEXT) + '...' : text;
}

/** Renders a reply as one line: "550 5.1.1 User unknown". */
export function replyLine(reply: Reply): string {
  const enhanced = reply.enhanced ? ` ${reply.enhanced}` : '';
  return clipText(`${reply.code}${enhanced} ${reply.lines.join(' ')}`.trimEnd());
}

function dsnOf(reply: Reply): string {
  return reply.enhanced ?? `${Math.floor(reply.code / 100)}.0.0`;
}

/** sendmail's status text for a permanent remote failure (sysexits wording). */
function permanentText(dsn: string): string {
  return dsn.startsWith('5.1.') ? 'User unknown' : 'Service unavailable';
}

/**
 * The steps of a transaction as sendmail's protocol error log lines name
 * them, and the reply class each expects: 3xx for DATA, 2xx for the others.
 */
export type ClientStep = 'MAIL' | 'RCPT' | 'DATA-1' | 'DATA-2';

/** Tests whether `reply` is the positive reply that `step` waits for. */
function positive(reply: Reply, step: ClientStep): boolean {
  return Math.floor(reply.code / 100) === (step === 'DATA-1' ? 3 : 2);
}

/**
 * Turns a reply into one recipient's result. A reply of the wrong class (a
 * 250 to DATA, a 354 to the final dot, a 3xx to RCPT) is sendmail's
 * EX_PROTOCOL, so the recipient fails for good with "Remote protocol error",
 * as sendmail's markfailure() decides.
 */
function resultFromReply(address: string, reply: Reply, step: ClientStep): RecipientResult {
  const dsn = dsnOf(reply);
  const diagnostic = replyLine(reply);
  if (positive(reply, step)) return { address, status: 'sent', dsn, text: clipText(reply.lines.join(' ')) };
  if (reply.code >= 400 && reply.code < 500) return { address, status: 'tempfail', dsn, text: diagnostic, diagnostic };
  if (reply.code >= 500) return { address, status: 'permfail', dsn, text: permanentText(dsn), diagnostic };
  return { address, status: 'permfail', dsn: '5.5.1', text: 'Remote protocol error', diagnostic };
}

/** Converts a connect error into sendmail's wording. */
function connectErrorText(err: NodeJS.ErrnoException, host: string): string {
  if (err.code === 'ECONNREFUSED') return `Connection refused by ${host}`;
  if (err.code === 'ETIMEDOUT') return `Connection timed out with ${host}`;
  if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') return `No route to host ${host}`;
  return `${err.message} with ${host}`;
}

function clientErrorText(err: unknown, host: string): string {
  if (err instanceof SmtpClientError) {
    if (err.kind === 'timeout') return `Connection timed out with ${host}`;
    if (err.kind === 'protocol') return `Remote protocol error with ${host} (${err.message})`;
    return `Connection reset by ${host}`;
  }
  return `${(err as Error).message} with ${host}`;
}

function connect(opts: SessionOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: opts.address, port: opts.port, localAddress: opts.localAddress });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
    }, opts.timeouts.connect);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function xtext(value: string): string {
  return value.replace(/[^!-~]|[+=]/g, (c) => '+' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'));
}

/** One outbound session; use `runSession` rather than this class directly. */
class SmtpSession {
  readonly transcript: string[] = [];
  private reader: ReplyReader;
  private extensions = new Map<string, string>();
  /** Per-recipient results known so far, kept for a session that breaks off. */
  results: RecipientResult[] | undefined;
  /** ${server_name}, ${server_addr}, ${verify} and the TLS macros of this connection. */
  readonly macros = new Map<string, string>();
  /** tls_server refused this server; open() returned this reply. */
  tlsFailure?: Reply;
  /** reuse() left its RSET to go out with the next transaction's commands. */
  private rsetPending = false;
  /** The handshake failed and the server may be retried without STARTTLS. */
  retryWithoutTls = false;
  /** A reply of the wrong class came, so the session is not cached. */
  protocolError = false;
  /** A 421 reply to STARTTLS: the server is closing the session. */
  private closing?: Reply;
  /** Recipients joined by commas, as sendmail's try_tls log line names them (e->e_to). */
  recipientList = '';

  constructor(
    private socket: net.Socket,
    private opts: SessionOptions,
  ) {
    this.reader = new ReplyReader(socket);
    socket.on('error', () => undefined);
    this.trace = outboundTranscript(opts.hostName);
    this.traceInput(socket);
  }

  /** -X: this session's record in the transcript file. */
  private readonly trace: OutboundTranscript | undefined;

  private traceInput(socket: net.Socket): void {
    const trace = this.trace;
    if (trace) socket.on('data', (chunk: Buffer | string) => trace.received(chunk));
  }

  // --- the connection cache (connection-cache.ts) ---

  usable(): boolean {
    return !this.socket.destroyed && !this.reader.hasPendingInput();
  }

  setIdle(idle: boolean): void {
    if (idle) this.socket.unref();
    else this.socket.ref();
  }

  onClose(listener: () => void): void {
    this.socket.once('close', listener);
  }

  /**
   * Starts another transaction on a cached session: new options (timeouts,
   * the item's logger), a fresh transcript, and RSET, which must get 250.
   * With PIPELINING the RSET goes out in one write with MAIL, RCPT and DATA,
   * which RFC 2920 allows, and saves a round trip. A reply other than 250
   * then ends the session before any message data is sent (CachedSessionGone),
   * and the delivery goes on over another session.
   */
  async reuse(opts: SessionOptions): Promise<boolean> {
    this.opts = { ...opts, noTls: this.opts.noTls };
    this.transcript.length = 0;
    this.results = undefined;
    if (this.extensions.has('PIPELINING')) {
      this.rsetPending = true;
      return true;
    }
    try {
      this.send(['RSET']);
      // NOTE: no Timeout.rset option; Timeout.mail bounds the RSET reply.
      return (await this.expect(this.opts.timeouts.mail, 'client RSET')).code === 250;
    } catch {
      return false;
    }
  }

  /** Keeps a transcript line for the bounce, cut as reply texts are (a line of a DSN stays below 998 octets). */
  private note(line: string): void {
    if (this.transcript.length < MAX_TRANSCRIPT_LINES) this.transcript.push(clipText(line));
  }

  private send(lines: string[]): void {
    this.reader.commandsSent(lines.length);
    for (const l of lines) this.note(`>>> ${l}`);
    const text = lines.map((l) => l + '\r\n').join('');
    this.trace?.sent(text);
    this.socket.write(text);
  }

  private async expect(timeoutMs: number, during: string): Promise<Reply> {
    const reply = await this.reader.next(timeoutMs, during);
    for (const line of replyLines(reply)) this.note(`<<< ${line}`);
    return reply;
  }

  /** Reads the greeting and sends EHLO (LHLO), or HELO when EHLO gets a 5xx. */
  async open(): Promise<Reply> {
    const t = this.opts.timeouts;
    const greeting = await this.expect(t.initial, 'client greeting');
    if (greeting.code !== 220) return greeting;

    const hello = this.opts.lmtp ? 'LHLO' : 'EHLO';
    this.send([`${hello} ${this.opts.heloName}`]);
    const ehlo = await this.expect(t.helo, `client ${hello}`);
    if (ehlo.code === 250) {
      this.extensions = parseExtensions(ehlo);
      return this.startTls(ehlo);
    }
    if (ehlo.code < 500 || this.opts.lmtp) return ehlo;

    this.send([`HELO ${this.opts.heloName}`]);
    return this.expect(t.helo, 'client HELO');
  }

  /**
   * STARTTLS after EHLO (RFC 3207) as sendmail's client does it: try_tls,
   * the STARTTLS reply and handshake setting ${verify}, a new EHLO inside TLS,
   * then tls_server. Returns the EHLO reply to go on with, or tls_server's
   * error reply.
   */
  private async startTls(ehlo: Reply): Promise<Reply> {
    const policy = this.opts.tls;
    // LMTP uses STARTTLS only over TCP, where the caller passes `tls`.
    if (!policy) return ehlo;
    const name = this.opts.hostName.replace(/\.$/, '');
    const addr = this.opts.address;
    const relay = `${this.opts.hostName} [${addr}]`;
    this.macros.set('{server_name}', name);
    this.macros.set('{server_addr}', addr);

    let verify = 'NONE';
    const context = policy.secureContext();
    if (this.extensions.has('STARTTLS') && !this.opts.noTls && context) {
      if (policy.tryTls(name, addr)) {
        verify = await this.negotiateTls(policy, context, name, relay);
      } else {
        // sendmail's rscheck() logs try_tls's error with the recipients (e->e_to) before the text.
        const recipients = this.recipientList === '' ? '' : `${this.recipientList}... `;
        this.opts.logger?.notice(`ruleset=try_tls, arg1=${name}, relay=${name}, reject=550 5.7.1 ${recipients}do not try TLS with ${name} [${addr}]`, 4);
      }
    }
    this.macros.set('{verify}', verify);
    // A 421 ends the session, as in sendmail's reply(), so the recipients are deferred with that reply.
    if (this.closing) return this.closing;

    const failure = policy.tlsServer(name, addr, tlsFactsFromMacros(this.macros, name));
    if (failure) {
      this.tlsFailure = failure;
      // sendmail logs the host name here without its trailing dot and without the address.
      this.opts.logger?.notice(`ruleset=tls_server, arg1=${verify}, relay=${name}, reject=${replyLine(failure)}`, 4);
      return failure;
    }
    if (!this.macros.has('{tls_version}')) return ehlo;

    // RFC 3207 section 4.2: everything learnt before TLS is void, so EHLO again.
    const hello = this.opts.lmtp ? 'LHLO' : 'EHLO';
    this.send([`${hello} ${this.opts.heloName}`]);
    const again = await this.expect(this.opts.timeouts.helo, `client ${hello}`);
    this.extensions = again.code === 250 ? parseExtensions(again) : new Map();
    return again;
  }

  /** Sends STARTTLS and runs the handshake; returns the ${verify} value. */
  private async negotiateTls(policy: ClientTls, context: SecureContext, name: string, relay: string): Promise<string> {
    this.send(['STARTTLS']);
    let answer: Reply;
    try {
      answer = await this.expect(policy.timeoutMs, 'client STARTTLS');
    } catch {
      return 'FAILURE';
    }
    // sendmail 8.13.5 and later treat 421 like 454, as a temporary failure.
    if (answer.code === 421) this.closing = answer;
    if (answer.code === 454 || answer.code === 421) return 'TEMP';
    if (answer.code === 501) return 'USAGE';
    if (answer.code !== 220) return 'PROTOCOL';

    try {
      // Bytes after the 220 would be taken as coming from inside TLS (CVE-2011-0411).
      if (this.reader.hasPendingInput()) throw new Error('server sent data after its 220 reply to STARTTLS');
      this.socket.removeAllListeners('data');
      const { socket, info } = await policy.handshake(this.socket, context, name);
      this.socket = socket;
      this.reader = new ReplyReader(socket, 0);
      socket.on('error', () => undefined);
      this.traceInput(socket);
      setTlsMacros(this.macros, info);
      // sendmail names the server by its host name alone here (mci_host), unlike the to= lines.
      this.opts.logger?.info(`STARTTLS=client, ${tlsLogFields(this.opts.hostName, info)}`, 9);
      this.opts.logger?.info(`STARTTLS=client, cert-subject=${info.certSubject}, cert-issuer=${info.certIssuer}, verifymsg=${info.verifyMessage}`, 12);
      return info.verify;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const timedOut = /timed out/.test(e.message) ? 1 : 0;
      this.opts.logger?.notice(`STARTTLS=client, error: connect failed=-1, SSL_error=1, timedout=${timedOut}, errno=${typeof e.errno === 'number' ? e.errno : 0}`, 6);
      this.opts.logger?.notice(`STARTTLS=client, relay=${relay}: ${e.message}`, 6);
      this.retryWithoutTls = policy.serverRequirement(name, this.opts.address) === undefined;
      return 'SOFTWARE';
    }
  }

  /**
   * Runs tls_rcpt for each recipient: those whose TLS_Rcpt: requirement this
   * connection does not meet get its error and are not sent. The others go
   * through one transaction, and the results keep the order of `tx.recipients`.
   */
  async transact(tx: Transaction): Promise<RecipientResult[]> {
    const policy = this.opts.tls;
    if (!policy) return this.transactAll(tx);
    const name = this.macros.get('{server_name}') ?? '';
    const facts = tlsFactsFromMacros(this.macros, name);
    const blocked = tx.recipients.map((r) => policy.tlsRcpt(r.address, facts));
    if (blocked.every((b) => b === undefined)) return this.transactAll(tx);

    for (const [i, failure] of blocked.entries()) {
      if (!failure) continue;
      // sendmail logs the address without angle brackets and the host name (with its dot) without the address.
      this.opts.logger?.notice(`ruleset=tls_rcpt, arg1=${tx.recipients[i].address}, relay=${this.opts.hostName}, reject=${replyLine(failure)}`, 4);
    }
    const merge = (sent: RecipientResult[] | undefined): RecipientResult[] => {
      let next = 0;
      return tx.recipients.map((r, i) => {
        const failure = blocked[i];
        if (failure) return tlsFailureResult(r.address, failure);
        return sent?.[next++] ?? { address: r.address, status: 'sent', dsn: '', text: '' };
      });
    };
    const open = tx.recipients.filter((_, i) => blocked[i] === undefined);
    if (open.length === 0) return merge([]);
    try {
      this.results = merge(await this.transactAll({ ...tx, recipients: open }));
      return this.results;
    } catch (err) {
      this.results = merge(this.results);
      throw err;
    }
  }

  private mailCommand(tx: Transaction): string {
    let cmd = `MAIL FROM:<${tx.sender}>`;
    if (this.extensions.has('SIZE')) cmd += ` SIZE=${messageSize(tx)}`;
    if (tx.eightBit && this.extensions.has('8BITMIME')) cmd += ' BODY=8BITMIME';
    if (this.extensions.has('DSN')) {
      if (tx.ret) cmd += ` RET=${tx.ret}`;
      // The queue keeps ENVID and ORCPT in xtext form as received, so they go out unchanged.
      if (tx.envid) cmd += ` ENVID=${tx.envid}`;
    }
    const by = this.extensions.get('DELIVERBY');
    if (tx.deliverBy && by !== undefined) cmd += byParameter(tx.deliverBy, secondsSince(tx.deliverBy.created), nextHopMinimum(by));
    return cmd;
  }

  private rcptCommand(r: OutboundRecipient): string {
    let cmd = `RCPT TO:<${r.address}>`;
    if (this.extensions.has('DSN')) {
      if (r.notify && r.notify.length > 0) cmd += ` NOTIFY=${r.notify.join(',')}`;
      if (r.orcpt) cmd += ` ORCPT=${r.orcpt}`;
    }
    return cmd;
  }

  /** Runs MAIL, RCPT, DATA and the message; returns one result per recipient. */
  private async transactAll(tx: Transaction): Promise<RecipientResult[]> {
    const t = this.opts.timeouts;
    const late = tx.deliverBy && deliverByRefusal(tx.deliverBy, secondsSince(tx.deliverBy.created), this.extensions.get('DELIVERBY'));
    if (late) return tx.recipients.map((r) => ({ address: r.address, status: 'permfail', dsn: '5.4.7', text: late }));
    const commands = [this.mailCommand(tx), ...tx.recipients.map((r) => this.rcptCommand(r))];
    const pipelining = this.extensions.has('PIPELINING');
    const rset = this.rsetPending;
    this.rsetPending = false;
    if (pipelining) this.send(rset ? ['RSET', ...commands, 'DATA'] : [...commands, 'DATA']);
    else this.send([commands[0]]);
    if (rset) await this.expectRset();

    const mail = this.checked(await this.expect(t.mail, 'client MAIL'), 'MAIL');
    const mailOk = positive(mail, 'MAIL');
    const rcptReplies: Reply[] = [];
    for (let i = 0; i < tx.recipients.length; i++) {
      if (!pipelining && mailOk) this.send([commands[i + 1]]);
      if (pipelining || mailOk) rcptReplies.push(this.checked(await this.expect(t.rcpt, 'client RCPT'), 'RCPT'));
    }
    const anyAccepted = rcptReplies.some((r) => positive(r, 'RCPT'));
    if (!pipelining && mailOk && anyAccepted) this.send(['DATA']);
    const data = pipelining || (mailOk && anyAccepted) ? await this.expect(t.datainit, 'client DATA') : undefined;
    const dataOk = data !== undefined && positive(data, 'DATA-1');

    if (!mailOk) {
      if (dataOk) await this.abortData();
      else if (data !== undefined) this.checked(data, 'DATA-1');
      return tx.recipients.map((r) => resultFromReply(r.address, mail, 'MAIL'));
    }
    const results = tx.recipients.map((r, i) => resultFromReply(r.address, rcptReplies[i], 'RCPT'));
    this.results = results;
    if (!anyAccepted) {
      // A 421 to the pipelined DATA still ends the session (checked() throws), so it is never cached.
      if (dataOk) await this.abortData();
      else if (data !== undefined) this.checked(data, 'DATA-1');
      return results;
    }
    if (!dataOk) return fail(results, this.checked(data as Reply, 'DATA-1'), 'DATA-1');
    const sent = await this.sendMessage(tx, results);
    for (const r of sent) if (r.status === 'sent') r.nextHopDsn = this.extensions.has('DSN');
    return sent;
  }

  /** Reads the reply to a pipelined RSET; anything but 250 gives up this cached session. */
  private async expectRset(): Promise<void> {
    let reply: Reply;
    try {
      // NOTE: no Timeout.rset option; Timeout.mail bounds the RSET reply.
      reply = await this.expect(this.opts.timeouts.mail, 'client RSET');
    } catch (err) {
      throw new CachedSessionGone((err as Error).message);
    }
    if (reply.code !== 250) throw new CachedSessionGone(`RSET failed with reply ${reply.code}`);
  }

  /**
   * Logs a reply of the wrong class as sendmail does ("SMTP DATA-1 protocol
   * error"); such a session is not cached, since its replies may be out of step.
   */
  private checked(reply: Reply, step: ClientStep): Reply {
    if (reply.code === 421) throw new ServiceClosing(reply);
    if (positive(reply, step) || reply.code >= 400) return reply;
    this.protocolError = true;
    this.opts.logger?.error(`${this.opts.hostName}: SMTP ${step} protocol error: ${replyLine(reply)}`);
    return reply;
  }

  /** Ends a DATA phase that a pipelined DATA opened without valid recipients. */
  private async abortData(): Promise<void> {
    this.send(['.']);
    await this.expect(this.opts.timeouts.datafinal, 'client DATA status');
  }

  private async sendMessage(tx: Transaction, results: RecipientResult[]): Promise<RecipientResult[]> {
    const t = this.opts.timeouts;
    const stuffer = new DotStuffer();
    this.note('>>> (message)');
    // The replies to the final dot are owed from here: one may come before the last write completes.
    const accepted = results.filter((r) => r.status === 'sent');
    this.reader.commandsSent(this.opts.lmtp ? accepted.length : 1);
    const writer = new MessageWriter(this.socket, t.datablock, this.trace, () => this.note('>>> .'), this.opts.lineLimit);
    const head = writer.head(tx.headers, stuffer);
    if (tx.body !== undefined) {
      // A body kept in memory is small: header, body and the final dot leave in one write.
      await writer.sendBuffer(head, tx.body, stuffer);
    } else {
      await writer.sendFile(tx.dataPath, tx.bodySize, stuffer, head);
    }

    if (!this.opts.lmtp) {
      return fail(results, this.checked(await this.expect(t.datafinal, 'client DATA status'), 'DATA-2'), 'DATA-2');
    }
    // LMTP (RFC 2033 section 4.2): one reply per accepted recipient, each final once it arrives.
    // A 421 there is one recipient's reply, so the replies still due are read.
    for (const r of accepted) {
      const reply = await this.expect(t.datafinal, 'client DATA status');
      if (reply.code !== 421) this.checked(reply, 'DATA-2');
      Object.assign(r, resultFromReply(r.address, reply, 'DATA-2'), { final: true });
    }
    return results;
  }


  /** Ends the session with QUIT; `verbose` gets sendmail's -v lines for it ("Closing connection to ..."). */
  async quit(verbose?: (line: string) => void): Promise<void> {
    if (this.socket.destroyed) return;
    try {
      verbose?.(`Closing connection to ${this.opts.hostName.replace(/\.$/, '')}`);
      verbose?.('>>> QUIT');
      this.send(['QUIT']);
      const reply = await this.expect(this.opts.timeouts.quit, 'client QUIT');
      if (verbose !== undefined) for (const line of replyLines(reply)) verbose(line);
    } catch {
      // The transaction is over; a lost QUIT reply changes nothing.
    }
    this.socket.destroy();
  }

  /** Sends QUIT to a next hop that is closing (421) and closes without waiting for its reply. */
  quitNow(): void {
    if (this.socket.destroyed || !this.socket.writable) {
      this.socket.destroy();
      return;
    }
    this.note('>>> QUIT');
    this.socket.end('QUIT\r\n', () => this.socket.destroy());
  }

  abort(): void {
    this.socket.destroy();
  }
}

/** Returns the lines of a reply as they came ("250-first", ..., "250 last"), each with its enhanced code. */
function replyLines(reply: Reply): string[] {
  const enhanced = reply.enhanced ? `${reply.enhanced} ` : '';
  const last = reply.lines.length - 1;
  return reply.lines.map((line, i) => `${reply.code}${i < last ? '-' : ' '}${enhanced}${line}`);
}

function parseExtensions(ehlo: Reply): Map<string, string> {
  const extensions = new Map<string, string>();
  for (const line of ehlo.lines.slice(1)) {
    const [keyword, ...params] = line.trim().split(/\s+/);
    if (keyword) extensions.set(keyword.toUpperCase(), params.join(' '));
  }
  return extensions;
}

function messageSize(tx: Transaction): number {
  const headerBytes = tx.headers.reduce((sum, h) => sum + Buffer.byteLength(h, 'latin1') + 2, 0);
  return headerBytes + 2 + tx.bodySize;
}

/** The result of a recipient that tls_rcpt kept back: deferred for a 4xx reply, bounced for a 5xx. */
function tlsFailureResult(address: string, failure: Reply): RecipientResult {
  const line = replyLine(failure);
  const status = failure.code < 500 ? 'tempfail' : 'permfail';
  return { address, status, dsn: dsnOf(failure), text: line, diagnostic: line };
}

/** Applies a failing reply to every recipient that was still on course. */
function fail(results: RecipientResult[], reply: Reply, step: ClientStep): RecipientResult[] {
  return results.map((r) => (r.status === 'sent' ? resultFromReply(r.address, reply, step) : r));
}

/** Builds the result of a session that broke off: a temporary failure for open recipients. */
function broken(results: RecipientResult[] | undefined, tx: Transaction, text: string, dsn = '4.4.2'): RecipientResult[] {
  const base: RecipientResult[] = results ?? tx.recipients.map((r) => ({ address: r.address, status: 'sent', dsn: '', text: '' }));
  return base.map((r) => (r.status === 'sent' && r.final !== true ? { address: r.address, status: 'tempfail', dsn, text } : r));
}

/** The connection cache key: a session is reused only with the same address, port and client settings. */
function cacheKey(opts: SessionOptions): string {
  return [opts.address, opts.port, opts.heloName, opts.localAddress ?? '', opts.tls ? 'tls' : ''].join('|');
}

/** Runs `tx` over a cached session to the same server; undefined when none is usable. */
async function runOnCachedSession(opts: SessionOptions, tx: Transaction): Promise<SessionResult | undefined> {
  const key = cacheKey(opts);
  for (;;) {
    const session = connectionCache.take(key) as SmtpSession | undefined;
    if (session === undefined) return undefined;
    if (!(await session.reuse(opts))) {
      session.abort();
      continue;
    }
    try {
      return await transactOn(session, opts, tx, key);
    } catch (err) {
      if (!(err instanceof CachedSessionGone)) throw err;
    }
  }
}

/** A cached session failed its RSET: nothing of the transaction was sent, so another session may carry it. */
class CachedSessionGone extends Error {}

/**
 * A 421 reply at any step: the next hop is closing the session. As sendmail's
 * reply() does, the client stops there, and every recipient without a final
 * reply is deferred with the 421 text.
 */
class ServiceClosing extends Error {
  constructor(readonly reply: Reply) {
    super(replyLine(reply));
  }
}

/** Connects to one address of a relay host and runs one transaction. */
export async function runSession(opts: SessionOptions, tx: Transaction): Promise<SessionResult> {
  if (!opts.lmtp && connectionCache.size > 0) {
    const reused = await runOnCachedSession(opts, tx);
    if (reused !== undefined) return reused;
  }
  let socket: net.Socket;
  try {
    socket = await connect(opts);
  } catch (err) {
    return { kind: 'unreachable', text: connectErrorText(err as NodeJS.ErrnoException, opts.hostName), transcript: [] };
  }
  const result = await runSessionOn(socket, opts, tx, opts.lmtp ? undefined : cacheKey(opts));
  if (!result.retryWithoutTls) return result;

  // As sendmail 8.16's TLSFallbacktoClear: the same server again, without STARTTLS.
  opts.logger?.notice(`STARTTLS=client, relay=${opts.hostName} [${opts.address}], TLS handshake failed, retrying without STARTTLS`, 6);
  let clear: net.Socket;
  try {
    clear = await connect(opts);
  } catch (err) {
    return { kind: 'unreachable', text: connectErrorText(err as NodeJS.ErrnoException, opts.hostName), transcript: result.transcript };
  }
  const retried = await runSessionOn(clear, { ...opts, noTls: true }, tx);
  return { ...retried, transcript: [...result.transcript, ...retried.transcript] };
}

/**
 * Runs one transaction over a stream that is already open: a TCP or unix
 * socket, or a child process's stdio joined into one duplex (LMTP mailers).
 * `opts.address` and `opts.port` are not used here.
 */
export async function runSessionOn(
  socket: net.Socket,
  opts: SessionOptions,
  tx: Transaction,
  /** Given, the session is offered to the connection cache after the transaction instead of QUIT. */
  cacheAs?: string,
): Promise<SessionResult> {
  const session = new SmtpSession(socket, opts);
  session.recipientList = tx.recipients.map((r) => r.address).join(',');
  const transcript = session.transcript;
  let hello: Reply;
  try {
    hello = await session.open();
  } catch (err) {
    session.abort();
    return { kind: 'unreachable', text: clientErrorText(err, opts.hostName), transcript };
  }
  if (hello.code !== 250) {
    await session.quit();
    if (session.retryWithoutTls) return { kind: 'unreachable', text: replyLine(hello), transcript, retryWithoutTls: true };
    if (session.tlsFailure && hello.code >= 500) {
      return { kind: 'rejected', dsn: dsnOf(hello), text: replyLine(hello), diagnostic: replyLine(hello), transcript };
    }
    if (session.tlsFailure) return { kind: 'unreachable', text: replyLine(hello), dsn: dsnOf(hello), transcript };
    if (hello.code < 500) return { kind: 'unreachable', text: replyLine(hello), transcript };
    const dsn = dsnOf(hello);
    return { kind: 'rejected', dsn, text: permanentText(dsn), diagnostic: replyLine(hello), transcript };
  }
  if (!opts.lmtp && !opts.noLoopCheck && greetsAs(hello, opts.heloName)) {
    // sendmail's smtpinit(): a next hop whose EHLO reply names this host is
    // this host (a SMART_HOST or MX pointing back), and the mail would go round.
    await session.quit();
    const line = `553 5.3.5 ${opts.hostName} config error: mail loops back to me (MX problem?)`;
    opts.logger?.error(line);
    return { kind: 'rejected', dsn: '5.3.5', text: 'Local configuration error', diagnostic: line, transcript };
  }

  return transactOn(session, opts, tx, cacheAs);
}

/** Tells whether the first word of an EHLO or HELO reply is `name`, compared without regard to case. */
function greetsAs(hello: Reply, name: string): boolean {
  const first = (hello.lines[0] ?? '').split(' ', 1)[0];
  return first !== '' && first.toLowerCase() === name.replace(/\.$/, '').toLowerCase();
}

/** Runs the transaction on an open session, then caches the session or ends it. */
/** Runs one transaction; throws CachedSessionGone when a cached session failed its pipelined RSET. */
async function transactOn(session: SmtpSession, opts: SessionOptions, tx: Transaction, cacheAs?: string): Promise<SessionResult> {
  const transcript = session.transcript;
  try {
    const recipients = await session.transact(tx);
    // The cache keeps the session; its transcript array is reused, so the result gets a copy.
    if (cacheAs !== undefined && !session.protocolError && connectionCache.put(cacheAs, session)) {
      return { kind: 'transaction', recipients, transcript: [...transcript] };
    }
    await session.quit();
    return { kind: 'transaction', recipients, transcript };
  } catch (err) {
    if (err instanceof ServiceClosing) {
      session.quitNow();
      const recipients = broken(session.results, tx, replyLine(err.reply), dsnOf(err.reply));
      return { kind: 'transaction', recipients, transcript: [...transcript] };
    }
    session.abort();
    if (err instanceof CachedSessionGone) throw err;
    const recipients = broken(session.results, tx, clientErrorText(err, opts.hostName));
    return { kind: 'transaction', recipients, transcript: [...transcript] };
  }
}
