// One mail filter as seen by one SMTP session: its connection, what it asked
// for in the option negotiation, and its state (sendmail's SMFS_* states).

import { nulFields, splitNulFields, type Packet } from './codec';
import { MilterConnection, MilterError } from './connection';
import {
  MACRO_STAGES,
  MACRO_STAGE_COMMAND,
  type FailureAction,
  type MacroStage,
  type MilterDefinition,
} from './definitions';
import { decisionOf, MTA_ACTIONS, MTA_PROTOCOL, MTA_VERSION, Protocol, type Decision } from './protocol';

/**
 * ready: takes commands. message-done: accepted the current message, so it
 * gets nothing until the next one. done: accepted the connection at connect
 * or HELO. error: failed, so its F= flag decides for it from now on.
 */
export type FilterState = 'ready' | 'message-done' | 'done' | 'error';

export interface FilterLog {
  /** Logs a line at the given Milter.LogLevel threshold. */
  (level: number, text: string): void;
}

export interface CommandOptions {
  /** The D packet's stage, whose macros go out before the command. */
  macroStage?: MacroStage;
  /** The SMFIP_NO* bit that makes the filter skip this command. */
  skipBit?: number;
  /** The SMFIP_NR_* bit that makes the filter send no reply. */
  noReplyBit?: number;
}

export class Filter {
  state: FilterState = 'ready';
  /** Whether the filter has seen MAIL of a message that has not ended yet. */
  inMessage = false;
  version = 0;
  actions = 0;
  protocol = 0;
  private conn?: MilterConnection;
  private readonly macroOverrides = new Map<MacroStage, string[]>();

  constructor(
    readonly def: MilterDefinition,
    private readonly macroLists: Record<MacroStage, string[]>,
    private readonly log: FilterLog,
  ) {}

  get name(): string {
    return this.def.name;
  }

  /** Whether the filter is in the error state (also after a command put it there). */
  get failed(): boolean {
    return this.state === 'error';
  }

  get onFailure(): FailureAction {
    return this.def.onFailure;
  }

  /** Connects and negotiates; on failure the filter enters the error state. */
  async open(): Promise<void> {
    const conn = new MilterConnection(this.def);
    this.conn = conn;
    try {
      await conn.open();
      await this.negotiate(conn);
    } catch (err) {
      this.toError(err);
    }
  }

  /** Checks whether the protocol bits the filter requested include `bit`. */
  wants(bit: number): boolean {
    return (this.protocol & bit) !== 0;
  }

  /** Sends the stage's macros, then the command, and returns the filter's decision. */
  async command(letter: string, data: Buffer, options: CommandOptions, macros: Map<string, string>): Promise<Decision> {
    if (this.state !== 'ready' || this.conn === undefined) return { kind: 'continue' };
    if (options.skipBit !== undefined && this.wants(options.skipBit)) return { kind: 'continue' };
    try {
      if (options.macroStage !== undefined) await this.sendMacros(options.macroStage, macros);
      await this.conn.send(letter, data);
      if (options.noReplyBit !== undefined && this.wants(options.noReplyBit)) return { kind: 'continue' };
      return await this.readDecision(letter);
    } catch (err) {
      this.toError(err);
      return { kind: 'continue' };
    }
  }

  /** Sends a packet that has no reply (A, Q, macros); errors put the filter in the error state. */
  async sendOnly(letter: string, data?: Buffer): Promise<void> {
    if (this.conn === undefined || this.state === 'error') return;
    try {
      await this.conn.send(letter, data);
    } catch (err) {
      this.toError(err);
    }
  }

  /** Reads one packet for the end-of-message phase; errors propagate to the caller. */
  async readPacket(timeoutMs: number): Promise<Packet> {
    if (this.conn === undefined) throw new MilterError('not connected');
    return this.conn.read(timeoutMs);
  }

  async sendPacket(letter: string, data?: Buffer): Promise<void> {
    if (this.conn === undefined) throw new MilterError('not connected');
    await this.conn.send(letter, data);
  }

  async sendMacros(stage: MacroStage, macros: Map<string, string>): Promise<void> {
    const names = this.macroOverrides.get(stage) ?? this.macroLists[stage];
    const fields: string[] = [];
    for (const name of names) {
      const value = macros.get(name);
      if (value !== undefined) fields.push(name, value);
    }
    if (fields.length === 0) return;
    const data = Buffer.concat([Buffer.from(MACRO_STAGE_COMMAND[stage], 'latin1'), nulFields(...fields)]);
    await this.sendPacket('D', data);
  }

  /** Puts the filter in the error state and closes its socket. */
  toError(err: unknown): void {
    if (this.state === 'error') return;
    const reason = err instanceof Error ? err.message : String(err);
    this.log(1, `Milter (${this.name}): ${reason}`);
    this.log(1, `Milter (${this.name}): to error state`);
    this.state = 'error';
    this.inMessage = false;
    this.conn?.close();
  }

  /** Sends Q and closes the socket. */
  async quit(): Promise<void> {
    if (this.conn === undefined) return;
    if (this.state !== 'error' && !this.conn.closed) await this.sendOnly('Q');
    this.conn.close();
  }

  private async readDecision(letter: string): Promise<Decision> {
    const conn = this.conn as MilterConnection;
    for (;;) {
      const packet = await conn.read();
      if (packet.command === 'p') continue;
      const decision = decisionOf(packet.command, packet.data);
      if (decision === undefined || decision.kind === 'skip') {
        throw new MilterError(`invalid response '${packet.command}' to command '${letter}'`);
      }
      return decision;
    }
  }

  private async negotiate(conn: MilterConnection): Promise<void> {
    const offer = Buffer.alloc(12);
    offer.writeUInt32BE(MTA_VERSION, 0);
    offer.writeUInt32BE(MTA_ACTIONS, 4);
    offer.writeUInt32BE(MTA_PROTOCOL, 8);
    await conn.send('O', offer);

    const answer = await conn.read();
    if (answer.command !== 'O' || answer.data.length < 12) {
      throw new MilterError(`negotiate: returned ${answer.command} (${answer.data.length} bytes) instead of O`);
    }
    const version = answer.data.readUInt32BE(0);
    const actions = answer.data.readUInt32BE(4);
    let protocol = answer.data.readUInt32BE(8);
    if (version < 2 || version > MTA_VERSION) {
      throw new MilterError(`negotiate: version ${version} != MTA milter version ${MTA_VERSION}`);
    }
    if ((actions & MTA_ACTIONS) !== actions) {
      throw new MilterError(
        `negotiate: filter abilities 0x${actions.toString(16)} != MTA milter abilities 0x${MTA_ACTIONS.toString(16)}`,
      );
    }
    if ((protocol & MTA_PROTOCOL) !== protocol) {
      throw new MilterError(
        `negotiate: protocol abilities 0x${protocol.toString(16)} != MTA milter abilities 0x${MTA_PROTOCOL.toString(16)}`,
      );
    }
    // Filters of older versions cannot handle the commands added after them.
    if (version <= 2) protocol |= Protocol.NOUNKNOWN;
    if (version <= 3) protocol |= Protocol.NODATA;
    this.version = version;
    this.actions = actions;
    this.protocol = protocol;
    this.readMacroOverrides(answer.data.subarray(12));
  }

  /** Reads the v6 lists "uint32 stage, names\0" that replace Milter.macros.* for this filter. */
  private readMacroOverrides(data: Buffer): void {
    let pos = 0;
    while (pos + 4 < data.length) {
      const index = data.readUInt32BE(pos);
      const end = data.indexOf(0, pos + 4);
      if (end < 0) break;
      const names = splitNulFields(data.subarray(pos + 4, end + 1))[0].split(/[\s,]+/).filter((n) => n !== '');
      const stage = MACRO_STAGES[index];
      if (stage !== undefined) this.macroOverrides.set(stage, names);
      pos = end + 1;
    }
  }
}
