// The daemon runs libuv's thread pool at nice 19 so that the threads it wakes
// for fsyncs and unlinks do not take the CPU from its event loop
// (src/daemon/pool-priority.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { poolNice } from '../../src/daemon/pool-priority';

/** Returns the nice value of each thread of a process, from /proc/PID/task/TID/stat. */
function threadNiceValues(pid: number): number[] {
  return fs.readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after the command name in parentheses; nice is field 19 of the whole line.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[16]);
  });
}

test('daemon pool threads run at nice 19', { timeout: 30_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc() });
  t.after(() => ph.stop());

  const values = threadNiceValues(ph.proc.pid!);
  assert.equal(values[0], 0, 'the main thread keeps its priority');
  assert.equal(values.filter((v) => v === 19).length, 4, `nice values of the threads: ${values.join(' ')}`);
});

test('POSTHORN_POOL_NICE=0 keeps the pool priority', { timeout: 30_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), env: { POSTHORN_POOL_NICE: '0' } });
  t.after(() => ph.stop());

  const values = threadNiceValues(ph.proc.pid!);
  assert.deepEqual(values.filter((v) => v !== 0), []);
});

test('pool nice value from the environment', () => {
  assert.equal(poolNice({}), 19);
  assert.equal(poolNice({ POSTHORN_POOL_NICE: '10' }), 10);
  assert.equal(poolNice({ POSTHORN_POOL_NICE: '0' }), undefined);
  assert.equal(poolNice({ POSTHORN_POOL_NICE: 'x' }), 19);
  assert.equal(poolNice({ POSTHORN_POOL_NICE: '40' }), 19);
});
