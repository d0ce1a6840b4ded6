// The SMTP daemon (-bd, -bD): one listener per DAEMON_OPTIONS entry, a session
// per connection, deliveries per DeliveryMode, periodic queue runs (-q15m),
// the PidFile, and orderly shutdown on SIGTERM/SIGINT.

import { DescriptorWatch, openFileLimit } from './descriptor-limit';
import { connectionCache } from '../delivery/connection-cache';
import * as net from 'node:net';
import * as fs from 'node:fs';
import type { DaemonSpec } from '../config/types';
import { Session } from '../server/session';
import { startSessionWithMilters } from '../milter/connect';
import { applySrvFeatures } from '../server/srv-features';
import { isSmtpsSession, startSmtps } from '../server/starttls';
import { normalizeAddress, socketTransport } from '../server/transport';
import { clientText, createConnectPolicy, resolveClient, type ConnectPolicy } from '../server/connect';
import { ConnectionCounters, type ConnectionCountStore } from '../policy/rate-control';
import { forgetSharedAccessMap } from '../policy/check-mail';
import { ConnectionRefusal, refusalOptionsFromConfig } from './refuse-connections';
import { isLocalhostClient } from '../policy/relay';
import { serverContext, type Services } from './services';
import type { ServerContext } from '../server/context';
import { formatInterval } from './interval';
import { expandPidFilePath, PidFile, PidFileInUseError } from './pidfile';
import type { TranscriptFile } from '../log/transcript';
import { SessionTracker, SHUTDOWN_GRACE_MS } from './signals';
import type { Config } from '../config/types';
import { createChain } from './services';
import { reopenListeners, type ListenerSet } from './reload-listeners';
import { ConnectionThrottle, throttleOptionsFromConfig } from './connection-throttle';
import { CounterClient, CounterServer, sharesClientCounts, type SessionLease } from './shared-counters';

export interface DaemonOptions {
  /** Milliseconds between queue runs; 0 for none. */
  queueInterval: number;
  /** The command line, written to the PidFile's second line. */
  commandLine: string;
  /** -X: every session's lines are copied into this file. */
  transcript?: TranscriptFile;
  /**
   * Workers (workers.ts): a 'primary' opens no listeners (its workers do); a
   * 'worker' writes no PidFile. Unset for a daemon in one process.
   */
  role?: 'primary' | 'worker';
}

export class Daemon {
  private readonly servers: net.Server[] = [];
  /** The DAEMON_OPTIONS entry each listening socket was opened for. */
  private readonly specs = new WeakMap<net.Server, DaemonSpec>();
  private readonly sockets = new Set<net.Socket>();
  /** Sessions of a worker that the primary counts against MaxDaemonChildren. */
  private readonly counted = new WeakSet<net.Socket>();
  private queueTimer?: NodeJS.Timeout;
  /** Replaced by reload(); open sessions keep the context they started with. */
  private ctx: ServerContext;
  private readonly sessions = new SessionTracker();
  /** check_relay, the connection counts and greet_pause, before each greeting. */
  private connectPolicy: ConnectPolicy;
  /** Whether connectPolicy's counts are the primary's (conncontrol or ratecontrol in a worker). */
  private sharedCounts: boolean;
  /** RefuseLA and MaxDaemonChildren. */
  private readonly refusal: ConnectionRefusal;
  /** ConnectionRateThrottle and DelayLA. */
  private readonly throttle: ConnectionThrottle;
  /** Workers: the counters shared by all workers, kept in the primary (shared-counters.ts). */
  private readonly counterServer?: CounterServer;
  private readonly counterClient?: CounterClient;
  private maxDaemonChildren: number;
  /** Warns when the open sessions come near the limit of open files. */
  private readonly descriptors: DescriptorWatch;
  private stopping = false;
  private pidFile?: PidFile;

  constructor(
    private readonly services: Services,
    private readonly options: DaemonOptions,
  ) {
    this.ctx = serverContext(services);
    const { config, logger } = services;
    const windowMs = rateWindowMs(config);
    const refusalOptions = refusalOptionsFromConfig(config);
    this.maxDaemonChildren = refusalOptions.maxDaemonChildren;
    this.descriptors = new DescriptorWatch(openFileLimit(), (message) => logger.warn(message));
    this.refusal = new ConnectionRefusal(refusalOptions, logger);
    if (options.role === 'primary') this.counterServer = new CounterServer(windowMs, logger, this.refusal);
    const client = options.role === 'worker' ? new CounterClient(windowMs, logger) : undefined;
    this.counterClient = client;
    this.sharedCounts = client !== undefined && sharesClientCounts(config);
    this.connectPolicy = createConnectPolicy(this.ctx, logger, this.sharedCounts ? client?.connectionStore() : undefined);
    const countConnection = client ? (name: string) => client.countSecond(name) : undefined;
    this.throttle = new ConnectionThrottle({ ...throttleOptionsFromConfig(config), countConnection }, logger);
  }

  async start(): Promise<void> {
    const { config, logger } = this.services;
    // The PidFile is claimed first, so that a second daemon on the same
    // PidFile stops before it opens any socket.
    if (this.options.role !== 'worker') this.writePidFile();
    try {
      for (const spec of this.options.role === 'primary' ? [] : config.daemons) {
        this.servers.push(await this.listen(spec));
      }
    } catch (err) {
      for (const server of this.servers) server.close();
      this.removePidFile();
      throw err;
    }

    const info = this.daemonInfo();
    logger.info(`starting daemon (Posthorn ${this.ctx.version}): ${info}`);
    // STARTTLS: the secure context is built once the listeners are up (src/tls/server.ts).
    if (this.options.role !== 'primary') this.ctx.tls?.prepare();

    // sendmail runs the whole queue once at start when a queue interval is
    // given. The periodic runs after it skip items whose retry time has not come.
    if (this.options.queueInterval > 0) {
      void this.runQueue(true);
      this.queueTimer = setInterval(() => void this.runQueue(false), this.options.queueInterval);
    }
  }

  /** Stops accepting, lets open sessions end or aborts them, and waits for deliveries. */
  private deliveriesStopped: Promise<void> | undefined;

  /**
   * Stops the delivery runner (see DeliveryRunner.stop): nothing new starts,
   * and running deliveries get SHUTDOWN_GRACE_MS. The primary of worker
   * processes calls it while the workers stop, so the two waits overlap.
   */
  stopDeliveries(): Promise<void> {
    this.deliveriesStopped ??= this.services.runner.stop(SHUTDOWN_GRACE_MS);
    return this.deliveriesStopped;
  }

  async stop(reason: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const { logger } = this.services;
    logger.info(`stopping daemon, reason=${reason}`);

    if (this.queueTimer) clearInterval(this.queueTimer);
    // Running deliveries get their grace period at the same time as messages
    // being received get theirs; the rest stay queued.
    const deliveries = this.stopDeliveries();
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    // Messages being received are finished (or, after the grace period, aborted
    // below), so that no half-written item stays in the queue.
    const unfinished = await this.sessions.waitForTransactions();
    for (const socket of this.sockets) {
      socket.end('421 4.3.2 Shutting down\r\n');
      socket.destroySoon();
    }
    await this.sessions.waitClosed();
    // Only a message still being received is dropped; a commit in progress
    // (state no longer 'data') is left to finish.
    for (const session of unfinished) if (session.state === 'data') await session.abortTransaction();
    for (const socket of this.sockets) socket.destroy();
    await closed;
    await deliveries;
    await connectionCache.flush();
    this.counterServer?.close();
    this.counterClient?.close();
    this.removePidFile();
  }

  /**
   * Applies a configuration read again on SIGHUP: the option values are
   * updated in place, and the checkpoint chain (access map, rulesets, milters)
   * is rebuilt for new sessions. Queued mail, deliveries and open sessions
   * are left alone.
   *
   * Listeners follow the new DAEMON_OPTIONS: removed ones are closed, added
   * ones opened, unchanged ones (and every open session) kept.
   */
  async reload(config: Config): Promise<void> {
    const { logger } = this.services;
    Object.assign(this.services.config, config);
    logger.level = config.logLevel;
    // The access map is kept per Config object, which the reload keeps.
    forgetSharedAccessMap(this.services.config);
    this.services.chain = createChain(this.services.config, logger);
    this.ctx = serverContext(this.services);
    if (this.options.role !== 'primary') this.ctx.tls?.prepare();
    this.throttle.update(throttleOptionsFromConfig(this.services.config));
    const refusalOptions = refusalOptionsFromConfig(this.services.config);
    const wasUnlimited = this.maxDaemonChildren === 0;
    this.maxDaemonChildren = refusalOptions.maxDaemonChildren;
    this.refusal.update(refusalOptions);
    if (wasUnlimited && this.maxDaemonChildren > 0 && this.counterClient) await this.countOpenSessions(this.counterClient);
    // The connect checks follow the new features (conncontrol, ratecontrol,
    // greet_pause, delay_checks, dnsbl), and the connection counts go on.
    const shared = this.counterClient !== undefined && sharesClientCounts(this.services.config);
    let counters: ConnectionCountStore | undefined = this.connectPolicy.counters;
    if (shared !== this.sharedCounts) counters = shared ? this.counterClient?.connectionStore() : undefined;
    if (shared && !this.sharedCounts && this.counterClient && counters) this.adoptOpenSessions(this.counterClient, counters);
    this.sharedCounts = shared;
    const windowMs = rateWindowMs(this.services.config);
    if (counters instanceof ConnectionCounters) counters.setWindow(windowMs);
    this.counterServer?.setWindow(windowMs);
    this.counterClient?.setWindow(windowMs);
    this.connectPolicy = createConnectPolicy(this.ctx, logger, counters);
    if (!this.stopping && this.options.role !== 'primary') await reopenListeners(this.listeners(), config.daemons, logger);
    logger.info('restarting posthorn due to signal: configuration and maps read again');
  }

  /** Returns the listening sockets in the form that reload-listeners.ts changes. */
  private listeners(): ListenerSet {
    return {
      servers: this.servers,
      specOf: (server) => this.specs.get(server),
      listen: (spec) => this.listen(spec),
    };
  }

  /** ${daemon_info}: e.g. "SMTP+queueing@00:15:00" or "SMTP". */
  daemonInfo(): string {
    const interval = this.options.queueInterval;
    return interval > 0 ? `SMTP+queueing@${formatInterval(interval)}` : 'SMTP';
  }

  private listen(spec: DaemonSpec): Promise<net.Server> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket, spec));
      server.once('error', (err) => reject(new Error(`cannot listen on ${spec.addr} port ${spec.port}: ${err.message}`)));
      server.listen({ host: spec.addr, port: spec.port, backlog: spec.listen }, () => {
        server.removeAllListeners('error');
        this.specs.set(server, spec);
        server.on('error', (err) => this.services.logger.error(`daemon ${spec.name}: ${err.message}`));
        const address = server.address() as net.AddressInfo;
        this.services.logger.info(`daemon ${spec.name}: listening on ${address.address} port ${address.port}`, 9);
        resolve(server);
      });
    });
  }

  private accept(socket: net.Socket, spec: DaemonSpec): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    if (this.counterClient && this.maxDaemonChildren > 0) {
      void this.acceptCounted(socket, spec, this.counterClient);
      return;
    }
    if (this.refusal.refuse(spec.name, this.sockets.size)) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    this.descriptors.accepted(this.sockets.size);
    void this.startSession(socket, spec);
  }

  /**
   * Moves the open sessions to the primary's connection counts when a SIGHUP
   * turns on conncontrol or ratecontrol in a worker, so ClientConn counts them.
   */
  private adoptOpenSessions(client: CounterClient, shared: ConnectionCountStore): void {
    for (const socket of this.sockets) {
      if (socket.destroyed || socket.remoteAddress === undefined) continue;
      const address = normalizeAddress(socket.remoteAddress);
      client.adoptClient(address);
      socket.once('close', () => shared.closed(address));
    }
  }

  /**
   * Asks the primary to count the sessions this worker admitted while
   * MaxDaemonChildren was 0, once a SIGHUP sets a limit, so that they count against it.
   */
  private async countOpenSessions(client: CounterClient): Promise<void> {
    for (const socket of [...this.sockets]) {
      const name = this.daemonNameOf(socket);
      if (socket.destroyed || this.counted.has(socket) || name === undefined) continue;
      this.counted.add(socket);
      const lease = await client.openSession(name, this.sockets.size);
      if (socket.destroyed) lease.release();
      else socket.once('close', () => lease.release());
    }
  }

  /** Returns the name of the DAEMON_OPTIONS entry whose listener accepted `socket`, by its local port. */
  private daemonNameOf(socket: net.Socket): string | undefined {
    for (const server of this.servers) {
      const address = server.address();
      if (typeof address === 'object' && address?.port === socket.localPort) return this.specs.get(server)?.name;
    }
    return undefined;
  }

  /** accept() in a worker with MaxDaemonChildren: the primary counts the sessions of all workers and decides. */
  private async acceptCounted(socket: net.Socket, spec: DaemonSpec, client: CounterClient): Promise<void> {
    const lease: SessionLease = await client.openSession(spec.name, this.sockets.size);
    // Without the primary's reply this worker's own count decides, taken after
    // the wait: sessions admitted while it waited count too.
    const rejected = lease.rejected ?? this.refusal.refuse(spec.name, this.sockets.size);
    if (this.stopping || socket.destroyed || rejected) {
      lease.release();
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    this.counted.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      lease.release();
    });
    this.descriptors.accepted(this.sockets.size);
    void this.startSession(socket, spec);
  }

  private async startSession(socket: net.Socket, spec: DaemonSpec): Promise<void> {
    // A client that reset the connection before it was handled has no address left.
    if (socket.destroyed || !socket.remoteAddress) {
      socket.destroy();
      return;
    }
    if (this.throttle.active) {
      await this.throttle.admit(spec.name);
      if (socket.destroyed) return;
    }
    const plain = socketTransport(socket);
    const transport = this.options.transcript ? this.options.transcript.wrap(plain) : plain;
    const address = transport.remoteAddress;
    const haveNameServers = this.services.config.nameServers.length > 0;
    // One PTR lookup serves $_ and the connect-time checks (use_client_ptr, Connect: by name).
    const client = await resolveClient(address, this.services.resolver, haveNameServers);
    if (socket.destroyed) return;

    const session = new Session(this.ctx, transport, {
      daemonName: spec.name,
      relayAllowed: isLocalhostClient(address),
      clientText: clientText(address, client),
      daemonModifiers: spec.modifiers,
    });
    this.sessions.add(session);
    if (!(await this.connectPolicy.prepare(session, socket, spec, client))) return;
    applySrvFeatures(session);
    const smtps = isSmtpsSession(session);
    if (smtps && !(await startSmtps(session))) return;
    await startSessionWithMilters(session);
    // The secure socket of an smtps session stays paused until the session reads from it.
    if (smtps) session.transport.resume();
  }

  private async runQueue(force: boolean): Promise<void> {
    const { runner, logger } = this.services;
    try {
      await runner.runQueue({ force });
    } catch (err) {
      logger.error(`queue run failed: ${(err as Error).message}`);
    }
  }

  /**
   * Claims the macro-expanded PidFile. Throws when another live process owns
   * it. Any other failure is logged, and the daemon runs without a PidFile.
   */
  private writePidFile(): void {
    const { config, logger } = this.services;
    if (!config.pidFile) return;
    const path = expandPidFilePath(config.pidFile, {
      daemonInfo: this.daemonInfo(),
      queueIntervalMs: this.options.queueInterval,
      macros: config.macros,
    });
    try {
      this.pidFile = PidFile.claim(path, this.options.commandLine);
      logger.info(`started as: ${this.options.commandLine}`, 10);
    } catch (err) {
      if (err instanceof PidFileInUseError) {
        logger.error(err.message);
        throw err;
      }
      logger.error(`unable to write pid to ${path}: ${(err as Error).message}`);
    }
  }

  private removePidFile(): void {
    this.pidFile?.release();
    this.pidFile = undefined;
  }
}

/** ConnectionRateWindowSize in milliseconds (sendmail's default: 60 s). */
function rateWindowMs(config: Config): number {
  const window = config.options.get('ConnectionRateWindowSize');
  return typeof window === 'number' ? window : 60_000;
}
