// The access map at MAIL and RCPT time, as sendmail's default check_mail and
// check_rcpt use it with FEATURE(`access_db'):
//
// - check_mail looks up "From:" with the full address, then the domain and
//   its parents, then "user@"; OK and RELAY accept, REJECT, DISCARD,
//   QUARANTINE:reason and ERROR: act on the sender.
// - check_rcpt lets a recipient through the relay decision when its domain
//   (or a parent) has "To:" RELAY, or the client has "Connect:" RELAY. With
//   FEATURE(`blacklist_recipients') "To:" REJECT and ERROR: entries reject
//   recipients. Keys without a tag match too, as in sendmail's old-style maps.
// - With FEATURE(`delay_checks') a rejection that check_relay decided at
//   connect time is given to each RCPT instead.

import type { Config } from '../config/types';
import type { Checkpoint, CheckContext, Verdict } from '../server/checkpoint';
import { CONTINUE } from '../server/checkpoint';
import { reply, type Reply } from '../smtp/reply';
import { splitAddress } from '../smtp/address';
import { accessMapFromConfig, parseAccessValue, type AccessHit, type AccessMap } from './access';
import { domainKeys, lookupHostThenAddress, lookupKeys } from './lookup';
import type { ConnectDecision } from './check-relay';

/** Per-session results of the connect phase that later stages act on. */
export interface ConnectState {
  /** Connect: DISCARD: every message of the session is discarded. */
  discard?: boolean;
  /** Connect: QUARANTINE:reason: every message of the session is quarantined. */
  quarantine?: string;
  /** The client may relay because of a Connect: RELAY entry. */
  connectRelay?: boolean;
  /** With delay_checks: check_relay's verdict, applied to each RCPT. */
  delayed?: ConnectDecision;
}

/** Connect-phase state by session, keyed by the session's macro table (which a CheckContext carries). */
export const connectStates = new WeakMap<ReadonlyMap<string, string>, ConnectState>();

const sharedMaps = new WeakMap<Config, AccessMap | null>();

/** Returns the one AccessMap of a configuration, shared by the connect phase and the checkpoints. */
export function sharedAccessMap(config: Config, onError: (message: string) => void): AccessMap | undefined {
  let map = sharedMaps.get(config);
  if (map === undefined) {
    map = accessMapFromConfig(config, onError) ?? null;
    sharedMaps.set(config, map);
  }
  return map ?? undefined;
}

/** Looks up an e-mail address as sendmail does: "user@domain", then the domain and its parents, then "user@". */
function addressLookup(access: AccessMap, tag: string, address: string): AccessHit | undefined {
  if (address === '') return lookupKeys(access, tag, ['<>'], true);
  const { local, domain } = splitAddress(address);
  const full = domain === '' ? local : `${local}@${domain}`;
  return (
    lookupKeys(access, tag, [full.toLowerCase()], true) ??
    lookupKeys(access, tag, domainKeys(domain), true) ??
    lookupKeys(access, tag, [`${local.toLowerCase()}@`], true)
  );
}

/**
 * Builds the reply for a rejecting access value. A 5xx text is prefixed with
 * "<address>... ", a 4xx text is not, as sendmail 8.17 in Debian 12 replies.
 */
function rejectReply(r: Reply, address: string): Reply {
  if (r.code >= 500) return { ...r, lines: [`<${address}>... ${r.lines.join(' ')}`] };
  return r;
}

/** Turns a From:/To: value into a verdict; `rejectText` is the REJECT reply. */
function valueVerdict(value: string, address: string, rejectText: Reply): Verdict {
  const action = parseAccessValue(value);
  switch (action.kind) {
    case 'reject':
      return { action: 'reject', reply: rejectReply(rejectText, address) };
    case 'discard':
      return { action: 'discard' };
    case 'quarantine':
      return { action: 'quarantine', reason: action.reason };
    case 'error': {
      const r = reply(action.code, action.enhanced, action.text);
      return { action: action.code < 500 ? 'tempfail' : 'reject', reply: rejectReply(r, address) };
    }
    default:
      return CONTINUE;
  }
}

/** check_mail: the From: entries, and the Connect: DISCARD or QUARANTINE of the session. */
export function checkMailCheckpoint(access: AccessMap | undefined): Checkpoint {
  return {
    name: 'check_mail',
    stages: new Set(['mail']),
    check(ctx: CheckContext): Verdict {
      const state = connectStates.get(ctx.macros);
      if (state?.discard) return { action: 'discard' };
      if (state?.quarantine) return { action: 'quarantine', reason: state.quarantine };
      if (!access) return CONTINUE;

      const hit = addressLookup(access, 'From', ctx.address ?? '');
      if (!hit) return CONTINUE;
      return valueVerdict(hit.value, ctx.address ?? '', reply(550, '5.7.1', 'Access denied'));
    },
  };
}

/** Checks whether the recipient's domain has a To: RELAY entry, or the client a Connect: RELAY entry. */
function relayByAccess(access: AccessMap, ctx: CheckContext): boolean {
  const { domain } = splitAddress(ctx.address ?? '');
  const to = lookupKeys(access, 'To', domainKeys(domain), true);
  if (to && parseAccessValue(to.value).kind === 'relay') return true;

  const name = ctx.macros.get('{client_name}') ?? '';
  const connect = lookupHostThenAddress(access, 'Connect', name, ctx.clientAddress, true);
  return connect !== undefined && parseAccessValue(connect.value).kind === 'relay';
}

function delayedVerdict(decision: ConnectDecision | undefined): Verdict | undefined {
  if (!decision) return undefined;
  if (decision.action === 'reject') {
    return { action: decision.reply.code < 500 ? 'tempfail' : 'reject', reply: decision.reply, source: 'check_relay' };
  }
  if (decision.action === 'discard') return { action: 'discard' };
  if (decision.action === 'quarantine') return { action: 'quarantine', reason: decision.reason };
  return undefined;
}

/**
 * check_rcpt's access map part. It runs before the relay decision of
 * src/policy/relay.ts and grants relaying by setting `ctx.relayAllowed`,
 * which the chain hands on to the later checks of the same RCPT.
 */
export function checkRcptCheckpoint(access: AccessMap | undefined, blacklistRecipients: boolean): Checkpoint {
  return {
    name: 'check_rcpt',
    stages: new Set(['rcpt']),
    check(ctx: CheckContext): Verdict {
      const state = connectStates.get(ctx.macros);
      const delayed = delayedVerdict(state?.delayed);
      if (delayed) return delayed;
      if (!access) return CONTINUE;

      const address = ctx.address ?? '';
      if (blacklistRecipients) {
        const hit = addressLookup(access, 'To', address);
        if (hit) {
          const verdict = valueVerdict(hit.value, address, reply(550, '5.2.1', 'Mailbox disabled for this recipient'));
          if (verdict.action !== 'continue') return verdict;
        }
      }
      if (!ctx.relayAllowed && relayByAccess(access, ctx)) ctx.relayAllowed = true;
      return CONTINUE;
    },
  };
}

/** Builds the access map checkpoints for a configuration, to put before the relay decision. */
export function accessCheckpoints(config: Config, onError: (message: string) => void): Checkpoint[] {
  const access = sharedAccessMap(config, onError);
  const blacklist = config.features.some((f) => f.name === 'blacklist_recipients');
  return [checkMailCheckpoint(access), checkRcptCheckpoint(access, blacklist)];
}
