// Access map lookups in the order sendmail's default rulesets use them:
// tagged keys ("Connect:", "From:", "To:", "GreetPause:", "TLS_Srv:", ...),
// host names then their parent domains, addresses then shorter prefixes, and
// the bare tag ("Tag:") as the default entry.

import { ipv6Groups } from '../dns/ipv6';
import * as net from 'node:net';
import type { Config } from '../config/types';
import { openMap, parseMapSpec, type LookupMap } from '../maps/map';

export interface AccessHit {
  /** The key that matched, e.g. "Connect:192.0.2". */
  key: string;
  value: string;
}

/** The parsed right-hand side of an access map entry. */
export type AccessAction =
  | { kind: 'ok' }
  | { kind: 'relay' }
  | { kind: 'reject' }
  | { kind: 'discard' }
  | { kind: 'skip' }
  | { kind: 'quarantine'; reason: string }
  | { kind: 'error'; code: number; enhanced?: string; text: string }
  | { kind: 'other'; value: string };

export class AccessMap {
  constructor(readonly map: LookupMap) {}

  /** Looks up exactly "Tag:key" (keys are case-insensitive). */
  exact(tag: string, key: string): AccessHit | undefined {
    const full = `${tag}:${key}`;
    const value = this.map.get(full);
    return value === undefined ? undefined : { key: full, value };
  }

  /** "Tag:" alone, the default entry. */
  defaultEntry(tag: string): AccessHit | undefined {
    return this.exact(tag, '');
  }

  /** Looks up a host name, then each parent domain: a.b.example, b.example, example. */
  domain(tag: string, host: string): AccessHit | undefined {
    const name = host.replace(/\.$/, '').toLowerCase();
    if (name === '') return undefined;
    if (name.startsWith('[') && name.endsWith(']')) return this.exact(tag, name);

    const labels = name.split('.');
    for (let i = 0; i < labels.length; i++) {
      const hit = this.exact(tag, labels.slice(i).join('.'));
      if (hit) return hit;
    }
    return undefined;
  }

  /**
   * Looks up an address, then shorter prefixes: 192.0.2.7, 192.0.2, 192.0, 192. IPv6
   * addresses are written "IPv6:2001:db8::1" and shortened one ":" part at a time.
   */
  address(tag: string, ip: string): AccessHit | undefined {
    for (const key of addressKeys(ip)) {
      const hit = this.exact(tag, key);
      if (hit) return hit;
    }
    return undefined;
  }

  refresh(): void {
    this.map.refresh();
  }
}

/**
 * Returns the keys an address is looked up under, longest first. An IPv6
 * address is tried in sendmail 8.15's full form first (IPv6:2001:db8:0:0:0:0:0:25,
 * one group less each time), then in the compressed form that sendmail 8.13
 * and older maps use (IPv6:2001:db8::25, then IPv6:2001:db8).
 */
export function addressKeys(ip: string): string[] {
  const plain = ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  const keys: string[] = [];
  if (net.isIPv4(plain)) {
    const parts = plain.split('.');
    for (let n = 4; n >= 1; n--) keys.push(parts.slice(0, n).join('.'));
    return keys;
  }
  if (net.isIPv6(plain)) {
    // Both forms, most specific first: [key, groups it covers].
    const ranked: Array<[string, number]> = [];
    const groups = fullIpv6Groups(plain);
    for (let n = groups.length; n >= 1; n--) ranked.push([`IPv6:${groups.slice(0, n).join(':')}`, n]);
    let rest = plain.toLowerCase();
    for (let removed = 0; ; removed++) {
      const covered = rest.includes('::') ? 8 - removed : rest.split(':').length;
      ranked.push([`IPv6:${rest}`, covered]);
      const colon = rest.lastIndexOf(':');
      if (colon <= 0) break;
      rest = rest.slice(0, colon).replace(/:+$/, '');
      if (rest === '') break;
    }
    // A stable sort keeps the full form ahead at equal length.
    ranked.sort((a, b) => b[1] - a[1]);
    for (const [key] of ranked) {
      if (!keys.includes(key)) keys.push(key);
    }
  }
  return keys;
}

/** Returns the eight groups of an IPv6 address in hex without leading zeros, as sendmail's IPV6_FULL writes them. */
function fullIpv6Groups(address: string): string[] {
  return ipv6Groups(address).map((group) => parseInt(group, 16).toString(16));
}

/** Parses an access map value: OK, RELAY, REJECT, DISCARD, SKIP, QUARANTINE:r, ERROR:... */
export function parseAccessValue(value: string): AccessAction {
  const v = value.trim();
  const upper = v.toUpperCase();
  if (upper === 'OK') return { kind: 'ok' };
  if (upper === 'RELAY') return { kind: 'relay' };
  if (upper === 'REJECT') return { kind: 'reject' };
  if (upper === 'DISCARD') return { kind: 'discard' };
  if (upper === 'SKIP') return { kind: 'skip' };
  if (upper.startsWith('QUARANTINE:')) return { kind: 'quarantine', reason: v.slice(11).trim() };
  if (upper.startsWith('ERROR:')) return parseErrorValue(v.slice(6));

  const coded = /^([45]\d\d)\s+(.*)$/.exec(v);
  if (coded) return parseErrorValue(v);
  return { kind: 'other', value: v };
}

/**
 * Parses the forms of ERROR: that sendmail's access map accepts:
 * "ERROR:550 text", "ERROR:5.7.1:550 text", "ERROR:\"550 text\"", "ERROR:text".
 */
function parseErrorValue(text: string): AccessAction {
  let t = text.trim().replace(/^"(.*)"$/, '$1');
  let enhanced: string | undefined;

  const dsn = /^(\d\.\d{1,3}\.\d{1,3}):(.*)$/.exec(t);
  if (dsn) {
    enhanced = dsn[1];
    t = dsn[2].trim();
  }
  const coded = /^([245]\d\d)(?:\s+(.*))?$/.exec(t);
  if (!coded) return { kind: 'error', code: 553, enhanced: enhanced ?? '5.3.0', text: t };

  let rest = coded[2] ?? '';
  const inner = /^(\d\.\d{1,3}\.\d{1,3})\s+(.*)$/.exec(rest);
  if (inner) {
    enhanced = inner[1];
    rest = inner[2];
  }
  const code = Number(coded[1]);
  return { kind: 'error', code, enhanced: enhanced ?? `${coded[1][0]}.0.0`, text: rest };
}

/** Opens the access map that FEATURE(`access_db') names, or undefined without one. */
export function accessMapFromConfig(config: Config, onError: (message: string) => void): AccessMap | undefined {
  const feature = config.features.find((f) => f.name === 'access_db');
  if (!feature) return undefined;
  const spec = parseMapSpec(feature.args[0] || 'hash -o /etc/mail/access');
  return new AccessMap(openMap(spec, onError));
}
