// What an inbound session needs from the daemon: configuration, the queue, the
// checkpoint chain, and a way to hand accepted mail on for delivery.

import type { Config } from '../config/types';
import type { Logger } from '../log/logger';
import type { QueueStore } from '../queue/store';
import type { CheckpointChain } from './checkpoint';
import type { ServerHandshakeOptions, ServerTls } from '../tls/server';
import type { TlsInfo } from '../tls/peer';

export interface ServerContext {
  config: Config;
  logger: Logger;
  store: QueueStore;
  chain: CheckpointChain;
  /**
   * Whether an accepted message of `priority` is delivered at once:
   * DeliveryMode background or interactive, and not queued by sendmail's
   * shouldqueue() under QueueLA and QueueFactor. The commit then takes its lock.
   */
  deliversAtOnce?(priority?: number): boolean;
  /** Hands an accepted message on; `locked` when its commit took the lock. */
  onAccepted(id: string, locked?: boolean, priority?: number): void;
  /**
   * DeliveryMode=interactive: delivers an accepted message before the reply
   * to its DATA, as sendmail does, and resolves when the attempt is over
   * (delivered, deferred or bounced). `locked` when its commit took the lock.
   */
  deliverNow?(id: string, locked: boolean, verbose?: (line: string) => void): Promise<void>;
  /**
   * Starts a queue run that ignores retry times, over the items `select`
   * accepts (ETRN), even while another run is in progress, and resolves with the number of items it scheduled once
   * they have been tried. Absent where nothing delivers, so ETRN is not offered.
   */
  runQueue?(select: (id: string) => Promise<boolean>): Promise<number>;
  /** Resolves a client address to a verified host name, if any. */
  resolveClientName?(address: string): Promise<string | undefined>;
  /** Product version for $v and $Z. */
  version: string;
  /** The STARTTLS server context; absent where TLS cannot be used (e.g. -bs). */
  tls?: ServerTls;
}

/** The transport under a session: a TCP socket, or stdin/stdout for -bs. */
export interface SessionTransport {
  write(text: string | Buffer): boolean;
  onData(handler: (chunk: Buffer) => void): void;
  onEnd(handler: () => void): void;
  pause(): void;
  resume(): void;
  close(): void;
  /** Waits until buffered output has drained to the peer. */
  drain(): Promise<void>;
  /**
   * Runs the TLS server handshake on the same connection (STARTTLS, RFC 3207).
   * Bytes received before the call are never read as TLS records by the session.
   */
  startTls?(options: ServerHandshakeOptions): Promise<TlsInfo>;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
}
