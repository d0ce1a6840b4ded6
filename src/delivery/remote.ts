// Delivery of one route over SMTP: walk the relay hosts in order, and every
// address of each host, until one takes the transaction. FallBackSmartHost is
// tried last, once, and only when the earlier hosts could not be reached or
// the DNS lookup failed.

import type { Config } from '../config/types';
import type { MailResolver } from '../dns/resolver';
import type { RelayHost } from './router';
import { hostList } from './router';
import type { RecipientResult, SessionResult, Transaction } from './smtp-client';
import { runSession } from './smtp-client';
import { clientTimeouts } from './timing';
import { outboundLineLimit } from './line-limit';
import type { Logger } from '../log/logger';
import { clientTlsFor } from '../tls/client';

export interface RemoteOutcome {
  recipients: RecipientResult[];
  /** Value of the relay= log field, e.g. "mx.example. [127.0.0.2]"; absent when no host was reached. */
  relay?: string;
  /** Host name for Remote-MTA in DSNs. */
  remoteMta?: string;
  transcript: string[];
}

export interface RemoteContext {
  config: Config;
  resolver: MailResolver;
  firstAttempt: boolean;
  /** Logger of the queue item, for the STARTTLS=client lines. */
  logger?: Logger;
}

interface HostAttempt {
  result?: SessionResult;
  relay?: string;
  failure?: string;
  unknown?: boolean;
  dnsFailed?: boolean;
  /** The enhanced status of the failure when it has its own, e.g. 4.7.0 from tls_server. */
  dsn?: string;
}

/** Returns a host name as sendmail logs it: fully qualified, with a trailing dot. */
function displayName(name: string): string {
  if (name.startsWith('[') || name.endsWith('.')) return name;
  return `${name}.`;
}

function everyone(tx: Transaction, status: 'tempfail' | 'permfail', dsn: string, text: string): RecipientResult[] {
  return tx.recipients.map((r) => ({ address: r.address, status, dsn, text }));
}

/**
 * Tries every address of one host. Returns the session result when an address
 * replied, else the failure text. `unknown` marks a host with no address.
 */
async function tryHost(
  host: RelayHost,
  tx: Transaction,
  ctx: RemoteContext,
): Promise<HostAttempt> {
  const addrs = await ctx.resolver.resolveAddresses(host.name);
  const name = displayName(host.name);
  if (addrs.kind === 'nxdomain') {
    return { failure: `Host unknown (Name server: ${host.name}: host not found)`, unknown: true };
  }
  if (addrs.kind === 'tempfail') return { failure: `Name server timeout for ${host.name}`, dnsFailed: true };

  let failure = '';
  let dsn: string | undefined;
  let relay: string | undefined;
  // A host that rejected the session (5xx greeting or HELO) is passed over
  // like one that could not be reached. Its rejection counts only if it came last.
  let rejection: HostAttempt | undefined;
  for (const address of addrs.addresses) {
    relay = `${name} [${address}]`;
    const result = await runSession(
      {
        address,
        port: host.port,
        hostName: name,
        heloName: ctx.config.hostName,
        timeouts: clientTimeouts(ctx.config, ctx.firstAttempt),
        tls: ctx.logger ? clientTlsFor(ctx.config, ctx.logger) : undefined,
        logger: ctx.logger,
        lineLimit: outboundLineLimit(ctx.config),
      },
      tx,
    );
    if (result.kind === 'transaction') return { result, relay };
    if (result.kind === 'rejected') {
      rejection = { result, relay };
      continue;
    }
    rejection = undefined;
    failure = result.text;
    dsn = result.dsn;
  }
  return rejection ?? { failure, relay, dsn };
}

function outcomeOf(result: SessionResult, tx: Transaction, relay: string | undefined, host: RelayHost): RemoteOutcome {
  const remoteMta = displayName(host.name).replace(/\.$/, '');
  if (result.kind === 'transaction') {
    return { recipients: result.recipients, relay, remoteMta, transcript: result.transcript };
  }
  if (result.kind === 'rejected') {
    const recipients = tx.recipients.map((r) => ({
      address: r.address,
      status: 'permfail' as const,
      dsn: result.dsn,
      text: result.text,
      diagnostic: result.diagnostic,
    }));
    return { recipients, relay, remoteMta, transcript: result.transcript };
  }
  return { recipients: everyone(tx, 'tempfail', result.dsn ?? '4.4.1', result.text), relay, transcript: result.transcript };
}

/** Delivers `tx` to the destination of a route and returns one result per recipient. */
export async function deliverRemote(destination: string, tx: Transaction, ctx: RemoteContext): Promise<RemoteOutcome> {
  const list = await hostList(destination, ctx.config, ctx.resolver);
  if (list.kind === 'nullmx') {
    // RFC 7505 section 4.2: a null MX domain accepts no mail, so bounce at once.
    return { recipients: everyone(tx, 'permfail', '5.1.10', 'Domain does not accept mail (null MX)'), transcript: [] };
  }
  if (list.kind === 'mxloop') {
    ctx.logger?.error(list.text);
    const recipients = everyone(tx, 'permfail', '5.3.5', 'Local configuration error');
    for (const r of recipients) r.diagnostic = list.text;
    return { recipients, transcript: [] };
  }

  let lastFailure: string;
  let lastDsn = '4.4.1';
  let lastRelay: string | undefined;
  let allUnknown = false;
  // sendmail goes on to the next MX whenever a host did not open a session,
  // whatever the reason, and reports the last host's failure.
  let rejection: RemoteOutcome | undefined;
  if (list.kind === 'hosts') {
    allUnknown = true;
    lastFailure = '';
    for (const host of list.hosts) {
      const tried = await tryHost(host, tx, ctx);
      if (tried.result?.kind === 'transaction') return outcomeOf(tried.result, tx, tried.relay, host);
      rejection = tried.result ? outcomeOf(tried.result, tx, tried.relay, host) : undefined;
      if (rejection) {
        allUnknown = false;
        continue;
      }
      lastFailure = tried.failure ?? lastFailure;
      lastDsn = tried.dnsFailed ? '4.4.3' : tried.dsn ?? '4.4.1';
      lastRelay = tried.relay ?? lastRelay;
      allUnknown &&= tried.unknown === true;
    }
  } else if (list.kind === 'nxdomain') {
    allUnknown = true;
    lastFailure = `Host unknown (Name server: ${destination}: host not found)`;
  } else {
    lastFailure = `Name server timeout for ${destination}`;
    lastDsn = '4.4.3';
  }

  // FallBackSmartHost follows a temporary failure or an unknown host only: a
  // last MX that rejected the session (5xx, or a loop back to this host) is final.
  if (rejection) return rejection;
  if (list.fallback) {
    const tried = await tryHost(list.fallback, tx, ctx);
    if (tried.result) return outcomeOf(tried.result, tx, tried.relay, list.fallback);
    const dsn = tried.dnsFailed ? '4.4.3' : tried.dsn ?? '4.4.1';
    return { recipients: everyone(tx, 'tempfail', dsn, tried.failure ?? lastFailure), relay: tried.relay, transcript: [] };
  }
  if (allUnknown) {
    return { recipients: everyone(tx, 'permfail', '5.1.2', lastFailure), transcript: [] };
  }
  return { recipients: everyone(tx, 'tempfail', lastDsn, lastFailure), relay: lastRelay, transcript: [] };
}
