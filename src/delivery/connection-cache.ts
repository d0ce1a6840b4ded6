// sendmail's connection cache (ConnectionCacheSize, ConnectionCacheTimeout):
// after a transaction the outbound SMTP session stays open instead of ending
// with QUIT, so that the next delivery to the same address and port goes over
// it after an RSET. At most ConnectionCacheSize sessions are kept idle; one
// idle for ConnectionCacheTimeout is ended with QUIT. A session that failed,
// timed out or got anything but 250 to RSET is closed, never reused.
// NOTE: the runner does not group queued messages by host; concurrent deliveries each use their own session.

/** The outbound session methods that the cache calls. */
export interface CachedSession {
  /** The connection is still open and nothing arrived while it was idle. */
  usable(): boolean;
  /** Ends the session politely (QUIT) and closes the connection; `verbose` gets the -v lines. */
  quit(verbose?: (line: string) => void): Promise<void>;
  /** Keeps (false) or stops (true) an idle connection from holding the process open. */
  setIdle(idle: boolean): void;
  /** Called once when the connection closes. */
  onClose(listener: () => void): void;
}

interface Entry {
  key: string;
  session: CachedSession;
  timer: NodeJS.Timeout;
}

export interface ConnectionCacheStats {
  /** Sessions taken from the cache for another transaction. */
  reused: number;
  /** Sessions put into the cache after a transaction. */
  cached: number;
}

export class ConnectionCache {
  private readonly idle: Entry[] = [];
  readonly stats: ConnectionCacheStats = { reused: 0, cached: 0 };

  constructor(
    /** ConnectionCacheSize: idle sessions kept at most; 0 turns the cache off. */
    public size: number,
    /** ConnectionCacheTimeout in milliseconds. */
    public timeoutMs: number,
  ) {}

  /** Takes an idle session to `key` out of the cache, or undefined. */
  take(key: string): CachedSession | undefined {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const entry = this.idle[i];
      if (entry.key !== key) continue;
      this.remove(entry);
      if (!entry.session.usable()) {
        void entry.session.quit();
        continue;
      }
      entry.session.setIdle(false);
      this.stats.reused += 1;
      return entry.session;
    }
    return undefined;
  }

  /** Offers a session whose transaction is over; false if the caller must end it. */
  put(key: string, session: CachedSession): boolean {
    if (this.size <= 0 || this.timeoutMs <= 0 || !session.usable()) return false;
    // A full cache drops its oldest idle session, as sendmail's mci_cache() does.
    while (this.idle.length >= this.size) {
      const oldest = this.idle[0];
      this.remove(oldest);
      void oldest.session.quit();
    }
    const entry: Entry = {
      key,
      session,
      timer: setTimeout(() => {
        this.remove(entry);
        void session.quit();
      }, this.timeoutMs),
    };
    entry.timer.unref();
    session.setIdle(true);
    session.onClose(() => this.remove(entry));
    this.idle.push(entry);
    this.stats.cached += 1;
    return true;
  }

  /**
   * Ends every idle session with QUIT, e.g. at the end of a queue run. With
   * `verbose` (-v) they end one after another, so that each one's lines stay together.
   */
  async flush(verbose?: (line: string) => void): Promise<void> {
    const entries = this.idle.splice(0);
    for (const entry of entries) clearTimeout(entry.timer);
    if (verbose === undefined) {
      await Promise.all(entries.map((e) => e.session.quit()));
      return;
    }
    for (const entry of entries) await entry.session.quit(verbose);
  }

  get idleCount(): number {
    return this.idle.length;
  }

  private remove(entry: Entry): void {
    const i = this.idle.indexOf(entry);
    if (i < 0) return;
    this.idle.splice(i, 1);
    clearTimeout(entry.timer);
  }
}

/** The process's cache; configureConnectionCache() sets its size from the configuration. */
export const connectionCache = new ConnectionCache(0, 0);

/** Applies ConnectionCacheSize and ConnectionCacheTimeout. */
export function configureConnectionCache(options: ReadonlyMap<string, unknown>): void {
  const size = options.get('ConnectionCacheSize');
  const timeout = options.get('ConnectionCacheTimeout');
  connectionCache.size = typeof size === 'number' ? size : 1;
  connectionCache.timeoutMs = typeof timeout === 'number' ? timeout : 5 * 60_000;
}
