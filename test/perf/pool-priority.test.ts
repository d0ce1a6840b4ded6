// PoolThreadNice runs libuv's thread pool at a higher nice value so that the
// threads the daemon wakes for fsyncs and unlinks do not take the CPU from
// its event loop (src/daemon/pool-priority.ts). It is off by default.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { baseMc, startPosthorn } from '../helpers/posthorn';

/** Returns the nice value of each thread of a process, from /proc/PID/task/TID/stat. */
function threadNiceValues(pid: number): number[] {
  return fs.readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after the command name in parentheses; nice is field 19 of the whole line.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[16]);
  });
}

test('PoolThreadNice=19 lowers the pool threads only', { timeout: 30_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc({ extra: ["define(`confPOOL_THREAD_NICE', `19')"] }) });
  t.after(() => ph.stop());

  const values = threadNiceValues(ph.proc.pid!);
  assert.equal(values[0], 0, 'the main thread keeps its priority');
  assert.equal(values.filter((v) => v === 19).length, 4, `nice values of the threads: ${values.join(' ')}`);
});

test('pool threads keep the daemon priority by default', { timeout: 30_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc() });
  t.after(() => ph.stop());

  assert.deepEqual(threadNiceValues(ph.proc.pid!).filter((v) => v !== 0), []);
});

test('PoolThreadNice out of range is a configuration error', { timeout: 30_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc() });
  t.after(() => ph.stop());

  const run = await ph.run(['-O', 'PoolThreadNice=20', '-bP']);
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /PoolThreadNice/);
});
