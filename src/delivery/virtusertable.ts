// FEATURE(`virtusertable'): maps addresses of virtual domains (class
// {VirtHost} and this host's names, class w) to other addresses. Lookup order
// as in sendmail's cf: user@domain, then for user+detail user++@domain,
// user+*@domain and user@domain, then the domain's catch-all @domain (with
// ++@domain and +*@domain first when there is a detail). In the value, %1 is
// the user, %2 the detail and %3 "+detail".

import type { Config } from '../config/types';
import type { LookupMap } from '../maps/map';
import { featureMap, hasFeature, parseTableError, substituteArgs, type TableError } from './feature-maps';
import { isOwnName } from './router';

export type VirtuserResult = { kind: 'address'; address: string; key: string } | TableError;

/** Checks whether virtusertable applies to a domain: class {VirtHost} or one of our names. */
export function isVirtualDomain(domain: string, config: Config): boolean {
  const bare = domain.toLowerCase().replace(/\.$/, '');
  const virt = config.classes.get('VirtHost');
  if (virt !== undefined) {
    for (const d of virt) {
      const entry = d.toLowerCase();
      if (entry === bare) return true;
      if (hasFeature(config, 'virtuser_entire_domain') && bare.endsWith(`.${entry}`)) return true;
    }
  }
  return isOwnName(bare, config);
}

/** Looks `local`@`domain` up; undefined when no key matches. */
export function lookupVirtuser(map: LookupMap, local: string, domain: string): VirtuserResult | undefined {
  const d = domain.toLowerCase().replace(/\.$/, '');
  const plus = local.indexOf('+');
  const tries: Array<{ key: string; args: string[] }> = [{ key: `${local}@${d}`, args: [local] }];
  if (plus >= 0) {
    const user = local.slice(0, plus);
    const detail = local.slice(plus + 1);
    const args = [user, detail, `+${detail}`];
    if (detail !== '') tries.push({ key: `${user}++@${d}`, args });
    tries.push({ key: `${user}+*@${d}`, args }, { key: `${user}@${d}`, args });
    if (detail !== '') tries.push({ key: `++@${d}`, args });
    tries.push({ key: `+*@${d}`, args }, { key: `@${d}`, args });
  } else {
    tries.push({ key: `@${d}`, args: [local] });
  }
  for (const t of tries) {
    const value = map.get(t.key);
    if (value === undefined) continue;
    const result = substituteArgs(value.trim(), t.args);
    if (/^error:/i.test(result)) return parseTableError(result.slice(6));
    return { kind: 'address', address: result, key: t.key };
  }
  return undefined;
}

/** Applies virtusertable to an address when the FEATURE is on and the domain is virtual. */
export function virtuserRewrite(address: string, config: Config, onError?: (m: string) => void): VirtuserResult | undefined {
  if (!hasFeature(config, 'virtusertable')) return undefined;
  const at = address.lastIndexOf('@');
  if (at < 0) return undefined;
  const domain = address.slice(at + 1);
  if (!isVirtualDomain(domain, config)) return undefined;
  const map = featureMap(config, 'virtusertable', onError);
  return map === undefined ? undefined : lookupVirtuser(map, address.slice(0, at), domain);
}
