// Signal handling of the daemon beyond its listeners. On SIGTERM, sessions
// that are receiving a message may finish it within a grace period, and the
// rest are aborted cleanly before exit. On SIGHUP the configuration and the
// maps are read again while queued mail and open sessions carry on.

import type { Session } from '../server/session';

/** How long SIGTERM waits for messages that are being received. */
export const SHUTDOWN_GRACE_MS = 10_000;
/** How long SIGTERM waits for clients to close after the 421. */
const CLOSE_WAIT_MS = 5_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The open SMTP sessions of a daemon. */
export class SessionTracker {
  private readonly sessions = new Set<Session>();

  add(session: Session): void {
    this.sessions.add(session);
    session.listeners.end.push(() => this.sessions.delete(session));
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Sessions receiving a message or still processing input, e.g. committing a message to the queue. */
  inData(): Session[] {
    return [...this.sessions].filter((s) => s.busy);
  }

  /**
   * Waits until no session is in the DATA phase, or `graceMs` passed; returns
   * the sessions still in it.
   */
  async waitForTransactions(graceMs = SHUTDOWN_GRACE_MS): Promise<Session[]> {
    const deadline = Date.now() + graceMs;
    while (this.inData().length > 0 && Date.now() < deadline) await sleep(20);
    return this.inData();
  }

  /** Waits until every session has ended, up to `ms`. */
  async waitClosed(ms = CLOSE_WAIT_MS): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.sessions.size > 0 && Date.now() < deadline) await sleep(20);
  }
}

/**
 * Runs `reload` on every SIGHUP, one at a time; a SIGHUP that arrives during a
 * reload starts one more afterwards. Returns a function that removes the handler.
 */
export function onSighup(reload: () => Promise<void>): () => void {
  let running: Promise<void> | undefined;
  let again = false;
  const handler = (): void => {
    if (running) {
      again = true;
      return;
    }
    const loop = async (): Promise<void> => {
      do {
        again = false;
        await reload();
      } while (again);
      running = undefined;
    };
    running = loop();
  };
  process.on('SIGHUP', handler);
  return () => process.removeListener('SIGHUP', handler);
}
