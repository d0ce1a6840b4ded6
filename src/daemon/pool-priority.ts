// The daemon's event loop is the one thread every session waits on. On a busy
// machine, each fsync, create or unlink handed to libuv's thread pool wakes a
// pool thread that can take the CPU from the event loop while it still has
// replies to send. The pool threads run at the lowest priority (nice 19), so
// the event loop finishes its turn first; they still get every CPU cycle the
// event loop and other programs leave, and their disk waits do not change
// (docs/benchmarks.md, "Eighth round").
//
// Linux only: setpriority() there takes a thread id. libuv starts all of its
// pool threads at the first request, so the threads that appear across that
// request are the pool.

import * as fs from 'node:fs';
import * as os from 'node:os';

const TASKS = '/proc/self/task';

/**
 * The pool threads' nice value: 19 unless POSTHORN_POOL_NICE gives another
 * one (0 keeps the process's own priority, for comparisons).
 */
export function poolNice(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const text = env.POSTHORN_POOL_NICE;
  if (text === undefined || text === '') return 19;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 19) return 19;
  return value === 0 ? undefined : value;
}

/**
 * Starts libuv's thread pool and gives its threads the nice value `nice`.
 * Resolves with the number of threads changed: 0 when the pool was already
 * running (its threads cannot be told apart) or /proc is not there.
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
