// The relay decision of check_rcpt. A recipient is accepted when its domain is
// one of ours (class w) or one we relay for (class R), or when the client may
// relay (localhost, or a later access map RELAY entry). Everything else gets
// sendmail's "Relaying denied" (450 while the client's PTR lookup fails
// temporarily). Posthorn is never an open relay.

import * as net from 'node:net';
import { reply, type Reply } from '../smtp/reply';
import { errorReply, expandRulesetText } from './ruleset-text';
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
  /** confRELAY_MSG: the reply text of a denial in ruleset syntax, `"550 Relaying denied"` by default. */
  relayMessage?: string;
}

/** Client facts that sendmail's check_rcpt puts into a relay denial. */
export interface RelayClient {
  /** ${client_resolve}: OK, FAIL, FORGED or TEMP; unset for a session without a network client. */
  resolve?: string;
  /** ${client_name}: the verified host name, or "[address]". */
  name?: string;
  /** ${client_addr}. */
  address?: string;
  /** Every macro of the session, for $&{name} in confRELAY_MSG. */
  macros?: ReadonlyMap<string, string>;
}

/**
 * Builds the denial as sendmail's Relay_ok rules word it. A client whose PTR
 * lookup failed temporarily gets 450 4.4.0, so that it retries. A forged or
 * missing PTR name is named in the 550, and any other client gets confRELAY_MSG.
 */
function relayDenial(policy: RelayPolicy, address: string, client: RelayClient): Verdict {
  const denied = (denial: Reply): Verdict => ({
    action: denial.code < 500 ? 'tempfail' : 'reject',
    reply: { ...denial, lines: [`<${address}>... ${denial.lines.join(' ')}`] },
    reason: 'Relaying denied',
  });
  switch (client.resolve) {
    case 'TEMP':
      return denied(reply(450, '4.4.0', `Relaying temporarily denied. Cannot resolve PTR record for ${client.address ?? ''}`));
    case 'FORGED':
      return denied(reply(550, '5.7.1', `Relaying denied. IP name possibly forged ${client.name ?? ''}`));
    case 'FAIL':
      return denied(reply(550, '5.7.1', `Relaying denied. IP name lookup failed ${client.name ?? ''}`));
  }
  const text = expandRulesetText(policy.relayMessage ?? '"550 Relaying denied"', client.macros ?? new Map());
  return denied(errorReply(text, '5.7.1'));
}

/** Decides one recipient; returns the 550 reply when relaying is denied. */
export function checkRelay(
  policy: RelayPolicy,
  address: string,
  relayAllowed: boolean,
  client: RelayClient = {},
): Verdict {
  if (relayAllowed) return CONTINUE;

  const { local, domain } = splitDomain(address);
  const ours = domain === '' || domainInClass(domain, policy.localDomains) || policy.ownLiteral?.(domain) === true;
  const relayed = domain !== '' && domainInClass(domain, policy.relayDomains);

  if ((ours || relayed) && !hasRoutingLocalPart(local)) return CONTINUE;
  return relayDenial(policy, address, client);
}

/** check_rcpt as a checkpoint: the relay decision at RCPT time. */
export function relayCheckpoint(policy: RelayPolicy): Checkpoint {
  return {
    name: 'check_rcpt',
    stages: new Set(['rcpt']),
    check(ctx: CheckContext): Verdict {
      const macros = ctx.macros;
      return checkRelay(policy, ctx.address ?? '', ctx.relayAllowed, {
        resolve: macros.get('{client_resolve}'),
        name: macros.get('{client_name}'),
        address: macros.get('{client_addr}') ?? ctx.clientAddress,
        macros,
      });
    },
  };
}
