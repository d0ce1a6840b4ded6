// The access map at MAIL and RCPT time, as sendmail's default check_mail and
// check_rcpt use it with FEATURE(`access_db'):
//
// - check_mail looks up "From:" with the full address, then "user@", then
//   the domain and its parents (sendmail's F, U, D order). OK and RELAY
//   accept. REJECT, DISCARD, QUARANTINE:reason and ERROR: act on the sender,
//   and any other value rejects with itself as the text. The null sender is
//   never looked up.
// - check_rcpt lets a recipient through the relay decision when its domain
//   (or a parent) has "To:" RELAY, or the client has "Connect:" RELAY. With
//   FEATURE(`blacklist_recipients') "To:" REJECT and ERROR: entries reject
//   recipients. Keys without a tag match too, as in sendmail's old-style maps.
// - With FEATURE(`delay_checks') the rejections of check_mail and of
//   check_relay (decided at MAIL and at connect time) are given to each RCPT
//   instead, after the recipient's own checks and the relay decision. The
//   feature's `friend' or `hater' argument lets Spam:FRIEND recipients (or
//   all but Spam:HATER ones) skip them.

import type { Config } from '../config/types';
import type { Checkpoint, CheckContext, Verdict } from '../server/checkpoint';
import { CONTINUE } from '../server/checkpoint';
import { reply, type Reply } from '../smtp/reply';
import { errorReply, expandRulesetText } from './ruleset-text';
import { splitAddress } from '../smtp/address';
import { accessMapFromConfig, parseAccessValue, type AccessHit, type AccessMap } from './access';
import { detailKeys, domainKeys, lookupExact, lookupHostThenAddress, lookupKeys } from './lookup';
import { domainInClass } from './relay';
import { accessRejectReply, type ConnectDecision } from './check-relay';

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

/** With delay_checks: check_mail's rejection of the current transaction, by session, without an address prefix. */
const delayedMailVerdicts = new WeakMap<ReadonlyMap<string, string>, Verdict>();

const sharedMaps = new WeakMap<Config, AccessMap | null>();

/** Drops the access map kept for `config`, whose values a SIGHUP replaced in place. */
export function forgetSharedAccessMap(config: Config): void {
  sharedMaps.delete(config);
}

/** Returns the one AccessMap of a configuration, shared by the connect phase and the checkpoints. */
export function sharedAccessMap(config: Config, onError: (message: string) => void): AccessMap | undefined {
  let map = sharedMaps.get(config);
  if (map === undefined) {
    map = accessMapFromConfig(config, onError) ?? null;
    sharedMaps.set(config, map);
  }
  return map ?? undefined;
}

/** Returns the entry of the first of `keys` that has one, SKIP included (sendmail's F and U lookups). */
function firstExact(access: AccessMap, tag: string, keys: string[]): AccessHit | undefined {
  for (const key of keys) {
    const hit = lookupExact(access, tag, key, true);
    if (hit) return hit;
  }
  return undefined;
}

/**
 * Looks up an e-mail address as sendmail's SearchList does: the full address
 * (F), then "user@" (U) when `withUser` allows it for the domain, then the
 * domain and its parents (D). A +detail local part also tries "user+*" and
 * "user". An address without a domain is looked up as "user@" only, and the
 * null sender is not looked up at all (check_mail accepts <> before any lookup).
 */
function addressLookup(
  access: AccessMap,
  tag: string,
  address: string,
  withUser: (domain: string) => boolean,
): AccessHit | undefined {
  if (address === '') return undefined;
  const { local, domain } = splitAddress(address);
  const user = local.toLowerCase();
  const byUser = (): AccessHit | undefined => firstExact(access, tag, detailKeys(user, '@'));
  const name = domain.replace(/\.$/, '').toLowerCase();
  if (name === '') return byUser();
  return (
    firstExact(access, tag, detailKeys(user, `@${name}`)) ??
    (withUser(name) ? byUser() : undefined) ??
    lookupKeys(access, tag, domainKeys(name), true)
  );
}

/**
 * Builds the reply for a rejecting access value. A 5xx text is prefixed with
 * "<address>... ", a 4xx text is not, as sendmail 8.17 in Debian 12 replies.
 * Without an address (a check_mail result kept for RCPT) nothing is prefixed.
 */
function rejectReply(r: Reply, address: string | undefined): Reply {
  if (address !== undefined && r.code >= 500) return { ...r, lines: [`<${address}>... ${r.lines.join(' ')}`] };
  return r;
}

/**
 * Turns a From:/To: value into a verdict; `rejectText` is the REJECT reply.
 * OK and RELAY accept. Any value the rulesets do not know (a typo, or SKIP on
 * a full address in check_mail) is sendmail's generic "error from access db":
 * the value becomes the reply text, 553 5.3.0 unless it starts with a code.
 */
function valueVerdict(value: string, address: string | undefined, rejectText: Reply): Verdict {
  const action = parseAccessValue(value);
  switch (action.kind) {
    case 'ok':
    case 'relay':
      return CONTINUE;
    case 'skip':
    case 'other':
      return { action: 'reject', reply: rejectReply(errorReply(value.trim(), undefined), address) };
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

/**
 * check_mail: the From: entries, and the Connect: DISCARD or QUARANTINE of the
 * session. With `delayChecks`, a rejection is kept for the RCPT commands.
 */
export function checkMailCheckpoint(access: AccessMap | undefined, rejectMessage?: string, delayChecks = false): Checkpoint {
  return {
    name: 'check_mail',
    stages: new Set(['mail']),
    check(ctx: CheckContext): Verdict {
      delayedMailVerdicts.delete(ctx.macros);
      const state = connectStates.get(ctx.macros);
      if (state?.discard) return { action: 'discard' };
      if (state?.quarantine) return { action: 'quarantine', reason: state.quarantine };
      if (!access) return CONTINUE;

      const hit = addressLookup(access, 'From', ctx.address ?? '', () => true);
      if (!hit) return CONTINUE;
      const rejectText = accessRejectReply(rejectMessage, ctx.macros);
      const verdict = valueVerdict(hit.value, ctx.address ?? '', rejectText);
      if (delayChecks && (verdict.action === 'reject' || verdict.action === 'tempfail')) {
        delayedMailVerdicts.set(ctx.macros, valueVerdict(hit.value, undefined, rejectText));
        return CONTINUE;
      }
      return verdict;
    },
  };
}

/** Builds the reply to To: REJECT, `$#error $@ 5.2.1 $: confRCPTREJ_MSG`. */
function recipientRejectReply(message: string | undefined, macros: ReadonlyMap<string, string>): Reply {
  if (message === undefined) return reply(550, '5.2.1', 'Mailbox disabled for this recipient');
  return errorReply(expandRulesetText(message, macros), '5.2.1');
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

function delayedConnectVerdict(decision: ConnectDecision | undefined): Verdict | undefined {
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
export function checkRcptCheckpoint(
  access: AccessMap | undefined,
  blacklistRecipients: boolean,
  isLocalDomain: (domain: string) => boolean = () => true,
  recipientRejectMessage?: string,
): Checkpoint {
  return {
    name: 'check_rcpt',
    stages: new Set(['rcpt']),
    check(ctx: CheckContext): Verdict {
      if (!access) return CONTINUE;

      const address = ctx.address ?? '';
      if (blacklistRecipients) {
        // "user@" entries apply to local domains only (class w), as in Rcpt_ok. SKIP on a full address is no match.
        const hit = addressLookup(access, 'To', address, isLocalDomain);
        if (hit && parseAccessValue(hit.value).kind !== 'skip') {
          const verdict = valueVerdict(hit.value, address, recipientRejectReply(recipientRejectMessage, ctx.macros));
          if (verdict.action !== 'continue') return verdict;
        }
      }
      if (!ctx.relayAllowed && relayByAccess(access, ctx)) ctx.relayAllowed = true;
      return CONTINUE;
    },
  };
}

/**
 * Looks up a recipient with the Spam: tag only, as check_rcpt does with
 * delay_checks: the full address, then the domain and its parents, then
 * "user@" for local domains. Returns the value in upper case, or undefined.
 */
function spamValue(access: AccessMap, address: string, isLocalDomain: (domain: string) => boolean): string | undefined {
  const { local, domain } = splitAddress(address);
  const name = domain.replace(/\.$/, '').toLowerCase();
  if (name === '') return undefined;
  const user = local.toLowerCase();
  for (const key of detailKeys(user, `@${name}`)) {
    const hit = access.exact('Spam', key);
    if (hit) return hit.value.trim().toUpperCase();
  }
  const byDomain = lookupKeys(access, 'Spam', domainKeys(name), false);
  if (byDomain) return byDomain.value.trim().toUpperCase();
  if (!isLocalDomain(name)) return undefined;
  for (const key of detailKeys(user, '@')) {
    const hit = access.exact('Spam', key);
    if (hit) return hit.value.trim().toUpperCase();
  }
  return undefined;
}

/** Prefixes a kept rejection with the recipient as rejectReply() does (5xx only), as sendmail's reply to RCPT names it. */
function forRecipient(verdict: Verdict, address: string): Verdict {
  if (!verdict.reply) return verdict;
  return { ...verdict, reply: rejectReply(verdict.reply, address) };
}

/**
 * Builds the delay_checks check at RCPT, after the recipient's checks and the
 * relay decision: the kept check_mail rejection, then the check_relay one. With `friend', a
 * recipient whose Spam: entry is FRIEND skips them. With `hater', only a
 * recipient whose Spam: entry is HATER gets them.
 */
export function delayedChecksCheckpoint(
  access: AccessMap | undefined,
  spamMode: 'friend' | 'hater' | undefined,
  isLocalDomain: (domain: string) => boolean,
): Checkpoint {
  return {
    name: 'check_rcpt',
    stages: new Set(['rcpt']),
    check(ctx: CheckContext): Verdict {
      const mail = delayedMailVerdicts.get(ctx.macros);
      const connect = delayedConnectVerdict(connectStates.get(ctx.macros)?.delayed);
      if (!mail && !connect) return CONTINUE;

      const address = ctx.address ?? '';
      if (spamMode && access) {
        const spam = spamValue(access, address, isLocalDomain);
        if (spamMode === 'friend' && spam === 'FRIEND') return CONTINUE;
        if (spamMode === 'hater' && spam !== 'HATER') return CONTINUE;
      }
      if (mail) return forRecipient(mail, address);
      return connect!.action === 'reject' || connect!.action === 'tempfail' ? forRecipient(connect!, address) : connect!;
    },
  };
}

/** Builds the access map checkpoints for a configuration, to put before the relay decision. */
export function accessCheckpoints(config: Config, onError: (message: string) => void): Checkpoint[] {
  const access = sharedAccessMap(config, onError);
  const blacklist = config.features.some((f) => f.name === 'blacklist_recipients');
  const delayChecks = config.features.some((f) => f.name === 'delay_checks');
  const isLocal = (domain: string): boolean => domainInClass(domain, config.localDomains);
  const variables = config.mcVariables;
  return [
    checkMailCheckpoint(access, variables?.get('confREJECT_MSG'), delayChecks),
    checkRcptCheckpoint(access, blacklist, isLocal, variables?.get('confRCPTREJ_MSG')),
  ];
}

/** Builds the delay_checks checkpoint, to put after the relay decision. Returns undefined without the feature. */
export function delayChecksCheckpoint(config: Config, onError: (message: string) => void): Checkpoint | undefined {
  const feature = config.features.find((candidate) => candidate.name === 'delay_checks');
  if (!feature) return undefined;
  const argument = (feature.args[0] ?? '').trim().toLowerCase();
  const spamMode = argument === 'friend' || argument === 'hater' ? argument : undefined;
  const isLocal = (domain: string): boolean => domainInClass(domain, config.localDomains);
  return delayedChecksCheckpoint(sharedAccessMap(config, onError), spamMode, isLocal);
}
