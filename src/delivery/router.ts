// Routing: which mailer takes each recipient, and the list of relay hosts to
// try for a destination (SmartHost, MX records, FallBackSmartHost).

import type { Config } from '../config/types';
import type { MailResolver } from '../dns/resolver';
import { parseAddressLiteral } from '../dns/resolver';
import type { QueueItem, QueueRecipient } from '../queue/types';
import { tableRoute } from './mailertable';
import { isOwnAddressLiteral } from './interfaces';

/** 'local', 'esmtp' and 'relay', or another mailer that mailertable names (smtp, cyrusv2, ...). */
export type MailerName = 'local' | 'esmtp' | 'relay' | (string & {});

export interface Route {
  mailer: MailerName;
  /** Recipient domain (lower case) for esmtp, the SmartHost for relay, $j for local. */
  destination: string;
  recipients: QueueRecipient[];
  /** Set when mailertable chose the mailer and host: SmartHost does not apply. */
  mailertable?: boolean;
}

export interface RelayHost {
  /** Host name or address literal to connect to, e.g. "mx1.example.com". */
  name: string;
  port: number;
  preference: number;
}

/**
 * The hosts to try in order. `fallback` is the FallBackSmartHost: it is tried
 * once, and only after the listed hosts could not be reached or the lookup
 * failed (sendmail 8.13.5 and later try it on EX_NOHOST and EX_TEMPFAIL).
 */
export type HostListResult =
  | { kind: 'hosts'; hosts: RelayHost[]; fallback?: RelayHost }
  | { kind: 'nullmx' }
  /** The best MX left is this host itself (getmxrr's "MX list ... points back to"). */
  | { kind: 'mxloop'; text: string }
  | { kind: 'nxdomain'; fallback?: RelayHost }
  | { kind: 'tempfail'; reason: string; fallback?: RelayHost };

const DEFAULT_SMTP_PORT = 25;
const SMART_HOST_MAILERS = new Set(['relay', 'smtp', 'esmtp', 'smtp8', 'dsmtp']);

/** Returns the domain of an address in lower case, or "" when it has none. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

/** Checks whether a name is one of this host's own names (class w or $j). */
export function isOwnName(name: string, config: Config): boolean {
  const bare = name.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  if (bare === config.hostName.toLowerCase()) return true;
  for (const local of config.localDomains) if (local.toLowerCase() === bare) return true;
  return isOwnAddressLiteral(name, config);
}

/**
 * Groups the pending and deferred recipients by mailer and destination, so
 * that recipients of one destination share one transaction. With SmartHost
 * set, every non-local recipient goes through the relay mailer as one group.
 */
export function routeRecipients(item: QueueItem, config: Config): Route[] {
  const routes = new Map<string, Route>();
  for (const rcpt of item.recipients) {
    if (rcpt.state !== 'pending' && rcpt.state !== 'deferred') continue;
    const domain = domainOf(rcpt.address);
    let mailer: MailerName;
    let destination: string;
    const table = tableRoute(rcpt, config);
    if (table !== undefined) {
      mailer = table.mailer;
      destination = table.destination;
    } else if (domain === '' || isOwnName(domain, config)) {
      mailer = 'local';
      destination = config.hostName;
    } else if (config.smartHost) {
      mailer = 'relay';
      destination = config.smartHost;
    } else {
      mailer = 'esmtp';
      destination = domain;
    }
    // Recipients with another envelope sender (owner- aliases) need their own transaction.
    const key = `${mailer}:${destination}:${rcpt.owner ?? ''}`;
    const route: Route = routes.get(key) ?? { mailer, destination, recipients: [], ...(table?.mailertable ? { mailertable: true } : {}) };
    route.recipients.push(rcpt);
    routes.set(key, route);
  }
  return [...routes.values()];
}

/** Returns the TCP port of a mailer: the port in its `TCP $h PORT` arguments, else 25. */
export function mailerPort(config: Config, mailer: string): number {
  return config.mailers.find((m) => m.name === mailer)?.port ?? DEFAULT_SMTP_PORT;
}

/** Splits "mailer:host" as SMART_HOST allows it; a bare host uses `mailer`. */
function splitMailerPrefix(spec: string, mailer: string): { mailer: string; host: string } {
  const m = /^([a-z0-9]+):(.+)$/i.exec(spec);
  if (m && SMART_HOST_MAILERS.has(m[1].toLowerCase())) return { mailer: m[1].toLowerCase(), host: m[2] };
  return { mailer, host: spec };
}

/**
 * Resolves a host spec to relay hosts: "[name]" or an address literal is used
 * as written, a plain name goes through an MX lookup first, as sendmail does.
 */
async function resolveSpec(
  spec: string,
  port: number,
  resolver: MailResolver,
  config: Config,
): Promise<HostListResult> {
  const bracketed = /^\[([^\]]+)\]$/.exec(spec);
  if (bracketed && parseAddressLiteral(spec) === undefined) {
    return { kind: 'hosts', hosts: [{ name: bracketed[1], port, preference: 0 }] };
  }
  const mx = await resolver.resolveMxHosts(spec);
  if (mx.kind !== 'hosts') return mx;
  const hosts = mx.hosts.map((h) => ({ name: h.name, port, preference: h.preference }));
  return dropOwnMx(spec, hosts, config);
}

/**
 * As sendmail's getmxrr(): an MX host that is this host (class w) ends the
 * list, together with every host of the same or a worse preference, since
 * this host would only pass the mail on to them. With nothing left, the mail
 * goes to the domain's own address when TryNullMXList is set, and otherwise
 * fails as a configuration error.
 */
function dropOwnMx(domain: string, hosts: RelayHost[], config: Config): HostListResult {
  const own = hosts.find((h) => isOwnName(h.name, config));
  // A domain without MX records is its own host (preference 0): nothing to drop there.
  if (own === undefined || (hosts.length === 1 && own.name === domain)) return { kind: 'hosts', hosts };
  const better = hosts.filter((h) => h.preference < own.preference);
  if (better.length > 0) return { kind: 'hosts', hosts: better };
  if (config.options.get('TryNullMXList') === true) {
    return { kind: 'hosts', hosts: [{ name: domain, port: own.port, preference: 0 }] };
  }
  const bare = domain.replace(/\.$/, '');
  return { kind: 'mxloop', text: `MX list for ${bare}. points back to ${config.hostName}` };
}

/** Returns the FallBackSmartHost as a relay host, unless unset or one of our own names. */
function fallbackHost(config: Config, mailer: string): RelayHost | undefined {
  if (!config.fallbackSmartHost) return undefined;
  const spec = splitMailerPrefix(config.fallbackSmartHost, mailer);
  const name = parseAddressLiteral(spec.host) !== undefined ? spec.host : spec.host.replace(/^\[|\]$/g, '');
  if (isOwnName(name, config)) return undefined;
  return { name, port: mailerPort(config, spec.mailer), preference: Number.MAX_SAFE_INTEGER };
}

/**
 * Builds the host list for a destination domain: the SmartHost when set, else
 * the domain's MX hosts, with FallBackSmartHost as the last resort. A null MX
 * never gets the fallback, because the domain publishes that it takes no mail.
 */
export async function hostList(
  domain: string,
  config: Config,
  resolver: MailResolver,
): Promise<HostListResult> {
  let result: HostListResult;
  let mailer = 'esmtp';
  if (config.smartHost) {
    const spec = splitMailerPrefix(config.smartHost, 'relay');
    mailer = spec.mailer;
    result = await resolveSpec(spec.host, mailerPort(config, mailer), resolver, config);
  } else {
    result = await resolveSpec(domain, mailerPort(config, mailer), resolver, config);
  }
  if (result.kind === 'nullmx' || result.kind === 'mxloop') return result;

  const fallback = fallbackHost(config, mailer);
  if (!fallback) return result;
  if (result.kind === 'hosts') {
    const alreadyListed = result.hosts.some((h) => h.name.toLowerCase() === fallback.name.toLowerCase());
    return alreadyListed ? result : { ...result, fallback };
  }
  return { ...result, fallback };
}
