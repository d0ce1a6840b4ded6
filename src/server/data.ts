// The DATA phase: the 354 reply, streaming the message into the data file,
// and the commit that must finish before the 250 (SuperSafe).

import { reply, type Reply } from '../smtp/reply';
import { DataReader, type DataEvent } from '../smtp/datareader';
import type { DataFileWriter } from '../queue/store';
import type { QueueItem } from '../queue/types';
import { initialPriority, precedenceClass } from '../queue/priority';
import type { Session } from './session';
import type { Logger } from '../log/logger';
import type { Transaction } from './transaction';
import { setQuarantine, verdictReply } from './envelope';
import { addMissingHeaders, headerValue, messageSize, receivedHeader } from './headers';
import { domainOf, isOwnName } from '../delivery/router';

export async function handleData(session: Session, arg: string): Promise<void> {
  const tx = session.transaction;
  if (!tx) {
    session.send(reply(503, '5.0.0', 'Need MAIL command'));
    return;
  }
  if (tx.recipients.length === 0) {
    session.send(reply(503, '5.0.0', 'Need RCPT (recipient)'));
    return;
  }
  if (arg.trim() !== '') {
    session.send(reply(501, '5.5.4', 'Syntax error in parameters'));
    return;
  }

  const verdict = await session.ctx.chain.run({
    stage: 'data',
    macros: session.macros,
    clientAddress: session.transport.remoteAddress,
    relayAllowed: session.relayAllowed,
  });
  if (verdict.action === 'reject' || verdict.action === 'tempfail') {
    session.send(verdictReply(verdict, reply(550, '5.7.1', 'Command rejected')));
    return;
  }
  if (verdict.action === 'discard') tx.discard = true;
  if (verdict.action === 'quarantine') setQuarantine(session, tx, verdict.reason);

  let writer: DataFileWriter;
  try {
    // A message that will be delivered at once may go to the commit journal: no df unless it needs one.
    // Local delivery reads the df, so a message with a local recipient gets one from the start.
    const config = session.ctx.config;
    const local = tx.recipients.some((r) => {
      const domain = domainOf(r.address);
      return domain === '' || isOwnName(domain, config);
    });
    const lazy = config.mailFilters.length === 0 && !local && session.ctx.deliversAtOnce?.() === true;
    writer = await session.ctx.store.openDataFile(tx.id, { lazy });
  } catch (err) {
    session.ctx.logger.child(tx.id).error(`cannot create data file: ${(err as Error).message}`);
    session.send(reply(451, '4.3.0', 'Error creating data file; try again later'));
    return;
  }

  session.enterData(new DataPhase(session, tx, writer));
  session.send(reply(354, undefined, 'Enter mail, end with "." on a line by itself'));
  session.flush();
}

export class DataPhase {
  private readonly reader: DataReader;
  private headers: string[] = [];
  private writeError?: Error;
  private done = false;
  /** Logger for the message's queue id, which its data file and later records carry. */
  readonly log: Logger;

  constructor(
    private readonly session: Session,
    private readonly tx: Transaction,
    private readonly writer: DataFileWriter,
  ) {
    const cfg = session.ctx.config;
    this.log = session.ctx.logger.child(tx.id);
    this.reader = new DataReader({
      maxMessageSize: cfg.maxMessageSize,
      maxHeadersLength: cfg.maxHeadersLength,
    });
  }

  /**
   * Feeds message bytes. Returns undefined while the message goes on, or the
   * bytes that followed the final "." once it has ended.
   */
  async push(chunk: Buffer): Promise<Buffer | undefined> {
    const events = this.reader.push(chunk);
    if (this.reader.sawBareLf || this.reader.sawBareCr) {
      await this.rejectBareLineEnd();
      return Buffer.alloc(0);
    }
    for (const event of events) {
      const rest = await this.handle(event);
      if (rest !== undefined) return rest;
    }
    return undefined;
  }

  /**
   * Ends the session at the first bare LF or bare CR in the data, as sendmail
   * 8.17 does. Another reading of such line ends (SMTP smuggling) could then
   * never turn one message into two, here or at the next hop.
   */
  private async rejectBareLineEnd(): Promise<void> {
    const session = this.session;
    const text = this.reader.sawBareLf ? 'Bare linefeed (LF) not allowed' : 'Bare carriage return (CR) not allowed';
    session.leaveData();
    session.transaction = undefined;
    await this.abort();
    this.log.notice(`collect: ${text}: from=<${this.tx.sender}>, relay=${session.macros.get('_')}`);
    session.send({ ...reply(421, '4.5.0', text), close: true });
  }

  /**
   * Logs a client that closed the connection in the middle of the message,
   * with sendmail's collect() texts, and returns the reply for it.
   */
  unexpectedClose(host: string): Reply {
    this.log.notice(`collect: unexpected close on connection from ${host}, sender=<${this.tx.sender}>`);
    return reply(451, '4.4.1', `collect: unexpected close on connection from ${host}, from=<${this.tx.sender}>`);
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.session.ctx.store.abort(this.tx.id).catch(() => undefined);
  }

  private async handle(event: DataEvent): Promise<Buffer | undefined> {
    switch (event.kind) {
      case 'headers':
        this.headers = event.headers;
        return undefined;
      case 'body':
        await this.writeBody(event.data);
        return undefined;
      case 'end':
        await this.finish(event);
        return event.rest;
    }
  }

  private async writeBody(data: Buffer): Promise<void> {
    if (this.writeError) return;
    try {
      await this.writer.write(data);
    } catch (err) {
      // Keep reading to the final dot so the session stays in step, then reply 452.
      this.writeError = err as Error;
    }
  }

  private async finish(end: Extract<DataEvent, { kind: 'end' }>): Promise<void> {
    const session = this.session;
    session.leaveData();
    session.transaction = undefined;

    const rejection = this.checkEnd(end);
    if (rejection) {
      await this.abort();
      this.log.notice(`${rejection.lines[0]}: from=<${this.tx.sender}>, relay=${session.macros.get('_')}`);
      session.send(rejection);
      return;
    }

    try {
      await this.writer.close();
    } catch (err) {
      this.writeError ??= err as Error;
    }
    if (this.writeError) {
      await this.abort();
      session.send(writeFailure(this.log, this.writeError, 'data'));
      return;
    }

    // end.size counts the header section too, but the data file contains the body only.
    await this.commit(this.writer.size);
  }

  /** Returns the reply that rejects the message, or undefined if it may be queued. */
  private checkEnd(end: Extract<DataEvent, { kind: 'end' }>): Reply | undefined {
    const cfg = this.session.ctx.config;
    if (end.error === 'size') {
      return reply(552, '5.2.3', `Message exceeds maximum fixed size (${cfg.maxMessageSize})`);
    }
    if (end.error === 'headers') {
      return reply(552, '5.6.0', `Headers too large (${cfg.maxHeadersLength} max)`);
    }

    const maxHops = Number(cfg.options.get('MaxHopCount') ?? 25);
    const hops = this.headers.filter((h) => /^received:/i.test(h)).length + 1;
    if (hops > maxHops) {
      return reply(554, '5.4.6', `Too many hops ${hops} (${maxHops} max): from <${this.tx.sender}>`);
    }
    return undefined;
  }

  private async commit(bodySize: number): Promise<void> {
    const session = this.session;
    const tx = this.tx;
    const item = this.buildItem(bodySize);

    // End of message: the milters may change the item or reject it before anything is made durable.
    const verdict = await session.ctx.chain.run({
      stage: 'eom',
      macros: session.macros,
      clientAddress: session.transport.remoteAddress,
      relayAllowed: session.relayAllowed,
      headers: this.headers,
      item,
      dataPath: session.ctx.store.dataPath(tx.id),
    });
    if (verdict.action === 'reject' || verdict.action === 'tempfail') {
      await this.abort();
      session.send(verdictReply(verdict, reply(554, '5.7.1', 'Command rejected')));
      return;
    }
    if (verdict.action === 'discard') tx.discard = true;
    if (verdict.action === 'quarantine') item.quarantine = verdict.reason;

    if (tx.discard) {
      await this.abort();
      this.log.info(`discarded: from=<${tx.sender}>, relay=${session.macros.get('_')}`);
      session.send(reply(250, '2.0.0', `${tx.id} Message accepted for delivery`));
      return;
    }

    // With immediate delivery the commit takes the item's lock, and a small body stays in memory for it.
    const config = session.ctx.config;
    const lock = session.ctx.deliversAtOnce?.(item.priority) === true;
    const keepBody = lock && config.mailFilters.length === 0;
    // DeliveryMode=interactive (or VERB) delivers before the 250; with SuperSafe=Interactive
    // the files are synced only if the message is still queued after that.
    const interactive = lock && (config.deliveryMode === 'interactive' || session.verbose) && session.ctx.deliverNow !== undefined;
    const syncLater = interactive && config.superSafe === 'interactive';
    try {
      await session.ctx.store.commit(item, { lock, keepBody, syncLater });
    } catch (err) {
      await this.abort();
      // commit() fsyncs the df too and marks its failures with queueFile 'data'.
      const what = (err as { queueFile?: string }).queueFile === 'data' ? 'data' : 'control';
      session.send(writeFailure(this.log, err as Error, what));
      return;
    }
    this.done = true;

    logReceipt(session, item);
    const locked = lock && session.ctx.store.holdsLock(tx.id);
    if (interactive) {
      if (!(await this.deliverFirst(tx.id, locked, syncLater))) return;
    } else {
      session.ctx.onAccepted(tx.id, locked, item.priority);
    }
    session.send(reply(250, '2.0.0', `${tx.id} Message accepted for delivery`));
  }

  /**
   * Delivers an accepted message before the reply (DeliveryMode=interactive)
   * and, with `syncLater`, makes what is left of it durable. Returns false
   * after replying itself when that sync failed: the client must not take
   * the message for queued, and it may send it again.
   */
  private async deliverFirst(id: string, locked: boolean, syncLater: boolean): Promise<boolean> {
    const session = this.session;
    // After VERB the client sees the delivery as sendmail's 050 lines before the reply.
    const verbose = session.verbose ? (line: string) => session.sendVerbose(line) : undefined;
    await session.ctx.deliverNow!(id, locked, verbose);
    if (!syncLater) return true;
    try {
      await session.ctx.store.syncItem(id);
      return true;
    } catch (err) {
      const failed = (err as { queueFile?: string }).queueFile === 'data' ? 'data' : 'control';
      session.send(writeFailure(this.log, err as Error, failed));
      return false;
    }
  }

  private buildItem(bodySize: number): QueueItem {
    const session = this.session;
    const tx = this.tx;
    const now = new Date();
    const headers = [receivedHeader(session.macros, tx, now), ...this.headers];
    addMissingHeaders(headers, { sender: tx.sender, hostName: session.hostName, id: tx.id, now });

    const size = messageSize(headers, bodySize);
    const klass = precedenceClass(headerValue(headers, 'precedence') ?? '');
    const macros = new Map<string, string>();
    for (const name of ['r', 's', '_', '{daemon_name}', '{client_addr}', '{client_name}']) {
      const value = session.macros.get(name);
      if (value !== undefined) macros.set(name, value);
    }

    return {
      id: tx.id,
      created: Math.floor(now.getTime() / 1000),
      lastAttempt: 0,
      attempts: 0,
      priority: initialPriority(size, tx.recipients.length, klass),
      bodyType: tx.bodyType,
      quarantine: tx.quarantine,
      flags: retFlags(tx.ret),
      macros,
      sender: tx.sender,
      envid: tx.envid,
      deliverBy: tx.deliverBy,
      ret: tx.ret,
      recipients: tx.recipients.map((r) => ({
        address: r.address,
        notify: r.notify,
        orcpt: r.orcpt,
        state: 'pending' as const,
      })),
      headers,
      bodySize,
    };
  }
}

/** Returns the F-line letters for DSN RET: "d" when given, plus "n" for RET=HDRS. */
function retFlags(ret: Transaction['ret']): string {
  if (ret === undefined) return '';
  return ret === 'HDRS' ? 'dn' : 'd';
}

function writeFailure(log: Logger, err: Error & { code?: string }, fileKind: 'data' | 'control'): Reply {
  // Node's message of a system error already starts with its code.
  const code = err.code !== undefined && !err.message.startsWith(err.code) ? `${err.code} ` : '';
  log.error(`queueing failed, ${fileKind} file: ${code}${err.message}`);
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT') {
    return reply(452, '4.3.1', `Insufficient disk space; error writing ${fileKind} file, try again later`);
  }
  return reply(451, '4.3.0', `Error writing ${fileKind} file, try again later`);
}

/** Logs the receipt line: "from=<a>, size=N, class=0, nrcpts=1, msgid=<..>, proto=ESMTP, ...". */
export function logReceipt(session: Session, item: QueueItem): void {
  const fields = [
    `from=<${item.sender}>`,
    `size=${messageSize(item.headers, item.bodySize)}`,
    `class=${precedenceClass(headerValue(item.headers, 'precedence') ?? '')}`,
    `nrcpts=${item.recipients.length}`,
  ];
  const msgid = headerValue(item.headers, 'message-id');
  if (msgid) fields.push(`msgid=${msgid.trim().slice(0, 100)}`);
  if (item.bodyType) fields.push(`bodytype=${item.bodyType}`);
  fields.push(`proto=${session.macros.get('r') ?? 'SMTP'}`);
  fields.push(`daemon=${session.options.daemonName}`);
  fields.push(`relay=${session.macros.get('_')}`);
  session.ctx.logger.child(item.id).info(fields.join(', '));
}
