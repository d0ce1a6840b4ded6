// One socket to one mail filter: connect with the C= timeout, write packets
// with the S= timeout, and read reply packets with the R= (or E=) timeout.

import * as net from 'node:net';
import { encodePacket, PacketDecoder, PacketError, type Packet } from './codec';
import type { MilterDefinition } from './definitions';

/** A filter failure: refused connection, timeout, closed socket or bad packet. */
export class MilterError extends Error {}

export class MilterConnection {
  private socket?: net.Socket;
  private readonly decoder = new PacketDecoder();
  private readonly packets: Packet[] = [];
  private failure?: MilterError;
  private waiter?: () => void;

  constructor(private readonly def: MilterDefinition) {}

  /** Opens the socket; rejects with MilterError when it cannot be reached in time. */
  async open(): Promise<void> {
    const socket = this.def.socket;
    if (socket === undefined) throw new MilterError(this.def.socketError ?? 'no socket');

    const options: net.NetConnectOpts =
      socket.kind === 'unix' ? { path: socket.path } : { host: socket.host, port: socket.port, family: socket.family };
    const conn = net.createConnection(options);
    this.socket = conn;

    await new Promise<void>((resolve, reject) => {
      const timeout = this.def.timeouts.connect;
      const timer = timeout > 0 ? setTimeout(() => fail(new MilterError('timeout connecting to filter')), timeout) : undefined;
      const fail = (err: Error): void => {
        if (timer) clearTimeout(timer);
        conn.destroy();
        reject(err instanceof MilterError ? err : new MilterError(`error connecting to filter: ${err.message}`));
      };
      conn.once('error', fail);
      conn.once('connect', () => {
        if (timer) clearTimeout(timer);
        conn.removeListener('error', fail);
        resolve();
      });
    });

    conn.on('data', (chunk: Buffer) => this.receive(chunk));
    conn.on('error', (err) => this.fail(new MilterError(`read error: ${err.message}`)));
    conn.on('close', () => this.fail(new MilterError('filter closed the connection')));
  }

  /** Writes one packet and waits until the socket has taken it. */
  async send(command: string, data?: Buffer): Promise<void> {
    const socket = this.socket;
    if (this.failure) throw this.failure;
    if (socket === undefined || socket.destroyed) throw new MilterError('not connected');
    const packet = encodePacket(command, data);

    await new Promise<void>((resolve, reject) => {
      const timeout = this.def.timeouts.send;
      const timer =
        timeout > 0
          ? setTimeout(() => {
              const err = new MilterError(`timeout writing ${command} to filter`);
              this.fail(err);
              reject(err);
            }, timeout)
          : undefined;
      socket.write(packet, (err) => {
        if (timer) clearTimeout(timer);
        if (err) reject(new MilterError(`write error: ${err.message}`));
        else resolve();
      });
    });
  }

  /** Waits for the next reply packet, for at most `timeoutMs` (default R=). */
  async read(timeoutMs = this.def.timeouts.read): Promise<Packet> {
    for (;;) {
      const packet = this.packets.shift();
      if (packet !== undefined) return packet;
      if (this.failure) throw this.failure;
      await this.waitForInput(timeoutMs);
    }
  }

  /** Closes the socket; pending reads fail. */
  close(): void {
    this.socket?.destroy();
    this.fail(new MilterError('connection closed'));
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  private waitForInput(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.waiter = undefined;
              this.fail(new MilterError('timeout waiting for a reply from the filter'));
              resolve();
            }, timeoutMs)
          : undefined;
      this.waiter = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
    });
  }

  private receive(chunk: Buffer): void {
    try {
      this.packets.push(...this.decoder.push(chunk));
    } catch (err) {
      const reason = err instanceof PacketError ? err.message : String(err);
      this.fail(new MilterError(reason));
    }
    this.wake();
  }

  private fail(err: MilterError): void {
    if (this.failure === undefined) {
      this.failure = err;
      this.socket?.destroy();
    }
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}
