// One inbound SMTP session (RFC 5321): reads commands, runs the verb handlers,
// and in the DATA phase streams the message into the queue. Replies to
// pipelined commands are collected and written in one go when the input that
// is already buffered has been processed (RFC 2920).

import { LineReader } from '../smtp/linereader';
import { formatReply, reply, type Reply } from '../smtp/reply';
import { parseCommand } from '../smtp/command';
import type { Logger } from '../log/logger';
import type { ServerContext, SessionTransport } from './context';
import type { Transaction } from './transaction';
import { handleCommand } from './commands';
import { DataPhase } from './data';
import { expandMacros } from '../config/macros';
import { rfc822Date } from './dates';
import type { TlsInfo } from '../tls/peer';

export type SessionState = 'connected' | 'greeted' | 'helo' | 'mail' | 'data' | 'closed';

/** sendmail's MAXBADCOMMANDS: the session closes after this many bad commands. */
const MAX_BAD_COMMANDS = 25;

export interface SessionOptions {
  /** DAEMON_OPTIONS Name= of the listener, or "stdin" for -bs; logged as daemon=. */
  daemonName: string;
  /** -bs sessions and localhost may relay; set by connection checks. */
  relayAllowed: boolean;
  /** Text for relay= in logs, e.g. "localhost [127.0.0.1]". */
  clientText?: string;
  /** M= modifiers of the daemon that accepted the connection, e.g. "S" (no STARTTLS); also ${daemon_flags}. */
  daemonModifiers?: string;
}

export class Session {
  state: SessionState = 'connected';
  readonly macros = new Map<string, string>();
  readonly log: Logger;
  readonly id: string;
  relayAllowed: boolean;
  heloName?: string;
  esmtp = false;
  transaction?: Transaction;
  badCommands = 0;
  /** Whether the session issued MAIL, EXPN, VRFY or ETRN (for the "did not issue" line). */
  didWork = false;
  /** Set by VERB: messages are delivered before the reply to DATA. */
  verbose = false;
  /** The reply a null server sends to every command but QUIT/HELO/EHLO/NOOP/RSET. */
  nullServerReply?: Reply;
  /** The client pipelined commands behind HELO/EHLO; the next command gets 554. */
  pipelinedHelo = false;
  /** The parameters STARTTLS negotiated; set once the handshake succeeded. */
  tls?: TlsInfo;
  /**
   * Callbacks for parts that keep per-session state (the milters): `abort`
   * runs when the transaction is dropped (RSET, HELO, lost connection), `end`
   * once when the session ends.
   */
  readonly listeners = { abort: [] as Array<() => void>, end: [] as Array<() => void> };

  private readonly lines: LineReader;
  private data?: DataPhase;
  private readonly inbox: Buffer[] = [];
  private pumping = false;
  private output = '';
  private idleTimer?: NodeJS.Timeout;
  private ended = false;
  private peerEnded = false;

  constructor(
    readonly ctx: ServerContext,
    readonly transport: SessionTransport,
    readonly options: SessionOptions,
  ) {
    this.id = ctx.store.newId();
    this.log = ctx.logger.child(this.id);
    this.relayAllowed = options.relayAllowed;
    this.lines = new LineReader({ maxLineLength: ctx.config.maxLineLength });
    this.initMacros();
  }

  get hostName(): string {
    return this.ctx.config.hostName;
  }

  /** Starts the session: sends the greeting and begins reading commands. */
  start(greeting?: Reply): void {
    this.transport.onData((chunk) => this.receive(chunk));
    this.transport.onEnd(() => this.onPeerClosed());

    this.send(greeting ?? this.defaultGreeting());
    this.flush();
    this.state = 'greeted';
    this.armIdleTimer('command');
  }

  defaultGreeting(): Reply {
    const template = String(this.ctx.config.options.get('SmtpGreetingMessage') ?? '$j Posthorn $v/$Z; $b');
    const text = expandMacros(template, (name) => this.macros.get(name));
    const words = text.split(' ');
    // sendmail inserts "ESMTP" as the second word of every greeting.
    words.splice(1, 0, 'ESMTP');
    return reply(220, undefined, words.join(' '));
  }

  /** Queues a reply; it is written when the buffered input has been handled. */
  send(r: Reply): void {
    this.output += formatReply(r);
    if (r.close) this.state = 'closed';
  }

  /** Queues one verbose line (after VERB) as "050 <line>", with control bytes shown as '?'. */
  sendVerbose(line: string): void {
    this.output += `050 ${line.replace(/[\x00-\x1f\x7f]/g, '?')}\r\n`;
  }

  flush(): void {
    if (this.output.length === 0) return;
    this.transport.write(this.output);
    this.output = '';
  }

  /** Ends the session after flushing queued replies. */
  close(): void {
    this.flush();
    this.state = 'closed';
    this.clearIdleTimer();
    this.transport.close();
    this.finish();
  }

  /**
   * Drops every byte that arrived but was not yet read as a command, for the
   * switch to TLS (RFC 3207: commands pipelined after STARTTLS must not run).
   * Returns the number of bytes dropped.
   */
  /** Returns whether input beyond the command being handled has already arrived. */
  hasPendingInput(): boolean {
    return this.lines.pending > 0 || this.inbox.length > 0;
  }

  discardPendingInput(): number {
    let dropped = this.lines.takeRest().length;
    for (const chunk of this.inbox.splice(0)) dropped += chunk.length;
    return dropped;
  }

  /** Switches to the DATA phase after the 354 reply. */
  enterData(phase: DataPhase): void {
    this.data = phase;
    this.state = 'data';
    this.armIdleTimer('datablock');
  }

  /** Returns to command mode after the DATA phase. */
  leaveData(): void {
    this.data = undefined;
    this.state = 'helo';
    this.armIdleTimer('command');
  }

  /** Whether a message is being received, or input (such as the commit after the final dot) is still being processed. */
  get busy(): boolean {
    return this.state === 'data' || this.pumping;
  }

  private initMacros(): void {
    const t = this.transport;
    const cfg = this.ctx.config;
    for (const [k, v] of cfg.macros) this.macros.set(k, v);
    this.macros.set('j', cfg.hostName);
    this.macros.set('v', this.ctx.version);
    this.macros.set('Z', this.ctx.version);
    this.macros.set('b', rfc822Date(new Date()));
    this.macros.set('r', 'SMTP');
    this.macros.set('{daemon_name}', this.options.daemonName);
    this.macros.set('{daemon_flags}', this.options.daemonModifiers ?? '');
    this.macros.set('{client_addr}', t.remoteAddress);
    this.macros.set('{client_port}', String(t.remotePort));
    this.macros.set('{if_addr}', t.localAddress);
    this.macros.set('{daemon_port}', String(t.localPort));
    this.macros.set('_', this.options.clientText ?? `[${t.remoteAddress}]`);
    this.macros.set('{client_name}', this.options.clientText?.split(' ')[0] ?? `[${t.remoteAddress}]`);
  }

  private receive(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.inbox.push(chunk);
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    this.transport.pause();
    try {
      let chunk: Buffer | undefined;
      while (this.state !== 'closed' && (chunk = this.inbox.shift()) !== undefined) {
        await this.consume(chunk);
        this.flush();
        await this.transport.drain();
      }
    } catch (err) {
      this.log.error(`session error: ${(err as Error).stack ?? err}`);
      this.send(reply(421, '4.3.0', `${this.hostName} Internal error, closing connection`));
      this.state = 'closed';
    } finally {
      this.pumping = false;
      this.flush();
      if (this.state === 'closed') this.close();
      else if (this.peerEnded && this.inbox.length === 0) this.endAfterInput();
      else this.transport.resume();
    }
  }

  private async consume(chunk: Buffer): Promise<void> {
    // Timeout.datablock bounds each read, as in sendmail's collect(), but
    // Timeout.command bounds the wait for a whole command line, as sendmail's
    // sfgets() does, so a client trickling bytes cannot hold the session.
    if (this.state === 'data') this.armIdleTimer('datablock');
    else if (this.lines.pending === 0) this.armIdleTimer('command');

    if (this.data) {
      const rest = await this.data.push(chunk);
      if (rest === undefined || rest.length === 0) return;
      chunk = rest;
    }
    this.lines.push(chunk);

    for (;;) {
      if (this.state === 'closed') return;
      const line = this.lines.next();
      if (line === undefined) return;

      if (line.kind === 'toolong') {
        this.badCommand(reply(500, '5.5.0', 'Command line too long'));
        continue;
      }
      await this.handleLine(line.text);
      await this.applyBackpressure();

      if (this.data) {
        // Bytes that followed the DATA command belong to the message.
        const rest = this.lines.takeRest();
        if (rest.length === 0) return;
        const after = await this.data.push(rest);
        if (after !== undefined && after.length > 0) this.lines.push(after);
      }
    }
  }

  /**
   * Stops reading commands while the client does not read its replies: queued
   * replies are written out and, if the socket's buffer is full, the session
   * waits for it to drain. Without this a client that pipelines without reading
   * could make the daemon buffer replies without bound.
   */
  private async applyBackpressure(): Promise<void> {
    if (this.output.length < 16 * 1024) return;
    this.flush();
    await this.transport.drain();
  }

  private async handleLine(text: string): Promise<void> {
    const command = parseCommand(text);
    this.log.log(14, 'debug', `<-- ${command.verb === 'AUTH' ? 'AUTH ...' : text.slice(0, 200)}`);
    await handleCommand(this, command, text);
  }

  /** Counts a bad command and closes the session once there are too many. */
  badCommand(r: Reply): void {
    this.badCommands++;
    if (this.badCommands >= MAX_BAD_COMMANDS) {
      this.log.notice(`${this.macros.get('_')}: too many bad commands`);
      this.send(reply(421, '4.7.0', `${this.hostName} Too many bad commands; closing connection`));
      this.state = 'closed';
      return;
    }
    this.send(r);
  }

  private armIdleTimer(kind: 'command' | 'datablock'): void {
    this.clearIdleTimer();
    const ms = this.ctx.config.timeouts.get(kind) ?? 3600_000;
    if (ms <= 0) return;
    this.idleTimer = setTimeout(() => this.onIdleTimeout(kind), ms);
    this.idleTimer.unref();
  }

  private clearIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private onIdleTimeout(kind: string): void {
    const during = kind === 'datablock' ? 'message collect' : 'server cmd read';
    // Inside DATA the record carries the queue id, as the message's other records do.
    const log = this.data?.log ?? this.log;
    log.notice(`timeout waiting for input from ${this.macros.get('_')} during ${during}`);
    this.send(reply(421, '4.4.1', `${this.hostName} Lost input channel from ${this.macros.get('_')}`));
    this.state = 'closed';
    // close() ends a -bs process, so the data file is removed before it runs.
    void this.abortTransaction().finally(() => this.close());
  }

  /**
   * Handles the end of the client's input. Commands that arrived before it are
   * still processed and replied to first, as a client may send everything and
   * then half-close the connection.
   */
  private onPeerClosed(): void {
    if (this.state === 'closed') return;
    this.peerEnded = true;
    if (this.pumping || this.inbox.length > 0) return;
    this.endAfterInput();
  }

  private endAfterInput(): void {
    if (this.data) {
      // A client that only half-closed still reads the reply.
      this.send(this.data.unexpectedClose(this.macros.get('{client_name}') ?? 'localhost'));
    }
    this.state = 'closed';
    // close() ends a -bs process, so the data file is removed before it runs.
    void this.abortTransaction().finally(() => this.close());
  }

  /** Drops the current transaction and any data file it started. */
  async abortTransaction(): Promise<void> {
    const data = this.data;
    this.data = undefined;
    this.transaction = undefined;
    for (const listener of this.listeners.abort) listener();
    if (data) await data.abort();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    for (const listener of this.listeners.end) listener();
    if (!this.didWork) {
      const client = this.macros.get('_');
      this.log.info(`${client} did not issue MAIL/EXPN/VRFY/ETRN during connection to ${this.options.daemonName}`, 6);
    }
  }
}
