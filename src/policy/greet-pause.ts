// FEATURE(`greet_pause'): how long the server waits before its greeting.
// The GreetPause: access map entries are looked up by host name (and its
// parent domains), then by address (and its prefixes), tag only; the feature
// argument is the default. A client that talks before the pause ends gets
// `554 <host> ESMTP not accepting messages` (see src/server/connect.ts).

import type { AccessMap } from './access';
import { lookupHostThenAddress } from './lookup';

/** sendmail caps the pause at 5 minutes, the greeting timeout of RFC 2821. */
export const MAX_GREET_PAUSE_MS = 300_000;

function toPause(value: string | undefined): number {
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return 0;
  return Math.min(Number(value.trim()), MAX_GREET_PAUSE_MS);
}

/**
 * Returns the pause in milliseconds for a client; 0 means no pause. `host` is
 * the client's PTR name, or "" when it has none.
 */
export function greetPauseMs(
  access: AccessMap | undefined,
  featureArgs: readonly string[],
  host: string,
  address: string,
): number {
  const fallback = featureArgs[0]?.trim();
  if (!access) return toPause(fallback);

  const name = host.startsWith('[') ? '' : host;
  const hit = lookupHostThenAddress(access, 'GreetPause', name, address, false);
  return toPause(hit ? hit.value : fallback);
}
