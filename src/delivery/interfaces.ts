// The host's own address literals. sendmail adds the address of each network
// interface to class w at start ("[127.0.0.1]", "[IPv6:::1]"), so that mail
// to user@[one of its addresses] is local, unless DontProbeInterfaces is True
// (or Loopback, which leaves out the loopback interfaces).

import * as os from 'node:os';
import type { Config } from '../config/types';

let probed: { all: Set<string>; external: Set<string> } | undefined;

/** Returns the interface addresses, read once per process as sendmail reads them at start. */
function interfaceAddresses(): { all: Set<string>; external: Set<string> } {
  if (probed !== undefined) return probed;
  const all = new Set<string>();
  const external = new Set<string>();
  for (const entries of Object.values(os.networkInterfaces())) {
    for (const entry of entries ?? []) {
      const address = entry.address.toLowerCase().replace(/%.*$/, '');
      all.add(address);
      if (!entry.internal) external.add(address);
    }
  }
  probed = { all, external };
  return probed;
}

/** Tests whether `domain` is an address literal of this host: "[127.0.0.1]" or "[IPv6:::1]". */
export function isOwnAddressLiteral(domain: string, config: Config): boolean {
  if (!domain.startsWith('[') || !domain.endsWith(']')) return false;
  const mode = String(config.options.get('DontProbeInterfaces') ?? 'False').toLowerCase();
  if (mode === 'true' || mode === 'yes' || mode === 't' || mode === 'y') return false;
  const inner = domain.slice(1, -1).replace(/^ipv6:/i, '').toLowerCase();
  const { all, external } = interfaceAddresses();
  return (mode === 'loopback' ? external : all).has(inner);
}
