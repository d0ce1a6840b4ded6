// A scriptable mail filter for the tests: the filter side of the milter
// protocol on a unix or TCP socket. Each command letter gets a script that
// returns the response packets, a pause, raw bytes or a close.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodePacket, nulFields, PacketDecoder, type Packet } from '../../src/milter/codec';

/** One action of the filter in response to a command. */
export type Step = Packet | { raw: Buffer } | { delayMs: number } | { close: true };

export type Script = (data: Buffer, conn: TestMilterConnection) => Step[] | undefined;

export interface TestMilterOptions {
  /** Listen on 127.0.0.1 instead of a unix socket. */
  inet?: boolean;
  version?: number;
  actions?: number;
  protocol?: number;
  /** v6 macro lists in the option negotiation response: [stage index, "names"]. */
  macroLists?: Array<[number, string]>;
  /** Scripts per command letter, which replace the default responses. */
  on?: Partial<Record<string, Script>>;
}

export interface TestMilterConnection {
  /** Every packet this connection received, in order. */
  received: Packet[];
}

/** Commands whose default answer is continue; E gets accept; D, A, Q, K get none. */
const REPLY_COMMANDS = new Set(['C', 'H', 'M', 'R', 'T', 'L', 'N', 'B', 'U']);

export const packet = (command: string, ...fields: string[]): Packet => ({ command, data: nulFields(...fields) });

/** 'y' reply packet with an SMTP reply text. */
export const replyCode = (text: string): Packet => packet('y', text);

/** 'i' or 'm' reply: a 32-bit index, then name and value. */
export function indexedHeader(command: 'i' | 'm', index: number, name: string, value: string): Packet {
  const idx = Buffer.alloc(4);
  idx.writeUInt32BE(index);
  return { command, data: Buffer.concat([idx, nulFields(name, value)]) };
}

export class TestMilter {
  readonly connections: TestMilterConnection[] = [];
  socketSpec = '';
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private dir?: string;

  constructor(private readonly options: TestMilterOptions = {}) {
    this.server = net.createServer((socket) => this.serve(socket));
  }

  async listen(): Promise<this> {
    if (this.options.inet) {
      await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
      const port = (this.server.address() as net.AddressInfo).port;
      this.socketSpec = `inet:${port}@127.0.0.1`;
    } else {
      this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'test-milter-'));
      const file = path.join(this.dir, 'milter.sock');
      await new Promise<void>((resolve) => this.server.listen(file, resolve));
      this.socketSpec = `unix:${file}`;
    }
    return this;
  }

  /**
   * Returns the command letters of the last connection without the D packets, e.g.
   * "OCHMRTLNBEQ". Earlier connections may come from the test harness probing
   * the daemon's port.
   */
  lastCommands(): string {
    const last = this.connections[this.connections.length - 1];
    return (last?.received ?? []).map((p) => p.command).filter((c) => c !== 'D').join('');
  }

  /** Returns the packets with one command letter, from all connections. */
  packets(command: string): Packet[] {
    return this.connections.flatMap((c) => c.received.filter((p) => p.command === command));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const conn: TestMilterConnection = { received: [] };
    this.connections.push(conn);
    const decoder = new PacketDecoder();
    let queue = Promise.resolve();

    socket.on('data', (chunk: Buffer) => {
      let packets: Packet[];
      try {
        packets = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const p of packets) {
        conn.received.push(p);
        queue = queue.then(() => this.answer(socket, conn, p));
      }
    });
  }

  private async answer(socket: net.Socket, conn: TestMilterConnection, p: Packet): Promise<void> {
    const script = this.options.on?.[p.command];
    let steps = script?.(p.data, conn);
    if (steps === undefined) steps = this.defaultSteps(p);
    for (const step of steps) {
      if (socket.destroyed) return;
      if ('delayMs' in step) await new Promise((resolve) => setTimeout(resolve, step.delayMs));
      else if ('close' in step) socket.destroy();
      else if ('raw' in step) socket.write(step.raw);
      else socket.write(encodePacket(step.command, step.data));
    }
  }

  private defaultSteps(p: Packet): Step[] {
    if (p.command === 'O') return [this.negotiation()];
    if (p.command === 'E') return [{ command: 'a', data: Buffer.alloc(0) }];
    if (REPLY_COMMANDS.has(p.command)) return [{ command: 'c', data: Buffer.alloc(0) }];
    return [];
  }

  private negotiation(): Packet {
    const head = Buffer.alloc(12);
    head.writeUInt32BE(this.options.version ?? 6, 0);
    head.writeUInt32BE(this.options.actions ?? 0x1ff, 4);
    head.writeUInt32BE(this.options.protocol ?? 0, 8);
    const lists = (this.options.macroLists ?? []).map(([index, names]) => {
      const idx = Buffer.alloc(4);
      idx.writeUInt32BE(index);
      return Buffer.concat([idx, nulFields(names)]);
    });
    return { command: 'O', data: Buffer.concat([head, ...lists]) };
  }
}

export const CONTINUE: Packet = { command: 'c', data: Buffer.alloc(0) };
export const ACCEPT: Packet = { command: 'a', data: Buffer.alloc(0) };
export const REJECT: Packet = { command: 'r', data: Buffer.alloc(0) };
export const TEMPFAIL: Packet = { command: 't', data: Buffer.alloc(0) };
export const DISCARD: Packet = { command: 'd', data: Buffer.alloc(0) };
