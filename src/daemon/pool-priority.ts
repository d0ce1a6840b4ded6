// PoolThreadNice (Posthorn): the daemon's event loop is the one thread every
// session waits on. On a busy machine, each fsync, create or unlink handed to
// libuv's thread pool wakes a pool thread that can take the CPU from the event
// loop while it still has replies to send. Running the pool threads at a
// higher nice value lets the event loop finish its turn first. The price: with
// other programs using the CPU at a lower nice value, every file operation
// waits for them (docs/benchmarks.md, "Eighth round"), so it is off by default.
//
// Linux only: setpriority() there takes a thread id. libuv starts all of its
// pool threads at the first request, so the threads that appear across that
// request are the pool.

import * as fs from 'node:fs';
import * as os from 'node:os';
import type { Config } from '../config/types';

const TASKS = '/proc/self/task';

/** Returns the configured nice value of the pool threads, or undefined to leave them alone. */
export function poolNice(config: Config): number | undefined {
  const value = config.options.get('PoolThreadNice');
  return typeof value === 'number' && value > 0 ? Math.min(19, value) : undefined;
}

/**
 * Starts libuv's thread pool and gives its threads the nice value `nice`
 * (never below the process's own). Resolves with the number of threads
 * changed: 0 when the pool was already running (its threads cannot be
 * distinguished then) or /proc is not there.
 */
export async function lowerThreadPoolPriority(nice: number): Promise<number> {
  const before = listThreads();
  if (before === undefined) return 0;
  // The first request starts every pool thread.
  await new Promise<void>((resolve) => fs.stat('/', () => resolve()));
  const after = listThreads() ?? [];
  const value = Math.max(nice, os.getPriority(0));
  let changed = 0;
  for (const tid of after) {
    if (before.has(tid)) continue;
    try {
      os.setPriority(tid, value);
      changed++;
    } catch {
      // A thread that ended, or a system that rejects the call: the default priority stays.
    }
  }
  return changed;
}

function listThreads(): Set<number> | undefined {
  try {
    return new Set(fs.readdirSync(TASKS).map(Number));
  } catch {
    return undefined;
  }
}
