// A warning before the daemon runs out of file descriptors. When accept()
// fails with EMFILE, libuv closes the pending connections itself and Node
// reports nothing, so clients see a dropped connection without a greeting
// and the log stays silent. So the daemon compares its open sessions with
// the soft limit of open files and logs a warning, at most once a minute,
// when fewer than DESCRIPTOR_HEADROOM descriptors are left beyond them.

import * as fs from 'node:fs';

/** Descriptors kept for queue files, log, listeners and outbound connections. */
export const DESCRIPTOR_HEADROOM = 64;
const WARN_INTERVAL_MS = 60_000;

/** Returns the soft limit of open files of this process, or undefined when /proc does not tell. */
export function openFileLimit(limitsFile = '/proc/self/limits'): number | undefined {
  try {
    const line = fs.readFileSync(limitsFile, 'latin1').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : undefined;
  } catch {
    return undefined;
  }
}

export class DescriptorWatch {
  private lastWarning = -Infinity;

  constructor(
    private readonly limit: number | undefined,
    private readonly warn: (message: string) => void,
  ) {}

  /** Checks the number of open sessions after one more was accepted. */
  accepted(sessions: number, now = Date.now()): void {
    if (this.limit === undefined || sessions + DESCRIPTOR_HEADROOM < this.limit) return;
    if (now - this.lastWarning < WARN_INTERVAL_MS) return;
    this.lastWarning = now;
    this.warn(
      `${sessions} SMTP sessions open, near the limit of ${this.limit} open files (ulimit -n): ` +
        'further connections may be closed without a greeting; raise the limit or set MaxDaemonChildren',
    );
  }
}
