// FEATURE(`ratecontrol'): connection rates per client address over
// ConnectionRateWindowSize, and the ClientRate: access map limit.
//
// The window is split into six ticks as in sendmail's ratectrl.c; a rate is
// the number of connections in the current tick and the five before it,
// counting the connection being checked. The table of client addresses has a
// fixed maximum size: when it is full, the entry used least recently is
// dropped, so a flood of distinct addresses cannot grow memory without bound.

import { reply, type Reply } from '../smtp/reply';
import type { AccessMap } from './access';
import { lookupAddressOrDefault } from './lookup';

const TICKS = 6;

/** Maximum number of client addresses whose rates are kept. */
export const MAX_TRACKED_CLIENTS = 4096;

class SlidingCount {
  private readonly ticks = new Array<number>(TICKS).fill(-1);
  private readonly counts = new Array<number>(TICKS).fill(0);

  add(tick: number): void {
    const slot = tick % TICKS;
    if (this.ticks[slot] !== tick) {
      this.ticks[slot] = tick;
      this.counts[slot] = 0;
    }
    this.counts[slot]++;
  }

  total(tick: number): number {
    let sum = 0;
    for (let i = 0; i < TICKS; i++) {
      if (this.ticks[i] > tick - TICKS && this.ticks[i] <= tick) sum += this.counts[i];
    }
    return sum;
  }
}

export interface ConnectionCounts {
  /** ${client_rate}: connections from this address in the window, this one included. */
  clientRate: number;
  /** ${total_rate}: connections from every address in the window, this one included. */
  totalRate: number;
  /** ${client_connections}: other sessions from this address open right now. */
  clientConnections: number;
}

/**
 * The store of a daemon's connection counts: ConnectionCounters in one
 * process, or the primary's copy reached over IPC from a worker
 * (src/daemon/shared-counters.ts).
 */
export interface ConnectionCountStore {
  /** Counts a new connection and returns the counts its checks see. */
  opened(address: string): ConnectionCounts | Promise<ConnectionCounts>;
  /** Counts a session as ended; called once for each opened(), even before its result is in. */
  closed(address: string): void;
}

/** Returns the length of one of the TICKS parts of a rate window. */
function tickOf(windowMs: number): number {
  const tick = Math.floor(windowMs / TICKS);
  return tick > 0 ? tick : 10_000;
}

/** The daemon's connection bookkeeping: rates per address and open sessions per address. */
export class ConnectionCounters implements ConnectionCountStore {
  private readonly rates = new Map<string, SlidingCount>();
  private total = new SlidingCount();
  private readonly open = new Map<string, number>();
  private tickMs: number;

  constructor(
    windowMs: number,
    private readonly maxClients = MAX_TRACKED_CLIENTS,
    private readonly now: () => number = Date.now,
  ) {
    this.tickMs = tickOf(windowMs);
  }

  /**
   * Takes a new ConnectionRateWindowSize (SIGHUP). The rates start again from
   * zero, because counts of the old window do not fit the new one; the open
   * sessions are kept.
   */
  setWindow(windowMs: number): void {
    const tick = tickOf(windowMs);
    if (tick === this.tickMs) return;
    this.tickMs = tick;
    this.rates.clear();
    this.total = new SlidingCount();
  }

  /** Counts a new connection and returns the counts its checks see. */
  opened(address: string): ConnectionCounts {
    const tick = Math.floor(this.now() / this.tickMs);
    let rate = this.rates.get(address);
    if (rate) {
      this.rates.delete(address);
    } else {
      rate = new SlidingCount();
      if (this.rates.size >= this.maxClients) {
        const oldest = this.rates.keys().next().value as string;
        this.rates.delete(oldest);
      }
    }
    this.rates.set(address, rate);
    rate.add(tick);
    this.total.add(tick);

    const others = this.open.get(address) ?? 0;
    this.open.set(address, others + 1);
    return { clientRate: rate.total(tick), totalRate: this.total.total(tick), clientConnections: others };
  }

  /** Counts a session that is already open, without counting a new connection. */
  adopt(address: string): void {
    this.open.set(address, (this.open.get(address) ?? 0) + 1);
  }

  /** Counts a session as ended. */
  closed(address: string): void {
    const count = (this.open.get(address) ?? 0) - 1;
    if (count > 0) this.open.set(address, count);
    else this.open.delete(address);
  }

  /** Number of open sessions over all addresses. */
  openSessions(): number {
    let sum = 0;
    for (const n of this.open.values()) sum += n;
    return sum;
  }

  /** Number of addresses with a rate entry (at most the table size). */
  trackedClients(): number {
    return this.rates.size;
  }
}

/** The arguments of FEATURE(`ratecontrol') and FEATURE(`conncontrol'). */
export interface ControlFeature {
  /** `nodelay`: check at connect time even with FEATURE(`delay_checks'). */
  nodelay: boolean;
  /** `terminate`: reply 421 and close instead of 452. */
  terminate: boolean;
}

export function parseControlFeature(args: string[]): ControlFeature {
  return { nodelay: args[0]?.trim() === 'nodelay', terminate: args[1]?.trim() === 'terminate' };
}

/** Reads a numeric limit; a missing, non-numeric or zero value means no limit. */
export function parseLimit(value: string | undefined): number {
  if (value === undefined) return 0;
  const n = Number.parseInt(value.trim(), 10);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/**
 * ClientRate: rejects when ${client_rate} exceeds the limit. sendmail 8.13
 * rejected when the rate reached it; 8.14.2 changed that to "exceeded".
 */
export function checkClientRate(
  access: AccessMap,
  address: string,
  clientRate: number,
  feature: ControlFeature,
): Reply | undefined {
  const limit = parseLimit(lookupAddressOrDefault(access, 'ClientRate', address)?.value);
  if (limit === 0 || clientRate <= limit) return undefined;
  return reply(feature.terminate ? 421 : 452, '4.3.2', 'Connection rate limit exceeded.');
}
