// The one-minute load average for QueueLA, RefuseLA, DelayLA and the queue
// sort: os.loadavg() reads /proc/loadavg (open, read, close), and a busy daemon
// needs the figure several times per message. The kernel recomputes the figure only every
// 5 seconds, so one reading a second loses nothing.

import * as os from 'node:os';

const REFRESH_MS = 1000;

let value = 0;
let readAt = -Infinity;

/** Returns the one-minute load average, read at most once a second. */
export function loadAverage(): number {
  const now = performance.now();
  if (now - readAt >= REFRESH_MS) {
    value = os.loadavg()[0];
    readAt = now;
  }
  return value;
}
