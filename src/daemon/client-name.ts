// The client's host name for $_ and relay=: "name [addr]" when the PTR name
// resolves back to the address, "[addr]" otherwise, as sendmail does.

import * as net from 'node:net';
import type { MailResolver } from '../dns/resolver';
import { isLocalhostClient } from '../policy/relay';

function isLoopback(address: string): boolean {
  return address === '::1' || (net.isIPv4(address) && address.startsWith('127.'));
}

/** Returns the PTR name of `address` if one of its addresses is `address`. */
export async function verifiedClientName(address: string, resolver: MailResolver): Promise<string | undefined> {
  const ptr = await resolver.reverse(address);
  if (ptr.kind !== 'names') return undefined;

  for (const name of ptr.names.slice(0, 3)) {
    const forward = await resolver.resolveAddresses(name);
    if (forward.kind === 'addresses' && forward.addresses.includes(address)) return name.replace(/\.$/, '');
  }
  return undefined;
}

/**
 * Builds $_ for a client. Loopback clients are not looked up unless
 * NameServers is set, so that a default set-up sends no DNS query for them.
 */
export async function clientNameText(
  address: string,
  resolver: MailResolver,
  haveNameServers: boolean,
): Promise<string> {
  if (isLocalhostClient(address)) return `localhost [${address}]`;
  if (isLoopback(address) && !haveNameServers) return `[${address}]`;

  const name = await verifiedClientName(address, resolver).catch(() => undefined);
  return name ? `${name} [${address}]` : `[${address}]`;
}
