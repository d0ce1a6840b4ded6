// All input mail filters of one SMTP session, called in InputMailFilters
// order. The first decision other than continue or accept ends a command's
// walk through the filters.

import type { Reply } from '../smtp/reply';
import { nulFields } from './codec';
import type { MacroStage, MilterDefinition } from './definitions';
import { runEndOfMessage } from './eom';
import { Filter, type CommandOptions, type FilterLog } from './filter';
import type { MessageEditor } from './message-editor';
import { Protocol, type Decision } from './protocol';
import { parseReplyCode } from './reply-code';

/** The combined result of the filters for one command. */
export interface MilterResult {
  action: 'continue' | 'reject' | 'tempfail' | 'discard' | 'shutdown';
  /** The filter's own reply (SMFIR_REPLYCODE), when it gave a valid one. */
  reply?: Reply;
  /** The filter that decided. */
  filter?: string;
}

const CONTINUE: MilterResult = { action: 'continue' };

export interface ClientInfo {
  /** The client's host name, or "[address]" without one. */
  hostName: string;
  address: string;
  port: number;
}

export class MilterSession {
  readonly filters: Filter[];
  /** Set when connect or HELO was tempfailed: MAIL then gets 451. */
  tempfailed = false;

  constructor(defs: MilterDefinition[], macroLists: Record<MacroStage, string[]>, log: FilterLog) {
    this.filters = defs.map((def) => new Filter(def, macroLists, log));
  }

  /** Opens every filter, then sends the connection (C) to each. */
  async connect(client: ClientInfo, macros: Map<string, string>): Promise<MilterResult> {
    for (const filter of this.filters) await filter.open();

    let address = client.address;
    let family = address.includes(':') ? '6' : '4';
    if (address.startsWith('::ffff:') && address.includes('.')) {
      address = address.slice('::ffff:'.length);
      family = '4';
    }
    const port = Buffer.alloc(2);
    port.writeUInt16BE(client.port & 0xffff);
    const data = Buffer.concat([nulFields(client.hostName), Buffer.from(family), port, nulFields(address)]);
    return this.run('C', data, { macroStage: 'connect', skipBit: Protocol.NOCONNECT, noReplyBit: Protocol.NR_CONN }, macros, 'connection');
  }

  async helo(name: string, macros: Map<string, string>): Promise<MilterResult> {
    await this.abort();
    return this.run('H', nulFields(name), { macroStage: 'helo', skipBit: Protocol.NOHELO, noReplyBit: Protocol.NR_HELO }, macros, 'connection');
  }

  /** MAIL: the sender in angle brackets, then each ESMTP argument. */
  async envfrom(sender: string, args: string[], macros: Map<string, string>): Promise<MilterResult> {
    await this.abort();
    for (const filter of this.filters) {
      if (filter.state === 'ready') filter.inMessage = true;
    }
    const data = nulFields(`<${sender}>`, ...args);
    return this.run('M', data, { macroStage: 'envfrom', skipBit: Protocol.NOMAIL, noReplyBit: Protocol.NR_MAIL }, macros, 'message');
  }

  async envrcpt(recipient: string, args: string[], macros: Map<string, string>): Promise<MilterResult> {
    const data = nulFields(`<${recipient}>`, ...args);
    return this.run('R', data, { macroStage: 'envrcpt', skipBit: Protocol.NORCPT, noReplyBit: Protocol.NR_RCPT }, macros, 'message');
  }

  /**
   * Sends a recipient that the MTA rejected to the filters that requested
   * rejected recipients (SMFIP_RCPT_REJ). As in sendmail, their decisions do
   * not change the rejection, so they are read and dropped.
   */
  async rejectedRecipient(recipient: string, args: string[], macros: Map<string, string>): Promise<void> {
    const data = nulFields(`<${recipient}>`, ...args);
    const options: CommandOptions = { macroStage: 'envrcpt', skipBit: Protocol.NORCPT, noReplyBit: Protocol.NR_RCPT };
    for (const filter of this.filters) {
      if (!filter.wants(Protocol.RCPT_REJ)) continue;
      await filter.command('R', data, options, macros);
    }
  }

  /** Sends a command line the server does not know (SMFIC_UNKNOWN) to the filters. */
  async unknown(line: string, macros: Map<string, string>): Promise<MilterResult> {
    const options: CommandOptions = { skipBit: Protocol.NOUNKNOWN, noReplyBit: Protocol.NR_UNKN };
    return this.run('U', nulFields(line), options, macros, 'message');
  }

  async data(macros: Map<string, string>): Promise<MilterResult> {
    return this.run('T', Buffer.alloc(0), { macroStage: 'data', skipBit: Protocol.NODATA, noReplyBit: Protocol.NR_DATA }, macros, 'message');
  }

  /**
   * Runs headers, body and end of message through each filter in turn, so
   * that every filter receives the changes of the ones before it.
   * `syncReplacedBody` decides whether a replaced body is fsynced.
   */
  async endOfMessage(
    editor: MessageEditor,
    macros: Map<string, string>,
    syncReplacedBody: boolean,
    logWarning: (text: string) => void,
  ): Promise<MilterResult> {
    for (const filter of this.filters) {
      if (filter.state === 'error') {
        const failed = this.failureResult(filter);
        if (failed) return failed;
        continue;
      }
      if (filter.state !== 'ready' || !filter.inMessage) continue;

      let decision: Decision;
      try {
        decision = await runEndOfMessage(filter, editor, macros, logWarning);
        // The filters after this one see a quarantine reason in ${quarantine}.
        if (editor.item.quarantine !== undefined) macros.set('{quarantine}', editor.item.quarantine);
        if (decision.kind === 'accept' || decision.kind === 'continue') {
          await editor.writePendingBody(syncReplacedBody);
        }
      } catch (err) {
        editor.discardPendingBody();
        filter.toError(err);
        const failed = this.failureResult(filter);
        if (failed) return failed;
        continue;
      }
      filter.inMessage = false;
      editor.discardPendingBody();
      const result = this.resultOf(filter, decision, 'message');
      if (result !== undefined) return result;
    }
    editor.finish();
    return CONTINUE;
  }

  /** Sends A to the filters inside a message, and makes those that accepted it take the next one. */
  async abort(): Promise<void> {
    for (const filter of this.filters) {
      if (filter.inMessage && filter.state !== 'error') await filter.sendOnly('A');
      filter.inMessage = false;
      if (filter.state === 'message-done') filter.state = 'ready';
    }
  }

  /** Marks the end of a message that went through end of message: the filters need no A. */
  endMessage(): void {
    for (const filter of this.filters) {
      filter.inMessage = false;
      if (filter.state === 'message-done') filter.state = 'ready';
    }
  }

  /** Sends Q to every filter and closes the sockets. */
  async quit(): Promise<void> {
    await Promise.all(this.filters.map((filter) => filter.quit()));
  }

  private async run(
    letter: string,
    data: Buffer,
    options: CommandOptions,
    macros: Map<string, string>,
    scope: 'connection' | 'message',
  ): Promise<MilterResult> {
    for (const filter of this.filters) {
      if (filter.state === 'error') {
        const failed = this.failureResult(filter);
        if (failed) return failed;
        continue;
      }
      const decision = await filter.command(letter, data, options, macros);
      if (filter.failed) {
        const failed = this.failureResult(filter);
        if (failed) return failed;
        continue;
      }
      const result = this.resultOf(filter, decision, scope);
      if (result !== undefined) return result;
    }
    return CONTINUE;
  }

  /** Maps a decision to a result; undefined lets the next filter run. */
  private resultOf(filter: Filter, decision: Decision, scope: 'connection' | 'message'): MilterResult | undefined {
    switch (decision.kind) {
      case 'continue':
      case 'skip':
        return undefined;
      case 'accept':
        filter.state = scope === 'connection' ? 'done' : 'message-done';
        return undefined;
      case 'reject':
      case 'tempfail':
      case 'discard':
      case 'shutdown':
        return { action: decision.kind, filter: filter.name };
      case 'replycode': {
        const parsed = parseReplyCode(decision.text);
        if (parsed === undefined) return { action: 'reject', filter: filter.name };
        return { action: parsed.code < 500 ? 'tempfail' : 'reject', reply: parsed, filter: filter.name };
      }
    }
  }

  /** Maps a failed filter's F= flag to a result for the current command, or undefined for no flag. */
  private failureResult(filter: Filter): MilterResult | undefined {
    switch (filter.onFailure) {
      case 'reject':
        return { action: 'reject', filter: filter.name };
      case 'tempfail':
        return { action: 'tempfail', filter: filter.name };
      case 'shutdown':
        return { action: 'shutdown', filter: filter.name };
      case 'ignore':
        return undefined;
    }
  }
}
