// DNS lookups for delivery: MX host lists (RFC 5321 section 5.1, RFC 7505 null
// MX), host addresses, TXT and PTR. Every answer is one of a few result kinds so
// that callers tell a permanent "no such domain" from a temporary DNS failure.

import * as dns from 'node:dns';
import * as net from 'node:net';
import { ipv6Groups } from './ipv6';

export interface MxHost {
  name: string;
  preference: number;
}

export type DnsFailure = { kind: 'nxdomain' } | { kind: 'tempfail'; reason: string };

export type MxResult = { kind: 'hosts'; hosts: MxHost[] } | { kind: 'nullmx' } | DnsFailure;
export type AddrResult = { kind: 'addresses'; addresses: string[] } | DnsFailure;
export type TxtResult = { kind: 'records'; records: string[] } | DnsFailure;
export type PtrResult = { kind: 'names'; names: string[] } | DnsFailure;

/** Error codes of node:dns that mean the name or the data does not exist. */
const NOT_FOUND_CODES = new Set<string>([dns.NOTFOUND, dns.NODATA]);

/**
 * Returns the address inside an address literal ("[127.0.0.1]",
 * "[IPv6:::1]", RFC 5321 section 4.1.3), or undefined for a host name.
 */
export function parseAddressLiteral(host: string): string | undefined {
  const m = /^\[(?:IPv6:)?([^\]]+)\]$/i.exec(host.trim());
  if (!m) return undefined;
  return net.isIP(m[1]) ? m[1] : undefined;
}

/** Returns the in-addr.arpa or ip6.arpa name of an address, or undefined for anything else. */
export function reverseName(ip: string): string | undefined {
  if (net.isIPv4(ip)) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  if (!net.isIPv6(ip)) return undefined;
  const full = ipv6Groups(ip);
  const nibbles = full.map((group) => group.padStart(4, '0')).join('');
  return `${[...nibbles].reverse().join('.')}.ip6.arpa`;
}

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'UNKNOWN';
}

function failure(err: unknown): DnsFailure {
  const code = errorCode(err);
  if (NOT_FOUND_CODES.has(code)) return { kind: 'nxdomain' };
  return { kind: 'tempfail', reason: code === dns.TIMEOUT ? 'timeout' : code };
}

/** Shuffles in place (Fisher-Yates). */
function shuffle<T>(list: T[]): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}

/**
 * Sorts MX records by preference and shuffles records of equal preference,
 * as RFC 5321 section 5.1 requires, so that load spreads over equal hosts.
 */
export function orderMxHosts(records: MxHost[]): MxHost[] {
  // sendmail keeps at most MAXMXHOSTS (100) hosts; each one left costs address lookups.
  return sortMxHosts(records).slice(0, MAX_MX_HOSTS);
}

/** sendmail's MAXMXHOSTS. */
const MAX_MX_HOSTS = 100;

function sortMxHosts(records: MxHost[]): MxHost[] {
  const byPreference = new Map<number, MxHost[]>();
  for (const r of records) {
    const group = byPreference.get(r.preference) ?? [];
    group.push(r);
    byPreference.set(r.preference, group);
  }
  const preferences = [...byPreference.keys()].sort((a, b) => a - b);
  return preferences.flatMap((p) => shuffle(byPreference.get(p) ?? []));
}

function isRootName(name: string): boolean {
  return name === '' || name === '.';
}

export class MailResolver {
  private readonly resolver: dns.promises.Resolver;

  /**
   * `servers` lists name servers as "addr", "addr:port" or "[v6]:port"; an
   * empty list keeps the system's /etc/resolv.conf servers.
   */
  constructor(servers: string[], opts: { timeoutMs?: number; tries?: number } = {}) {
    this.resolver = new dns.promises.Resolver({
      timeout: opts.timeoutMs ?? 5000,
      tries: opts.tries ?? 2,
    });
    if (servers.length > 0) this.resolver.setServers(servers);
  }

  /**
   * Looks up the hosts that receive mail for `domain`, best first. A domain
   * without MX records but with an address is its own mail host (implicit
   * MX). A single "." record is a null MX that accepts no mail (RFC 7505).
   */
  async resolveMxHosts(domain: string): Promise<MxResult> {
    if (parseAddressLiteral(domain) !== undefined) {
      return { kind: 'hosts', hosts: [{ name: domain, preference: 0 }] };
    }
    let records: dns.MxRecord[];
    try {
      records = await this.resolver.resolveMx(domain);
    } catch (err) {
      if (errorCode(err) === dns.NODATA) return this.implicitMx(domain);
      return failure(err);
    }
    const hosts = records.filter((r) => !isRootName(r.exchange));
    if (hosts.length === 0 && records.length > 0) return { kind: 'nullmx' };
    if (hosts.length === 0) return this.implicitMx(domain);
    return {
      kind: 'hosts',
      hosts: orderMxHosts(hosts.map((r) => ({ name: r.exchange, preference: r.priority }))),
    };
  }

  private async implicitMx(domain: string): Promise<MxResult> {
    const addresses = await this.resolveAddresses(domain);
    if (addresses.kind !== 'addresses') return addresses;
    return { kind: 'hosts', hosts: [{ name: domain, preference: 0 }] };
  }

  /**
   * Looks up the IPv4 then the IPv6 addresses of `host`. An address literal
   * or a bare IP address is returned without a query.
   */
  async resolveAddresses(host: string): Promise<AddrResult> {
    const literal = parseAddressLiteral(host) ?? (net.isIP(host) ? host : undefined);
    if (literal !== undefined) return { kind: 'addresses', addresses: [literal] };

    const [v4, v6] = await Promise.allSettled([
      this.resolver.resolve4(host),
      this.resolver.resolve6(host),
    ]);
    const addresses = [
      ...(v4.status === 'fulfilled' ? v4.value : []),
      ...(v6.status === 'fulfilled' ? v6.value : []),
    ];
    if (addresses.length > 0) return { kind: 'addresses', addresses };

    for (const r of [v4, v6]) {
      if (r.status === 'rejected' && failure(r.reason).kind === 'tempfail') return failure(r.reason);
    }
    return { kind: 'nxdomain' };
  }

  /** Looks up TXT records; the strings of one record are joined. */
  async resolveTxt(name: string): Promise<TxtResult> {
    try {
      const records = await this.resolver.resolveTxt(name);
      return { kind: 'records', records: records.map((chunks) => chunks.join('')) };
    } catch (err) {
      return failure(err);
    }
  }

  /**
   * Looks up the PTR names of an IPv4 or IPv6 address. Node's reverse() reports
   * a failing name server (SERVFAIL, or no reply) as ENOTFOUND. So a "not found"
   * is looked up again as a PTR query, whose error distinguishes a temporary failure.
   */
  async reverse(ip: string): Promise<PtrResult> {
    try {
      return { kind: 'names', names: await this.resolver.reverse(ip) };
    } catch (err) {
      const first = failure(err);
      const name = reverseName(ip);
      if (first.kind !== 'nxdomain' || name === undefined) return first;
      try {
        const names = await this.resolver.resolvePtr(name);
        return names.length > 0 ? { kind: 'names', names } : first;
      } catch (again) {
        return failure(again);
      }
    }
  }
}
