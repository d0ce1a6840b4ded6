// Access map lookups the default rulesets combine: a host name and its parent
// domains, then an address and its shorter prefixes, each as "Tag:key" and,
// for the tags that allow it (Connect:, From:, To:), as the bare key too.

import { addressKeys, type AccessHit, type AccessMap } from './access';

/** The keys a host name is looked up under: a.b.example, b.example, example. */
export function domainKeys(host: string): string[] {
  const name = host.replace(/\.$/, '').toLowerCase();
  if (name === '') return [];
  if (name.startsWith('[') && name.endsWith(']')) return [name];
  const labels = name.split('.');
  return labels.map((_, i) => labels.slice(i).join('.'));
}

/** Looks up each key as "Tag:key" and, when `bare` is set, as "key" right after it. */
export function lookupKeys(access: AccessMap, tag: string, keys: string[], bare: boolean): AccessHit | undefined {
  for (const key of keys) {
    const tagged = access.exact(tag, key);
    if (tagged) return tagged;
    if (!bare) continue;
    const value = access.map.get(key);
    if (value !== undefined) return { key, value };
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
