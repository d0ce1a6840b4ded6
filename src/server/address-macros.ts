// The macros that describe how an envelope address resolves, as sendmail
// defines them after parsing MAIL and RCPT: ${mail_mailer}, ${mail_host},
// ${mail_addr} for the sender and ${rcpt_mailer}, ${rcpt_host}, ${rcpt_addr}
// for the current recipient. Mail filters receive them (Milter.macros.*).

import type { Config } from '../config/types';
import { domainOf, isOwnName } from '../delivery/router';
import type { Reply } from '../smtp/reply';

export interface ResolvedAddress {
  /** The mailer name: "local", "esmtp" or "relay" (with SmartHost). */
  mailer: string;
  /** The destination host; "" for the local mailer. */
  host: string;
  /** The user part for the local mailer, else the whole address. */
  addr: string;
}

/**
 * Resolves an address the way the router will deliver it.
 * NOTE: mailertable entries are not consulted, so a mailertable route shows
 * up here as esmtp (or relay) to the address's domain.
 */
export function resolveAddress(address: string, config: Config): ResolvedAddress {
  const domain = domainOf(address);
  if (domain === '' || isOwnName(domain, config)) {
    const at = address.lastIndexOf('@');
    return { mailer: 'local', host: '', addr: at < 0 ? address : address.slice(0, at) };
  }
  if (config.smartHost) return { mailer: 'relay', host: config.smartHost, addr: address };
  return { mailer: 'esmtp', host: domain, addr: address };
}

/** Sets ${mail_mailer}, ${mail_host} and ${mail_addr} for a MAIL address. */
export function setSenderMacros(macros: Map<string, string>, address: string, config: Config): void {
  const resolved = resolveAddress(address, config);
  macros.set('{mail_mailer}', resolved.mailer);
  macros.set('{mail_host}', resolved.host);
  macros.set('{mail_addr}', resolved.addr);
}

/** Sets ${rcpt_mailer}, ${rcpt_host} and ${rcpt_addr} for a RCPT address. */
export function setRecipientMacros(macros: Map<string, string>, address: string, config: Config): void {
  const resolved = resolveAddress(address, config);
  macros.set('{rcpt_mailer}', resolved.mailer);
  macros.set('{rcpt_host}', resolved.host);
  macros.set('{rcpt_addr}', resolved.addr);
}

/**
 * Sets the recipient macros of a rejected recipient as sendmail's error
 * mailer leaves them: mailer "error", host the enhanced status code, addr
 * the reply text.
 */
export function setRejectedRecipientMacros(macros: Map<string, string>, rejection: Reply): void {
  macros.set('{rcpt_mailer}', 'error');
  macros.set('{rcpt_host}', rejection.enhanced ?? '');
  macros.set('{rcpt_addr}', rejection.lines.join(' '));
}
