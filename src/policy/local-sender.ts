// check_mail's "Real domain name required for sender address": a sender at
// localhost, [127.0.0.1], [IPv6:::1], localhost.$m or localhost.UUCP is
// accepted only from a client whose name is one of ours (class w), as the
// default rules of sendmail's proto.m4 decide before the access map is read.
// FEATURE(`accept_unqualified_senders') and the daemon modifier "u" turn the
// check off; a session without a client name (-bs on a pipe) passes.

import type { Config } from '../config/types';
import { reply, type Reply } from '../smtp/reply';
import { domainInClass } from './relay';

/** Lists the domains that name this host's loopback in a sender address. */
function localhostDomains(config: Config): string[] {
  const names = ['localhost', '[127.0.0.1]', '[ipv6:0:0:0:0:0:0:0:1]', '[ipv6:::1]'];
  // $m is the domain part of $j.
  const dot = config.hostName.indexOf('.');
  if (dot > 0) names.push(`localhost.${config.hostName.slice(dot + 1).toLowerCase()}`);
  if (!config.features.some((f) => f.name === 'nouucp')) names.push('localhost.uucp');
  return names;
}

/** Returns the 553 reply when a remote client gives a localhost sender, else undefined. */
export function localhostSenderReply(
  config: Config,
  address: string,
  clientName: string | undefined,
  daemonModifiers: string,
): Reply | undefined {
  const at = address.lastIndexOf('@');
  if (at < 0) return undefined;
  if (config.features.some((f) => f.name === 'accept_unqualified_senders')) return undefined;
  if (daemonModifiers.includes('u')) return undefined;
  const domain = address.slice(at + 1).toLowerCase();
  if (!localhostDomains(config).includes(domain)) return undefined;
  if (clientName === undefined || clientName === '') return undefined;
  if (domainInClass(clientName, config.localDomains)) return undefined;
  return reply(553, '5.5.4', `<${address}>... Real domain name required for sender address`);
}
