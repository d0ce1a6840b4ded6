// FEATURE(`conncontrol'): the ClientConn: access map limit on concurrent
// sessions from one client address.

import { reply, type Reply } from '../smtp/reply';
import type { AccessMap } from './access';
import { lookupAddressOrDefault } from './lookup';
import { parseLimit, type ControlFeature } from './rate-control';

/**
 * ClientConn: allows at most `limit` concurrent sessions, so it rejects when
 * the other open sessions (${client_connections}) already number `limit`.
 * This is what sendmail 8.13 and the sendmail 8.17 package in Debian 12 do.
 */
export function checkClientConn(
  access: AccessMap,
  address: string,
  clientConnections: number,
  feature: ControlFeature,
): Reply | undefined {
  const limit = parseLimit(lookupAddressOrDefault(access, 'ClientConn', address)?.value);
  if (limit === 0 || clientConnections < limit) return undefined;
  return reply(feature.terminate ? 421 : 452, '4.3.2', 'Too many open connections.');
}
