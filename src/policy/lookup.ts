// Access map lookups the default rulesets combine: a host name and its parent
// domains, then an address and its shorter prefixes, each as "Tag:key" and,
// for the tags that allow it (Connect:, From:, To:), as the bare key too.
//
// SKIP ends a host name or address search as if nothing had matched, as the
// D and A rulesets of sendmail's proto.m4 do. The next search of the same
// check still runs, so a SKIP for the client's host name lets its address match.

import * as net from 'node:net';
import { addressKeys, parseAccessValue, type AccessHit, type AccessMap } from './access';

/**
 * The keys a host name is looked up under: a.b.example, b.example, example.
 * An address literal also tries its networks: [192.0.2.7], [192.0.2], [192.0], [192].
 */
export function domainKeys(host: string): string[] {
  const name = host.replace(/\.$/, '').toLowerCase();
  if (name === '') return [];
  if (name.startsWith('[') && name.endsWith(']')) return literalKeys(name.slice(1, -1));
  const labels = name.split('.');
  return labels.map((_, i) => labels.slice(i).join('.'));
}

function literalKeys(inner: string): string[] {
  const plain = inner.replace(/^ipv6:/, '');
  if (net.isIPv4(inner)) return addressKeys(inner).map((key) => `[${key}]`);
  if (net.isIPv6(plain)) return addressKeys(plain).map((key) => `[${key.toLowerCase()}]`);
  return [`[${inner}]`];
}

/** Tests whether an access value is SKIP, which ends a host name or address search. */
function isSkip(hit: AccessHit): boolean {
  return parseAccessValue(hit.value).kind === 'skip';
}

/** Looks up one key as "Tag:key" and, when `bare` is set, as "key". SKIP is returned as it is. */
export function lookupExact(access: AccessMap, tag: string, key: string, bare: boolean): AccessHit | undefined {
  const tagged = access.exact(tag, key);
  if (tagged) return tagged;
  if (!bare) return undefined;
  const value = access.map.get(key);
  return value === undefined ? undefined : { key, value };
}

/**
 * Looks up each key as "Tag:key" and, when `bare` is set, as "key" right after
 * it. The first hit ends the search; a SKIP hit ends it with no result.
 */
export function lookupKeys(access: AccessMap, tag: string, keys: string[], bare: boolean): AccessHit | undefined {
  for (const key of keys) {
    const hit = lookupExact(access, tag, key, bare);
    if (hit) return isSkip(hit) ? undefined : hit;
  }
  return undefined;
}

/** sendmail's D then A lookup: the host name and its parents, then the address and its prefixes. */
export function lookupHostThenAddress(
  access: AccessMap,
  tag: string,
  host: string,
  address: string,
  bare: boolean,
): AccessHit | undefined {
  return lookupKeys(access, tag, domainKeys(host), bare) ?? lookupKeys(access, tag, addressKeys(address), bare);
}

/** The A lookup with the bare tag ("ClientRate:") as the default entry. */
export function lookupAddressOrDefault(access: AccessMap, tag: string, address: string): AccessHit | undefined {
  return lookupKeys(access, tag, addressKeys(address), false) ?? access.defaultEntry(tag);
}

/**
 * Lists the keys of sendmail's F and U lookups for a local part with +detail:
 * "user+detail", "user+*", then "user". Without a "+", only the local part.
 */
export function detailKeys(local: string, suffix: string): string[] {
  const plusAt = local.indexOf('+');
  if (plusAt <= 0) return [`${local}${suffix}`];
  const user = local.slice(0, plusAt);
  return [`${local}${suffix}`, `${user}+*${suffix}`, `${user}${suffix}`];
}
