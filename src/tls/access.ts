// One access map per configuration for the STARTTLS rulesets, shared by the
// server handshake, the MAIL-time tls_client check and the delivery client.

import type { Config } from '../config/types';
import { accessMapFromConfig, type AccessMap } from '../policy/access';

const maps = new WeakMap<Config, AccessMap | null>();

/** Returns the FEATURE(`access_db') map of `config`, re-read when its file changed; undefined without one. */
export function tlsAccessMap(config: Config, onError: (message: string) => void): AccessMap | undefined {
  let map = maps.get(config);
  if (map === undefined) {
    map = accessMapFromConfig(config, onError) ?? null;
    maps.set(config, map);
  }
  map?.refresh();
  return map ?? undefined;
}
