// The relay decision of check_rcpt. A recipient is accepted when its domain is
// one of ours (class w) or one we relay for (class R), or when the client may
// relay (localhost, or a later access map RELAY entry). Everything else gets
// sendmail's "Relaying denied". Posthorn is never an open relay.

import * as net from 'node:net';
import { reply } from '../smtp/reply';
import type { Checkpoint, CheckContext, Verdict } from '../server/checkpoint';
import { CONTINUE } from '../server/checkpoint';

/** Whether a client address is this host's loopback (127.0.0.1 or ::1). */
export function isLocalhostClient(address: string): boolean {
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  return plain === '127.0.0.1' || plain === '::1';
}

/** Splits on the last "@" outside quotes and brackets; the domain is lower-cased. */
function splitDomain(address: string): { local: string; domain: string } {
  let quoted = false;
  let bracket = 0;
  let at = -1;
  for (let i = 0; i < address.length; i++) {
    const c = address[i];
    if (c === '\\' && quoted) {
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    else if (!quoted && c === '[') bracket++;
    else if (!quoted && c === ']') bracket--;
    else if (!quoted && bracket === 0 && c === '@') at = i;
  }
  if (at < 0) return { local: address, domain: '' };
  return { local: address.slice(0, at), domain: address.slice(at + 1).toLowerCase() };
}

/** Whether a domain (or address literal) names this host or a domain in a class. */
export function domainInClass(domain: string, klass: ReadonlySet<string>): boolean {
  const d = domain.replace(/\.$/, '').toLowerCase();
  if (klass.has(d)) return true;
  if (d.startsWith('[') && d.endsWith(']')) {
    const inner = d.slice(1, -1).replace(/^ipv6:/, '');
    return net.isIP(inner) !== 0 && (klass.has(`[${inner}]`) || klass.has(inner));
  }
  return false;
}

/**
 * Whether a local part hides another hop: "user%remote", "remote!user", or a
 * quoted "user@remote". sendmail treats such a recipient at a local domain as
 * a relay attempt, so it gets the same answer as user@remote would.
 */
export function hasRoutingLocalPart(local: string): boolean {
  const unquoted = local.startsWith('"') && local.endsWith('"') ? local.slice(1, -1) : local;
  return /[%!@:]/.test(unquoted);
}

export interface RelayPolicy {
  localDomains: ReadonlySet<string>;
  relayDomains: ReadonlySet<string>;
  /** Tests whether an address literal is one of the host's own addresses (class w in sendmail). */
  ownLiteral?: (domain: string) => boolean;
}

/** Decides one recipient; returns the 550 reply when relaying is denied. */
export function checkRelay(
  policy: RelayPolicy,
  address: string,
  relayAllowed: boolean,
  clientText = '',
): Verdict {
  if (relayAllowed) return CONTINUE;

  const { local, domain } = splitDomain(address);
  const ours = domain === '' || domainInClass(domain, policy.localDomains) || policy.ownLiteral?.(domain) === true;
  const relayed = domain !== '' && domainInClass(domain, policy.relayDomains);

  if ((ours || relayed) && !hasRoutingLocalPart(local)) return CONTINUE;

  // sendmail 8.17 adds why the client is unknown when it has no host name.
  const unnamed = /^\[([^\]]+)\]$/.exec(clientText);
  const why = unnamed ? `. IP name lookup failed [${unnamed[1]}]` : '';
  return {
    action: 'reject',
    reply: reply(550, '5.7.1', `<${address}>... Relaying denied${why}`),
    reason: 'Relaying denied',
  };
}

/** check_rcpt as a checkpoint: the relay decision at RCPT time. */
export function relayCheckpoint(policy: RelayPolicy): Checkpoint {
  return {
    name: 'check_rcpt',
    stages: new Set(['rcpt']),
    check(ctx: CheckContext): Verdict {
      return checkRelay(policy, ctx.address ?? '', ctx.relayAllowed, ctx.macros.get('_'));
    },
  };
}
