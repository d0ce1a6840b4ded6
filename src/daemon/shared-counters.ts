// Connection counters shared by the daemon's worker processes (Workers=N):
// the ClientConn/ClientRate counts of FEATURE(`conncontrol') and
// FEATURE(`ratecontrol') (with ${client_rate}, ${total_rate} and
// ${client_connections}), the open sessions that MaxDaemonChildren limits, and
// the connections per second that ConnectionRateThrottle paces. The primary
// keeps the only copy (CounterServer). Each worker sends its requests over the
// cluster IPC channel (CounterClient), so the limits hold across workers as they do
// in one process.
//
// Requests that open something (a client connection, a session) have a
// matching release message that a worker always sends when the connection
// ends. IPC messages between two processes arrive in the order they were
// sent, so a release never overtakes its request. When a worker dies the
// primary drops everything that worker still held.
//
// A worker waits at most COUNTER_TIMEOUT_MS for a reply. Then it fails open
// to its own local counts, which see only its own connections, so each limit
// still applies per worker (at most Workers times the limit in all). This
// follows sendmail 8.13's default for a helper process that does not answer:
// a milter without F=R or F=T is skipped as if it did not exist. The counts
// guard against overload rather than grant access, and rejecting every
// client while the primary is busy would turn a slow primary into an outage.

import cluster, { type Worker } from 'node:cluster';
import type { Config } from '../config/types';
import type { Logger } from '../log/logger';
import { ConnectionCounters, type ConnectionCountStore, type ConnectionCounts } from '../policy/rate-control';
import { SecondCounts } from './connection-throttle';
import type { ConnectionRefusal } from './refuse-connections';

/**
 * Returns whether workers request the ClientConn/ClientRate counts from the primary: with
 * FEATURE(`conncontrol') or FEATURE(`ratecontrol'), whose checks use them.
 * NOTE: without either feature each worker counts ${client_rate},
 * ${total_rate} and ${client_connections} for its own connections only, which
 * saves one IPC round trip per connection.
 */
export function sharesClientCounts(config: Config): boolean {
  return config.features.some((f) => f.name === 'conncontrol' || f.name === 'ratecontrol');
}

/** How long a worker waits for the primary before it uses its own counts. */
export const COUNTER_TIMEOUT_MS = 1000;
/** Minimum time between two "no reply from the primary" log lines of one worker. */
const TIMEOUT_LOG_INTERVAL_MS = 60_000;

/** Tag of every counter message, so that other IPC traffic is left alone. */
const TAG = 'posthorn-counters';

type Request =
  | { tag: typeof TAG; op: 'open-client'; id: number; address: string }
  | { tag: typeof TAG; op: 'close-client'; address: string }
  | { tag: typeof TAG; op: 'adopt-client'; address: string }
  | { tag: typeof TAG; op: 'open-session'; id: number; daemon: string }
  | { tag: typeof TAG; op: 'close-session' }
  | { tag: typeof TAG; op: 'count-second'; id: number; daemon: string };

type Response =
  | { tag: typeof TAG; id: number; counts: ConnectionCounts }
  | { tag: typeof TAG; id: number; sessions: number; counted: boolean }
  | { tag: typeof TAG; id: number; count: number };

function isCounterMessage(message: unknown): message is { tag: typeof TAG } {
  return typeof message === 'object' && message !== null && (message as { tag?: unknown }).tag === TAG;
}

/** The counts one worker has open at the primary, dropped when the worker exits. */
interface WorkerHoldings {
  pid: number | undefined;
  sessions: number;
  /** Open client connections by address. */
  clients: Map<string, number>;
}

/** The primary's side: the one copy of the counts, served to every worker. */
export class CounterServer {
  private readonly counters: ConnectionCounters;
  private readonly seconds = new SecondCounts();
  private sessions = 0;
  private readonly holdings = new Map<number, WorkerHoldings>();
  private readonly onMessage = (worker: Worker, message: unknown): void => this.handle(worker, message);
  private readonly onExit = (worker: Worker): void => this.release(worker);

  constructor(
    windowMs: number,
    private readonly logger: Logger,
    /**
     * RefuseLA and MaxDaemonChildren over the sessions of all workers. The
     * primary decides, so that "rejecting connections" and "accepting
     * connections again" are logged once for the daemon, not per worker.
     */
    private readonly refusal?: ConnectionRefusal,
  ) {
    this.counters = new ConnectionCounters(windowMs);
    cluster.on('message', this.onMessage);
    cluster.on('exit', this.onExit);
  }

  /** Takes a new ConnectionRateWindowSize after SIGHUP. */
  setWindow(windowMs: number): void {
    this.counters.setWindow(windowMs);
  }

  /** Stops serving; the counts are gone with the primary. */
  close(): void {
    cluster.off('message', this.onMessage);
    cluster.off('exit', this.onExit);
  }

  /** Sessions open over all workers. */
  openSessions(): number {
    return this.sessions;
  }

  private handle(worker: Worker, message: unknown): void {
    if (!isCounterMessage(message) || worker.isDead()) return;
    const request = message as Request;
    const held = this.holdingsOf(worker);
    switch (request.op) {
      case 'open-client': {
        const counts = this.counters.opened(request.address);
        held.clients.set(request.address, (held.clients.get(request.address) ?? 0) + 1);
        this.reply(worker, { tag: TAG, id: request.id, counts });
        return;
      }
      case 'adopt-client': {
        this.counters.adopt(request.address);
        held.clients.set(request.address, (held.clients.get(request.address) ?? 0) + 1);
        return;
      }
      case 'close-client': {
        const n = held.clients.get(request.address) ?? 0;
        if (n === 0) return;
        if (n > 1) held.clients.set(request.address, n - 1);
        else held.clients.delete(request.address);
        this.counters.closed(request.address);
        return;
      }
      case 'open-session': {
        // The check against MaxDaemonChildren is made here, so that a
        // rejected connection never counts, not even for a moment.
        const sessions = this.sessions;
        const counted = !this.refusal?.refuse(request.daemon, sessions);
        if (counted) {
          this.sessions++;
          held.sessions++;
        }
        this.reply(worker, { tag: TAG, id: request.id, sessions, counted });
        return;
      }
      case 'close-session':
        if (held.sessions === 0) return;
        held.sessions--;
        this.sessions--;
        return;
      case 'count-second':
        this.reply(worker, { tag: TAG, id: request.id, count: this.seconds.add(request.daemon) });
        return;
    }
  }

  private holdingsOf(worker: Worker): WorkerHoldings {
    let held = this.holdings.get(worker.id);
    if (!held) {
      held = { pid: worker.process.pid, sessions: 0, clients: new Map() };
      this.holdings.set(worker.id, held);
    }
    return held;
  }

  private reply(worker: Worker, response: Response): void {
    if (!worker.isConnected()) return;
    try {
      worker.send(response);
    } catch {
      // The worker is going away, and its exit releases its counts.
    }
  }

  /** Drops the sessions and client connections of a worker that exited. */
  private release(worker: Worker): void {
    const held = this.holdings.get(worker.id);
    if (!held) return;
    this.holdings.delete(worker.id);
    let clients = 0;
    for (const [address, n] of held.clients) {
      for (let i = 0; i < n; i++) this.counters.closed(address);
      clients += n;
    }
    this.sessions -= held.sessions;
    if (held.sessions > 0 || clients > 0) {
      this.logger.info(`worker ${held.pid} exited: released its counts (sessions=${held.sessions}, client connections=${clients})`);
    }
  }
}

/** A session counted for MaxDaemonChildren; release() once when it ends. */
export interface SessionLease {
  /** Sessions open before this one: over all workers, or this worker's own after a timeout. */
  sessions: number;
  /**
   * The primary's decision (RefuseLA, MaxDaemonChildren), or undefined when
   * it did not reply in time and the worker decides on its own counts.
   */
  rejected: boolean | undefined;
  /** Ends the session's count; allowed, and a no-op, for a rejected one. */
  release(): void;
}

interface Pending {
  resolve(response: Response): void;
}

/** The IPC channel to the primary: process.send in a worker, a fake in unit tests. */
export interface CounterChannel {
  /** Sends a message; returns false when the channel is closed. */
  send(message: unknown): boolean;
  /** Adds a listener for messages from the primary; returns a function that removes it. */
  listen(listener: (message: unknown) => void): () => void;
}

/** The channel of a cluster worker to its primary. */
export const processChannel: CounterChannel = {
  send(message) {
    if (!process.connected || !process.send) return false;
    try {
      process.send(message);
      return true;
    } catch {
      return false;
    }
  },
  listen(listener) {
    process.on('message', listener);
    return () => process.off('message', listener);
  },
};

/** A worker's side: sends requests to the primary, and falls back to local counts when it does not reply in time. */
export class CounterClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly local: ConnectionCounters;
  private readonly localSeconds = new SecondCounts();
  private timeouts = 0;
  private nextTimeoutLog = 0;
  private readonly unlisten: () => void;

  constructor(
    windowMs: number,
    private readonly logger: Logger,
    private readonly timeoutMs = COUNTER_TIMEOUT_MS,
    private readonly channel: CounterChannel = processChannel,
  ) {
    // The local counts are kept all the time, so that a fallback uses this worker's real numbers.
    this.local = new ConnectionCounters(windowMs);
    this.unlisten = channel.listen((message) => this.receive(message));
  }

  /** Takes a new ConnectionRateWindowSize after SIGHUP, for the counts kept for a fallback. */
  setWindow(windowMs: number): void {
    this.local.setWindow(windowMs);
  }

  close(): void {
    this.unlisten();
  }

  private receive(message: unknown): void {
    if (!isCounterMessage(message)) return;
    const response = message as Response;
    const entry = this.pending.get(response.id);
    if (!entry) return;
    this.pending.delete(response.id);
    entry.resolve(response);
  }

  /** Returns the store for ConnectPolicy: the ClientConn and ClientRate counts and their macros. */
  connectionStore(): ConnectionCountStore {
    return {
      opened: (address) => this.openClient(address),
      closed: (address) => this.closeClient(address),
    };
  }

  /** Counts a connection for ConnectionRateThrottle; returns the count of this second over all workers. */
  async countSecond(daemon: string): Promise<number> {
    const local = this.localSeconds.add(daemon);
    const response = await this.request((id) => ({ tag: TAG, op: 'count-second', id, daemon }));
    return response && 'count' in response ? response.count : local;
  }

  /**
   * Asks the primary whether daemon `daemon` may start a session, which it
   * then counts against MaxDaemonChildren. `localSessions` is
   * this worker's own count, used when the primary does not reply in time.
   */
  async openSession(daemon: string, localSessions: number): Promise<SessionLease> {
    let counted: boolean | undefined;
    let released = false;
    const sendClose = (): void => {
      this.send({ tag: TAG, op: 'close-session' });
    };
    const lease: SessionLease = {
      sessions: localSessions,
      rejected: undefined,
      release: () => {
        if (released) return;
        released = true;
        if (counted) sendClose();
      },
    };
    const response = await this.request(
      (id) => ({ tag: TAG, op: 'open-session', id, daemon }),
      (late) => {
        // A reply after the timeout: the primary counted a session that this
        // worker may have ended already.
        if (!('counted' in late) || !late.counted) return;
        counted = true;
        if (released) sendClose();
      },
    );
    if (response && 'counted' in response) {
      counted = response.counted;
      lease.sessions = response.sessions;
      lease.rejected = !response.counted;
    }
    return lease;
  }

  private async openClient(address: string): Promise<ConnectionCounts> {
    const local = this.local.opened(address);
    const response = await this.request((id) => ({ tag: TAG, op: 'open-client', id, address }));
    return response && 'counts' in response ? response.counts : local;
  }

  private closeClient(address: string): void {
    this.local.closed(address);
    this.send({ tag: TAG, op: 'close-client', address });
  }

  /**
   * Has the primary count a session that this worker admitted while it kept
   * its own counts. It counts as open, not as a new connection, and closed()
   * ends it.
   */
  adoptClient(address: string): void {
    this.local.adopt(address);
    this.send({ tag: TAG, op: 'adopt-client', address });
  }

  /**
   * Sends a request and resolves with its reply, or with undefined after the
   * timeout or when the channel is closed. A reply after the timeout goes to
   * `late` if given, else it is dropped.
   */
  private request(build: (id: number) => Request, late?: (response: Response) => void): Promise<Response | undefined> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      if (!this.send(build(id))) {
        resolve(undefined);
        return;
      }
      const timer = setTimeout(() => {
        this.timedOut();
        if (late) this.pending.set(id, { resolve: late });
        else this.pending.delete(id);
        resolve(undefined);
      }, this.timeoutMs);
      this.pending.set(id, {
        resolve: (response) => {
          clearTimeout(timer);
          resolve(response);
        },
      });
    });
  }

  private send(message: Request): boolean {
    return this.channel.send(message);
  }

  private timedOut(): void {
    this.timeouts++;
    const now = Date.now();
    if (now < this.nextTimeoutLog) return;
    this.nextTimeoutLog = now + TIMEOUT_LOG_INTERVAL_MS;
    this.logger.error(
      `shared counters: no reply from the primary within ${this.timeoutMs} ms (timeouts so far: ${this.timeouts}); using this worker's own counts`,
    );
  }
}
