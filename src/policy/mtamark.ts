// FEATURE(`mtamark'): the TXT record `_perm._smtp._srv.<reversed IPv4>.in-addr.arpa`
// (draft-stumpf-dns-mtamark-01) says whether a client is a mail server. "1"
// lets the connection continue, "0" rejects it, no record or any other value
// continues, and a DNS failure continues unless the second argument asks for
// a temporary failure. As in sendmail's mtamark.m4, IPv6 clients are not checked.

import * as net from 'node:net';
import type { MailResolver } from '../dns/resolver';
import type { Reply } from '../smtp/reply';
import { errorReply, expandRulesetText } from './ruleset-text';

export interface MtamarkFeature {
  rejectText: string;
  /** The temporary-failure text, or undefined to continue on DNS failure. */
  tempText?: string;
  prefix: string;
}

/** Reads FEATURE(`mtamark' [, reject text [, `t' | temp text [, prefix]]]). */
export function parseMtamarkFeature(args: readonly string[]): MtamarkFeature {
  const prefix = args[2]?.trim() || '_perm._smtp._srv';
  const rejectText = args[0]?.trim() || '"550 Rejected: " $&{client_addr} " not listed as MTA"';
  const temp = args[1]?.trim() ?? '';
  let tempText: string | undefined;
  if (temp === 't') tempText = `"451 Temporary lookup failure of " ${prefix}.$&{client_addr}`;
  else if (temp !== '') tempText = temp;
  return { rejectText, tempText, prefix };
}

/** The name queried for a client: `<prefix>.d.c.b.a.in-addr.arpa`. */
export function mtamarkName(prefix: string, address: string): string | undefined {
  if (!net.isIPv4(address)) return undefined;
  return `${prefix}.${address.split('.').reverse().join('.')}.in-addr.arpa`;
}

/** Returns the reply that rejects or tempfails the connection, or undefined to continue. */
export async function checkMtamark(
  resolver: MailResolver,
  feature: MtamarkFeature,
  address: string,
  macros: ReadonlyMap<string, string>,
): Promise<Reply | undefined> {
  const name = mtamarkName(feature.prefix, address);
  if (!name) return undefined;

  const result = await resolver.resolveTxt(name);
  if (result.kind === 'tempfail') {
    if (feature.tempText === undefined) return undefined;
    return errorReply(expandRulesetText(feature.tempText, macros), '4.4.3');
  }
  if (result.kind !== 'records') return undefined;
  const value = result.records[0]?.trim();
  if (value === '0') return errorReply(expandRulesetText(feature.rejectText, macros), '5.7.1');
  return undefined;
}
