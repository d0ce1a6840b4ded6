// FEATURE(`dnsbl') and FEATURE(`enhdnsbl'): DNS blocklists queried at
// connect time with the A record of `<d.c.b.a>.<list domain>`, as sendmail's
// dnsbl.m4 and enhdnsbl.m4 do. As there, only IPv4 clients are looked up.

import * as net from 'node:net';
import type { MailResolver } from '../dns/resolver';
import type { Reply } from '../smtp/reply';
import { errorReply, expandRulesetText } from './ruleset-text';

export type BlocklistAction =
  | { kind: 'reject'; reply: Reply }
  | { kind: 'tempfail'; reply: Reply }
  | { kind: 'quarantine'; reason: string }
  | { kind: 'discard'; list: string };

export interface BlocklistFeature {
  enhanced: boolean;
  domain: string;
  /** The rejection text, or "quarantine" / "discard". */
  message: string;
  /** The temporary-failure text, or undefined to continue on DNS failure. */
  tempText?: string;
  /** enhdnsbl: the DNS results that count as listed, e.g. "127.0.0.2." or "127.0.0.$-.". An empty list means any result. */
  values: string[];
}

/** Reads FEATURE(`dnsbl', domain, message, `t' | text) or FEATURE(`enhdnsbl', ..., values...). */
export function parseBlocklistFeature(name: string, args: readonly string[]): BlocklistFeature | undefined {
  const domain = args[0]?.trim().replace(/\.$/, '') ?? '';
  if (domain === '') return undefined;
  const message = args[1]?.trim() || `"550 Rejected: " $&{client_addr} " listed at ${domain}"`;
  const temp = args[2]?.trim() ?? '';
  let tempText: string | undefined;
  if (temp === 't') tempText = `"451 Temporary lookup failure of " $&{client_addr} " at ${domain}"`;
  else if (temp !== '') tempText = temp;
  const values = name === 'enhdnsbl' ? args.slice(3).map((v) => v.trim()).filter((v) => v !== '') : [];
  return { enhanced: name === 'enhdnsbl', domain, message, tempText, values };
}

/**
 * Returns whether a DNS answer such as "127.0.0.2." matches a pattern in which
 * "$-" matches one label, "$+" one or more characters and "$*" any rest.
 */
export function answerMatches(answer: string, pattern: string): boolean {
  const source = pattern
    .split(/(\$[-+*])/)
    .map(patternPartToRegex)
    .join('');
  return new RegExp(`^${source}$`).test(answer);
}

/** Converts one part of an enhdnsbl pattern to a regular expression: a sendmail wildcard or escaped literal text. */
function patternPartToRegex(part: string): string {
  if (part === '$-') return '[^.]+';
  if (part === '$+') return '.+';
  if (part === '$*') return '.*';
  return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function action(feature: BlocklistFeature, macros: ReadonlyMap<string, string>): BlocklistAction {
  if (feature.message === 'quarantine') return { kind: 'quarantine', reason: feature.domain };
  if (feature.message === 'discard') return { kind: 'discard', list: feature.domain };
  return { kind: 'reject', reply: errorReply(expandRulesetText(feature.message, macros), '5.7.1') };
}

/** Looks the client up in one list. Returns undefined when it is not listed. */
export async function checkBlocklist(
  resolver: MailResolver,
  feature: BlocklistFeature,
  address: string,
  macros: ReadonlyMap<string, string>,
): Promise<BlocklistAction | undefined> {
  if (!net.isIPv4(address)) return undefined;
  const name = `${address.split('.').reverse().join('.')}.${feature.domain}`;

  const result = await resolver.resolveAddresses(name);
  if (result.kind === 'tempfail') {
    if (feature.tempText === undefined) return undefined;
    return { kind: 'tempfail', reply: errorReply(expandRulesetText(feature.tempText, macros), '4.4.3') };
  }
  if (result.kind !== 'addresses') return undefined;

  // sendmail's dns maps with -a. append a dot to every answer, so the patterns are written for that form.
  const answers = result.addresses.filter((a) => net.isIPv4(a)).map((a) => `${a}.`);
  if (answers.length === 0) return undefined;
  if (!feature.enhanced) return action(feature, macros);

  const patterns = feature.values.length > 0 ? feature.values : ['$+'];
  const listed = answers.some((a) => patterns.some((p) => answerMatches(a, p)));
  return listed ? action(feature, macros) : undefined;
}
