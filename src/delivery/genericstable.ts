// Sender address rewriting for mail that leaves through an SMTP mailer:
// FEATURE(`genericstable') for domains in class G (GENERICS_DOMAIN) and
// unqualified names, then masquerading (MASQUERADE_AS, class M from
// MASQUERADE_DOMAIN, class E of exposed users, class N of exceptions). Header
// sender addresses are always rewritten; the envelope sender only with
// FEATURE(`masquerade_envelope').
//
// genericstable lookup order, as in sendmail's cf: user@domain, then for
// user+detail user+*@domain (%1 is the detail) and user@domain, then the
// catch-all @domain (%1 is the user), then the bare user, user+* and user.
// An unqualified result gets @$j.

import type { Config } from '../config/types';
import type { LookupMap } from '../maps/map';
import { featureMap, hasFeature, substituteArgs } from './feature-maps';
import { isOwnName } from './router';
import { qualifyHeaderAddresses } from '../smtp/headeraddress';

/** Headers that carry sender addresses (sendmail's H_FROM headers). */
const SENDER_HEADERS = new Set(['from', 'sender', 'reply-to', 'resent-from', 'resent-sender', 'resent-reply-to', 'errors-to']);
/** Headers that carry recipient addresses (sendmail's H_RCPT headers). */
const RECIPIENT_HEADERS = new Set(['to', 'cc', 'bcc', 'apparently-to', 'resent-to', 'resent-cc', 'resent-bcc']);

function inClass(config: Config, name: string, domain: string, entireDomain: boolean): boolean {
  const cls = config.classes.get(name);
  if (cls === undefined) return false;
  for (const word of cls) {
    const entry = word.toLowerCase();
    if (entry === domain) return true;
    if (entireDomain && domain.endsWith(`.${entry}`)) return true;
  }
  return false;
}

/** Looks a sender up in the generics map; returns the new address or undefined. */
export function lookupGenerics(map: LookupMap, local: string, domain: string, hostName: string): string | undefined {
  const plus = local.indexOf('+');
  const user = plus >= 0 ? local.slice(0, plus) : local;
  const detail = plus >= 0 ? local.slice(plus + 1) : '';
  const tries: Array<{ key: string; args: string[] }> = [{ key: `${local}@${domain}`, args: [] }];
  if (plus >= 0) tries.push({ key: `${user}+*@${domain}`, args: [detail] }, { key: `${user}@${domain}`, args: [] });
  tries.push({ key: `@${domain}`, args: [local] }, { key: local, args: [] });
  if (plus >= 0) tries.push({ key: `${user}+*`, args: [detail] }, { key: user, args: [] });
  for (const t of tries) {
    const value = map.get(t.key);
    if (value === undefined) continue;
    const result = substituteArgs(value.trim(), t.args);
    return result.includes('@') ? result : `${result}@${hostName}`;
  }
  return undefined;
}

/** Applies genericstable and masquerading to one sender address (no angle brackets). */
export function rewriteSenderAddress(address: string, config: Config, onError?: (m: string) => void): string {
  if (address === '') return address;
  const at = address.lastIndexOf('@');
  const local = at < 0 ? address : address.slice(0, at);
  const qualified = at >= 0;
  const domain = qualified ? address.slice(at + 1).toLowerCase().replace(/\.$/, '') : '';

  if (hasFeature(config, 'genericstable')) {
    const entire = hasFeature(config, 'generics_entire_domain');
    if (!qualified || inClass(config, 'G', domain, entire)) {
      const map = featureMap(config, 'genericstable', onError);
      const found = map && lookupGenerics(map, local, qualified ? domain : config.hostName, config.hostName);
      if (found) return found;
    }
  }
  return masquerade(local, qualified ? domain : undefined, config);
}

function masquerade(local: string, domain: string | undefined, config: Config): string {
  const masqueradeAs = config.macros.get('M');
  const plain = domain === undefined ? `${local}@${config.hostName}` : `${local}@${domain}`;
  if (masqueradeAs === undefined || masqueradeAs === '') return plain;
  if (domain !== undefined && inClass(config, 'N', domain, true)) return plain;

  const entire = hasFeature(config, 'masquerade_entire_domain');
  const limited = hasFeature(config, 'limited_masquerade');
  const masqueraded =
    domain === undefined ||
    inClass(config, 'M', domain, entire) ||
    (!limited && isOwnName(domain, config));
  if (!masqueraded) return plain;
  if (config.classes.get('E')?.has(local)) return plain;
  return `${local}@${masqueradeAs}`;
}

/** Rewrites every address in a sender header value, keeping names and comments. */
function rewriteHeaderValue(value: string, rewrite: (a: string) => string): string {
  if (value.includes('<')) return value.replace(/<([^<>@\s]+(?:@[^<>\s]+)?)>/g, (_w, a: string) => `<${rewrite(a)}>`);
  return value.replace(/(^|[\s,])([^\s,()<>"@]+(?:@[A-Za-z0-9.[\]:-]+)?)(?=$|[\s,])/g, (_w, lead: string, a: string) => lead + rewrite(a));
}

/**
 * Returns the envelope sender and headers for delivery through an SMTP
 * mailer, with genericstable and masquerading applied to the sender headers
 * when configured. An address header entry without a domain ("To: joe") gets
 * @$j, as sendmail qualifies header addresses of mail it relays, so that a
 * reply does not go to joe at the reader's own domain.
 */
export function rewriteOutbound(
  sender: string,
  headers: string[],
  config: Config,
  onError?: (m: string) => void,
): { sender: string; headers: string[] } {
  const active = hasFeature(config, 'genericstable') || (config.macros.get('M') ?? '') !== '';
  const rewrite = (a: string): string => rewriteSenderAddress(a, config, onError);
  const envelope = active && hasFeature(config, 'masquerade_envelope') && sender !== '' ? rewrite(sender) : sender;

  // The headers do not depend on the sender: one rewrite serves every route of
  // the item, which matters for a To: with thousands of addresses.
  const cached = outboundHeaders.get(headers);
  if (cached !== undefined && cached.config === config) return { sender: envelope, headers: cached.headers };
  const out = headers.map((h) => {
    const colon = h.indexOf(':');
    if (colon < 0) return h;
    const name = h.slice(0, colon).trim().toLowerCase();
    const isSender = SENDER_HEADERS.has(name);
    if (!isSender && !RECIPIENT_HEADERS.has(name)) return h;

    let value = h.slice(colon + 1);
    if (active && isSender) value = rewriteHeaderValue(value, rewrite);
    return h.slice(0, colon + 1) + qualifyHeaderAddresses(value, config.hostName);
  });
  outboundHeaders.set(headers, { config, headers: out });
  return { sender: envelope, headers: out };
}

/** Rewritten headers by the item's header array, for the routes of one delivery. */
const outboundHeaders = new WeakMap<string[], { config: Config; headers: string[] }>();
