// SIGHUP and DAEMON_OPTIONS: sendmail re-executes itself on SIGHUP and so
// opens the listeners its new configuration names. Posthorn stays the same
// process, so it compares the listening sockets with the new DAEMON_OPTIONS
// entries: a socket whose entry is gone (or changed) is closed, an entry with
// no socket gets one, and a socket whose entry is unchanged is kept, so that
// no client sees its port closed even for a moment. Sessions that a closed
// listener accepted before the reload go on to their end.

import type * as net from 'node:net';
import type { DaemonSpec } from '../config/types';
import type { Logger } from '../log/logger';

export interface ListenerSet {
  /** The open listeners, which reopenListeners changes in place. */
  servers: net.Server[];
  specOf(server: net.Server): DaemonSpec | undefined;
  listen(spec: DaemonSpec): Promise<net.Server>;
}

/** Returns the identity key of an entry. Two entries are the same listener when every field is equal. */
export function daemonSpecKey(spec: DaemonSpec): string {
  return JSON.stringify([
    spec.name,
    spec.addr,
    spec.port,
    spec.family,
    spec.modifiers,
    spec.listen,
    spec.inputMailFilters ?? null,
  ]);
}

/** Maximum attempts, and the pause between them, to open a port that a just-closed listener may still occupy. */
const REBIND_ATTEMPTS = 20;
const REBIND_PAUSE_MS = 50;

/**
 * Closes the listeners whose entry is not in `requested` and opens the entries
 * that have none. A listener that cannot be opened is logged and left out,
 * and the others still open.
 */
export async function reopenListeners(set: ListenerSet, requested: DaemonSpec[], logger: Logger): Promise<void> {
  const requestedKeys = new Set(requested.map(daemonSpecKey));
  // Keys of the entries that have an open listener, whether kept or newly opened.
  const openKeys = new Set<string>();
  for (const server of [...set.servers]) {
    const spec = set.specOf(server);
    const key = spec ? daemonSpecKey(spec) : '';
    if (spec && requestedKeys.has(key) && !openKeys.has(key)) {
      openKeys.add(key);
      continue;
    }
    set.servers.splice(set.servers.indexOf(server), 1);
    // close() stops accepting at once. No callback is passed because it would
    // wait for the sessions this listener accepted, which end by themselves.
    server.close();
    if (spec) logger.info(`daemon ${spec.name}: stopped listening on ${spec.addr} port ${spec.port}`, 9);
  }

  for (const spec of requested) {
    const key = daemonSpecKey(spec);
    if (openKeys.has(key)) continue;
    openKeys.add(key);
    try {
      set.servers.push(await listenRetrying(set, spec));
    } catch (err) {
      logger.error((err as Error).message);
    }
  }
}

/** Opens `spec`, retrying while a just-closed listener still occupies its port (EADDRINUSE). */
async function listenRetrying(set: ListenerSet, spec: DaemonSpec): Promise<net.Server> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await set.listen(spec);
    } catch (err) {
      if (attempt >= REBIND_ATTEMPTS || !/EADDRINUSE/.test((err as Error).message)) throw err;
      await new Promise((resolve) => setTimeout(resolve, REBIND_PAUSE_MS));
    }
  }
}
