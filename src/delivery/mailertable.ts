// FEATURE(`mailertable'): routes a recipient domain to a mailer and host.
// Keys are tried as sendmail's cf does: the full domain, then each parent
// domain with a leading dot (".example.com"), then "." alone. For a parent
// match, %1 in the value is the part of the domain that was cut off. For the
// "." key, %1 is the whole domain. Values:
//   esmtp:[mx.example.com]   mailer and host ("[...]" skips the MX lookup)
//   relay:host, smtp:host    another SMTP mailer
//   cyrusv2:localhost        an LMTP mailer defined with MAILER(cyrusv2)
//   local:user, local:       local delivery (to "user", or the address's local part)
//   error:5.1.1:550 No such user here, error:nouser User unknown
//   mx.example.com           a bare host for the relay mailer

import type { Config } from '../config/types';
import type { LookupMap } from '../maps/map';
import type { QueueRecipient } from '../queue/types';
import { ipcMailer } from './local-lmtp';
import { featureMap, hasFeature, parseTableError, substituteArgs, type TableError } from './feature-maps';
import { isOwnName } from './router';

export type MailertableResult =
  | TableError
  | { kind: 'local'; user?: string }
  | { kind: 'mailer'; mailer: string; host: string; user?: string };

/** Looks a domain up; undefined when no key matches. */
export function lookupMailertable(map: LookupMap, domain: string): { value: string; key: string } | undefined {
  const host = domain.toLowerCase().replace(/\.$/, '');
  const exact = map.get(host);
  if (exact !== undefined) return { value: exact.trim(), key: host };
  const labels = host.split('.');
  for (let i = 1; i < labels.length; i++) {
    const key = `.${labels.slice(i).join('.')}`;
    const value = map.get(key);
    if (value !== undefined) return { value: substituteArgs(value.trim(), [labels.slice(0, i).join('.')]), key };
  }
  const dot = map.get('.');
  if (dot !== undefined) return { value: substituteArgs(dot.trim(), [host]), key: '.' };
  return undefined;
}

/** Parses a mailertable value into a route. */
export function parseMailertableValue(value: string, config: Config): MailertableResult | undefined {
  if (value === '') return undefined;
  if (/^error:/i.test(value)) return parseTableError(value.slice(6));
  if (/^local:/i.test(value)) {
    const user = value.slice(6).trim();
    return user === '' ? { kind: 'local' } : { kind: 'local', user: user.replace(/@.*$/, '') };
  }
  const m = /^([^\s:[]+):(.*)$/.exec(value);
  if (!m) {
    if (isOwnName(value, config)) return { kind: 'local' };
    return { kind: 'mailer', mailer: 'relay', host: value };
  }
  const mailer = m[1].toLowerCase();
  let host = m[2].trim();
  let user: string | undefined;
  const at = host.lastIndexOf('@');
  if (at >= 0 && !host.startsWith('[')) {
    user = host.slice(0, at);
    host = host.slice(at + 1);
  }
  return { kind: 'mailer', mailer, host, user };
}

/** Returns the mailertable route of a domain, when the FEATURE is on and a key matches. */
export function mailertableRoute(domain: string, config: Config, onError?: (m: string) => void): MailertableResult | undefined {
  if (domain === '' || !hasFeature(config, 'mailertable')) return undefined;
  const map = featureMap(config, 'mailertable', onError);
  if (map === undefined) return undefined;
  const found = lookupMailertable(map, domain);
  return found === undefined ? undefined : parseMailertableValue(found.value, config);
}

/**
 * Returns the route of a recipient that does not follow the domain rules:
 * |program targets go to the prog mailer, /file targets to *file*, "\user"
 * to the local mailer, and a
 * domain with a mailertable entry goes to that entry's mailer and host.
 */
export function tableRoute(rcpt: QueueRecipient, config: Config): { mailer: string; destination: string; mailertable: boolean } | undefined {
  if (rcpt.parent !== undefined && rcpt.address.startsWith('|')) return { mailer: 'prog', destination: config.hostName, mailertable: false };
  if (rcpt.parent !== undefined && rcpt.address.startsWith('/')) return { mailer: '*file*', destination: config.hostName, mailertable: false };
  if (rcpt.parent !== undefined && rcpt.address.startsWith('\\')) return { mailer: 'local', destination: config.hostName, mailertable: false };
  const at = rcpt.address.lastIndexOf('@');
  const domain = at < 0 ? '' : rcpt.address.slice(at + 1).toLowerCase();
  if (domain === '' || isOwnName(domain, config)) return undefined;
  const found = mailertableRoute(domain, config);
  if (found?.kind !== 'mailer') return undefined;
  // The user of a "mailer:user@host" value is sent by mailertableRecipient.
  return { mailer: found.mailer, destination: found.host, mailertable: true };
}

/** Checks whether a route is delivered locally: local, prog, *file*, or an LMTP [IPC] mailer. */
export function isLocalRoute(route: { mailer: string }, config: Config): boolean {
  if (route.mailer === 'local' || route.mailer === 'prog' || route.mailer === '*file*') return true;
  return ipcMailer(config, route.mailer) !== undefined;
}

/**
 * Returns the address sent in RCPT TO for a recipient whose mailertable value
 * names a user ("esmtp:user@host" sends "user@host", as sendmail's
 * MailerToTriple ruleset does); every other recipient keeps its address.
 */
export function mailertableRecipient(address: string, config: Config): string {
  const at = address.lastIndexOf('@');
  const domain = at < 0 ? '' : address.slice(at + 1).toLowerCase();
  if (domain === '' || address.startsWith('|') || address.startsWith('/') || isOwnName(domain, config)) return address;
  const found = mailertableRoute(domain, config);
  return found?.kind === 'mailer' && found.user !== undefined && found.user !== '' ? `${found.user}@${found.host}` : address;
}

const SMTP_MAILERS = new Set(['relay', 'smtp', 'esmtp', 'smtp8', 'dsmtp']);

/**
 * Returns the configuration for a route that mailertable chose: its SMTP
 * mailer and host take the place of SmartHost, so that the host gets an MX
 * lookup unless bracketed and the connection goes to that mailer's port.
 */
export function mailertableConfig(config: Config, route: { mailer: string; destination: string }): Config {
  if (!SMTP_MAILERS.has(route.mailer)) return withoutSmartHost(config);
  return { ...config, smartHost: `${route.mailer}:${route.destination}` };
}

/** Returns a copy of the configuration without SmartHost, for routes that mailertable chose. */
export function withoutSmartHost(config: Config): Config {
  if (config.smartHost === undefined) return config;
  const copy = { ...config };
  delete copy.smartHost;
  return copy;
}
