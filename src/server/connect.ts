// The connect phase of a daemon session, before the greeting: the client's
// names (${client_name}, ${client_ptr}, ${client_resolve}), the connection
// counts (${client_rate}, ${total_rate}, ${client_connections}), check_relay
// (src/policy/check-relay.ts), then FEATURE(`greet_pause').
//
// A check_relay rejection whose reply starts with 421 replaces the greeting
// and closes the connection. Any other rejection makes the session a null
// server: it greets with 220 and replies to every command but QUIT, HELO,
// EHLO, NOOP and RSET with that reply.

import type * as net from 'node:net';
import type { DaemonSpec } from '../config/types';
import { MailResolver } from '../dns/resolver';
import type { Logger } from '../log/logger';
import { reply } from '../smtp/reply';
import type { AccessMap } from '../policy/access';
import { isLocalhostClient } from '../policy/relay';
import { CheckRelay, type ConnectDecision } from '../policy/check-relay';
import { ConnectionCounters, type ConnectionCountStore } from '../policy/rate-control';
import { greetPauseMs } from '../policy/greet-pause';
import { replyText } from '../policy/ruleset-text';
import { connectStates, sharedAccessMap, type ConnectState } from '../policy/check-mail';
import type { Session } from './session';
import type { ServerContext } from './context';

/** The value of ${client_resolve}: the outcome of checking the client's PTR name. */
export type ClientResolve = 'OK' | 'FAIL' | 'FORGED' | 'TEMP';

export interface ClientIdentity {
  /** ${client_ptr}: the PTR name as returned, unverified; "" without one. */
  ptr: string;
  /** ${client_name}: the verified name, or "[address]". */
  name: string;
  resolve: ClientResolve;
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

/**
 * Looks up the client's PTR name and checks that it resolves back to the
 * address. 127.0.0.1 and ::1 are "localhost", and other loopback clients are
 * not looked up unless NameServers is set, so a default set-up sends no DNS
 * query for them.
 */
export async function resolveClient(address: string, resolver: MailResolver, haveNameServers: boolean): Promise<ClientIdentity> {
  if (isLocalhostClient(address)) return { ptr: 'localhost', name: 'localhost', resolve: 'OK' };
  const bracketed = `[${address}]`;
  if (isLoopback(address) && !haveNameServers) return { ptr: '', name: bracketed, resolve: 'FAIL' };

  const ptr = await resolver.reverse(address);
  if (ptr.kind === 'tempfail') return { ptr: '', name: bracketed, resolve: 'TEMP' };
  if (ptr.kind !== 'names' || ptr.names.length === 0) return { ptr: '', name: bracketed, resolve: 'FAIL' };

  const first = ptr.names[0].replace(/\.$/, '');
  let temp = false;
  for (const candidate of ptr.names.slice(0, 3)) {
    const forward = await resolver.resolveAddresses(candidate);
    if (forward.kind === 'addresses' && forward.addresses.includes(address)) {
      const name = candidate.replace(/\.$/, '');
      return { ptr: first, name, resolve: 'OK' };
    }
    if (forward.kind === 'tempfail') temp = true;
  }
  return { ptr: first, name: bracketed, resolve: temp ? 'TEMP' : 'FORGED' };
}

/** Builds $_ from a resolved client: "name [addr]" when verified, else "[addr]". */
export function clientText(address: string, client: ClientIdentity): string {
  return client.resolve === 'OK' ? `${client.name} [${address}]` : `[${address}]`;
}

export interface ConnectPolicyOptions {
  ctx: ServerContext;
  logger: Logger;
  access: AccessMap | undefined;
  /** Resolver for the connect-time DNS checks (PTR, mtamark, dnsbl). */
  resolver: MailResolver;
  windowMs: number;
  /** The store of the connection counts; a ConnectionCounters of its own when unset. */
  counters?: ConnectionCountStore;
}

export class ConnectPolicy {
  readonly counters: ConnectionCountStore;
  private readonly checkRelay: CheckRelay;
  private readonly greetPauseArgs?: string[];

  constructor(private readonly opts: ConnectPolicyOptions) {
    const config = opts.ctx.config;
    this.counters = opts.counters ?? new ConnectionCounters(opts.windowMs);
    this.checkRelay = new CheckRelay(config, opts.access, opts.resolver);
    this.greetPauseArgs = config.features.find((f) => f.name === 'greet_pause')?.args;
  }

  /**
   * Runs the connect phase for a new session. Returns false when the session
   * must not start: check_relay sent a 421, or the client went away.
   */
  async prepare(session: Session, socket: net.Socket, spec: DaemonSpec, client: ClientIdentity): Promise<boolean> {
    const address = session.transport.remoteAddress;
    // closed() is bound before the count arrives, so that a client that goes
    // away while a worker waits for the primary still releases its count.
    const opened = this.counters.opened(address);
    socket.once('close', () => this.counters.closed(address));
    const counts = await opened;
    this.opts.access?.refresh();

    const m = session.macros;
    m.set('{client_ptr}', client.ptr);
    m.set('{client_name}', client.name);
    m.set('{client_resolve}', client.resolve);
    m.set('{client_rate}', String(counts.clientRate));
    m.set('{total_rate}', String(counts.totalRate));
    m.set('{client_connections}', String(counts.clientConnections));

    const host = this.checkRelay.useClientPtr ? client.ptr : client.name;
    const decision = await this.checkRelay.run({ host, address, counts, macros: m });
    if (socket.destroyed) return false;
    if (!this.apply(session, decision, host, address)) return false;

    if (decision.action === 'reject' && !decision.delayed) return true;
    return this.greetPause(session, socket, spec, client.ptr, address);
  }

  /** Acts on check_relay's decision; returns false when the connection was closed. */
  private apply(session: Session, decision: ConnectDecision, host: string, address: string): boolean {
    const state: ConnectState = {};
    connectStates.set(session.macros, state);
    const arg1 = host === '' ? `[${address}]` : host;
    const prefix = `ruleset=check_relay, arg1=${arg1}, arg2=${address}, relay=${session.macros.get('_')}`;

    switch (decision.action) {
      case 'continue':
      case 'ok':
        return true;
      case 'relay':
        session.relayAllowed = true;
        state.connectRelay = true;
        return true;
      case 'discard':
        session.log.notice(`${prefix}, discard`, 4);
        if (decision.delayed) state.delayed = decision;
        else state.discard = true;
        return true;
      case 'quarantine':
        session.log.notice(`${prefix}, quarantine=${decision.reason}`, 4);
        if (decision.delayed) state.delayed = decision;
        else state.quarantine = decision.reason;
        return true;
      case 'reject':
        break;
    }

    session.log.notice(`${prefix}, reject=${replyText(decision.reply)}`, 4);
    if (decision.delayed) {
      state.delayed = decision;
      return true;
    }
    if (decision.reply.code === 421) {
      // Printed instead of the greeting; the session never starts, so it has
      // no "did not issue MAIL" line either.
      session.didWork = true;
      session.send({ ...decision.reply, close: true });
      session.close();
      return false;
    }
    session.nullServerReply = decision.reply;
    return true;
  }

  /**
   * Waits up to the GreetPause time for the client to send anything. An
   * early talker gets the 554 greeting and a null server. Its bytes stay in
   * the socket buffer and are read as commands once the session starts.
   */
  private async greetPause(session: Session, socket: net.Socket, spec: DaemonSpec, ptr: string, address: string): Promise<boolean> {
    if (!this.greetPauseArgs || spec.modifiers.includes('s')) return true;
    const ms = greetPauseMs(this.opts.access, this.greetPauseArgs, ptr, address);
    if (ms <= 0) return true;

    const started = Date.now();
    const outcome = await waitForInput(socket, ms);
    if (outcome === 'closed') {
      socket.destroy();
      return false;
    }
    if (outcome === 'quiet') return true;

    const seconds = Math.floor((Date.now() - started) / 1000);
    const host = ptr === '' ? `[${address}]` : ptr;
    session.log.info(`rejecting commands from ${host} [${address}] due to pre-greeting traffic after ${seconds} seconds`);
    session.nullServerReply = reply(550, '5.0.0', 'Command rejected');
    const hostName = session.hostName;
    session.defaultGreeting = () => reply(554, undefined, `${hostName} ESMTP not accepting messages`);
    return true;
  }
}

/**
 * Waits until the socket has bytes to read ("talked"), ends ("closed"), or
 * `ms` pass ("quiet"). It listens for 'readable' so that no byte is consumed:
 * once the listener is removed, the session's 'data' listener gets them all.
 */
export function waitForInput(socket: net.Socket, ms: number): Promise<'talked' | 'closed' | 'quiet'> {
  return new Promise((resolve) => {
    const finish = (outcome: 'talked' | 'closed' | 'quiet'): void => {
      clearTimeout(timer);
      socket.removeListener('readable', onReadable);
      socket.removeListener('close', onClose);
      resolve(outcome);
    };
    // 'readable' with nothing to read means the client closed its side.
    const onReadable = (): void => finish(socket.readableLength > 0 ? 'talked' : 'closed');
    const onClose = (): void => finish('closed');
    const timer = setTimeout(() => finish('quiet'), ms);
    socket.on('readable', onReadable);
    socket.once('close', onClose);
    if (socket.readableLength > 0) finish('talked');
  });
}

/** Builds the connect phase of a daemon from its context and configuration. */
export function createConnectPolicy(ctx: ServerContext, logger: Logger, counters?: ConnectionCountStore): ConnectPolicy {
  const config = ctx.config;
  const number = (name: string, fallback: number): number => {
    const v = config.options.get(name);
    return typeof v === 'number' ? v : fallback;
  };
  // Connect-time lookups use Timeout.resolver.retrans and .retry, so that a
  // slow DNS delays the greeting by a bounded time.
  const resolver = new MailResolver(config.nameServers, {
    timeoutMs: config.timeouts.get('resolver.retrans') ?? 5000,
    tries: Math.max(1, number('Timeout.resolver.retry', 4)),
  });
  const access = sharedAccessMap(config, (message) => logger.error(message));
  return new ConnectPolicy({ ctx, logger, access, resolver, windowMs: number('ConnectionRateWindowSize', 60_000), counters });
}
