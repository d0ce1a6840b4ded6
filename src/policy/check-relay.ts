// check_relay: the connect-time checks of sendmail's default configuration,
// in its order. With `nodelay`, ratecontrol and conncontrol run first. Then
// the access map's Connect: entries by host name and address (OK and RELAY
// end the checks), ratecontrol and conncontrol without `nodelay`, then the
// DNS checks (dnsbl, enhdnsbl, mtamark) in the order the .mc gives them.
//
// With FEATURE(`delay_checks') everything but the `nodelay` controls is
// decided at connect time but applied to RCPT commands (src/policy/check-mail.ts).

import type { Config } from '../config/types';
import type { MailResolver } from '../dns/resolver';
import { reply, type Reply } from '../smtp/reply';
import { parseAccessValue, type AccessMap } from './access';
import { lookupHostThenAddress } from './lookup';
import { checkClientRate, parseControlFeature, type ConnectionCounts, type ControlFeature } from './rate-control';
import { checkClientConn } from './conn-control';
import { checkMtamark, parseMtamarkFeature, type MtamarkFeature } from './mtamark';
import { checkBlocklist, parseBlocklistFeature, type BlocklistFeature } from './dnsbl';
import { errorReply, expandRulesetText } from './ruleset-text';

/** Builds the reply to an access map REJECT: confREJECT_MSG (no DSN of its own) when set, else 550 5.7.1 Access denied. */
export function accessRejectReply(message: string | undefined, macros: ReadonlyMap<string, string>): Reply {
  if (message === undefined) return reply(550, '5.7.1', 'Access denied');
  return errorReply(expandRulesetText(message, macros), undefined);
}

export type ConnectDecision =
  | { action: 'continue' }
  | { action: 'ok' }
  | { action: 'relay' }
  | { action: 'reject'; reply: Reply; delayed: boolean }
  | { action: 'discard'; delayed: boolean }
  | { action: 'quarantine'; reason: string; delayed: boolean };

export interface ConnectFacts {
  /** First argument of check_relay: ${client_name}, or ${client_ptr} with use_client_ptr. */
  host: string;
  address: string;
  counts: ConnectionCounts;
  macros: ReadonlyMap<string, string>;
}

type DnsCheck = { kind: 'mtamark'; feature: MtamarkFeature } | { kind: 'blocklist'; feature: BlocklistFeature };

/**
 * Turns a Connect: value into a decision, as Basic_check_relay does.
 * `rejectReply` is the reply to REJECT: confREJECT_MSG when the .mc sets it.
 */
export function connectValueDecision(
  value: string,
  delayed: boolean,
  rejectReply: Reply = reply(550, '5.7.1', 'Access denied'),
): ConnectDecision {
  const action = parseAccessValue(value);
  switch (action.kind) {
    case 'ok':
      return { action: 'ok' };
    case 'skip':
      // The lookups end a search at SKIP without a result. Should one reach here, it decides nothing.
      return { action: 'continue' };
    case 'relay':
      return { action: 'relay' };
    case 'reject':
      return { action: 'reject', reply: rejectReply, delayed };
    case 'discard':
      return { action: 'discard', delayed };
    case 'quarantine':
      return { action: 'quarantine', reason: action.reason, delayed };
    case 'error':
      return { action: 'reject', reply: reply(action.code, action.enhanced, action.text), delayed };
    case 'other':
      // Any other value is an error text, as the generic rule of Basic_check_relay makes it.
      return { action: 'reject', reply: errorReply(action.value, undefined), delayed };
  }
}

export class CheckRelay {
  readonly useClientPtr: boolean;
  private readonly delayChecks: boolean;
  /** DeliveryMode=deferred skips every check but the `nodelay` controls, as Basic_check_relay does. */
  private readonly deferredMode: boolean;
  private readonly rateControl?: ControlFeature;
  private readonly connControl?: ControlFeature;
  private readonly dnsChecks: DnsCheck[] = [];
  /** confREJECT_MSG, the reply text of REJECT in ruleset syntax. */
  private readonly rejectMessage?: string;

  constructor(
    config: Config,
    private readonly access: AccessMap | undefined,
    private readonly resolver: MailResolver,
  ) {
    const feature = (name: string) => config.features.find((f) => f.name === name);
    this.useClientPtr = feature('use_client_ptr') !== undefined;
    this.delayChecks = feature('delay_checks') !== undefined;
    this.deferredMode = config.deliveryMode === 'deferred';
    this.rejectMessage = config.mcVariables?.get('confREJECT_MSG');
    const rate = feature('ratecontrol');
    const conn = feature('conncontrol');
    if (rate) this.rateControl = parseControlFeature(rate.args);
    if (conn) this.connControl = parseControlFeature(conn.args);

    for (const f of config.features) {
      if (f.name === 'mtamark') this.dnsChecks.push({ kind: 'mtamark', feature: parseMtamarkFeature(f.args) });
      if (f.name === 'dnsbl' || f.name === 'enhdnsbl') {
        const list = parseBlocklistFeature(f.name, f.args);
        if (list) this.dnsChecks.push({ kind: 'blocklist', feature: list });
      }
    }
  }

  /** Runs the checks; the first one that does not continue decides. */
  async run(facts: ConnectFacts): Promise<ConnectDecision> {
    const immediate = this.controls(facts, true);
    if (immediate) return immediate;
    if (this.deferredMode) return { action: 'continue' };

    const delayed = this.delayChecks;
    if (this.access) {
      const hit = lookupHostThenAddress(this.access, 'Connect', facts.host, facts.address, true);
      if (hit) {
        const decision = connectValueDecision(hit.value, delayed, accessRejectReply(this.rejectMessage, facts.macros));
        if (decision.action !== 'continue') return decision;
      }
    }

    const controls = this.controls(facts, false);
    if (controls) return controls;

    for (const check of this.dnsChecks) {
      const decision = await this.runDnsCheck(check, facts, delayed);
      if (decision) return decision;
    }
    return { action: 'continue' };
  }

  /** ratecontrol and conncontrol, either those with `nodelay` (immediate) or the others. */
  private controls(facts: ConnectFacts, immediate: boolean): ConnectDecision | undefined {
    if (!this.access) return undefined;
    // Without delay_checks every check runs at connect time, so nodelay changes nothing.
    const runsNow = (f: ControlFeature | undefined): boolean =>
      f !== undefined && (this.delayChecks ? f.nodelay === immediate : !immediate);
    const delayed = this.delayChecks && !immediate;

    if (runsNow(this.rateControl)) {
      const r = checkClientRate(this.access, facts.address, facts.counts.clientRate, this.rateControl!);
      if (r) return { action: 'reject', reply: r, delayed };
    }
    if (runsNow(this.connControl)) {
      const r = checkClientConn(this.access, facts.address, facts.counts.clientConnections, this.connControl!);
      if (r) return { action: 'reject', reply: r, delayed };
    }
    return undefined;
  }

  private async runDnsCheck(check: DnsCheck, facts: ConnectFacts, delayed: boolean): Promise<ConnectDecision | undefined> {
    if (check.kind === 'mtamark') {
      const r = await checkMtamark(this.resolver, check.feature, facts.address, facts.macros);
      return r ? { action: 'reject', reply: r, delayed } : undefined;
    }
    const result = await checkBlocklist(this.resolver, check.feature, facts.address, facts.macros);
    if (!result) return undefined;
    if (result.kind === 'quarantine') return { action: 'quarantine', reason: result.reason, delayed };
    if (result.kind === 'discard') return { action: 'discard', delayed };
    return { action: 'reject', reply: result.reply, delayed };
  }
}
