// Workers=2: a SIGHUP that reaches the primary while it restarts a dead
// worker. The primary passes the SIGHUP on to every worker, the new one
// included. That worker has not yet installed its SIGHUP handler, so Node's
// default action ends it ("exited with signal SIGHUP before listening"), and
// the primary does not fork it again. The daemon then runs with one worker
// until it is restarted. When every worker was being restarted, the daemon
// stops ("no workers left", exit 69). docs/workers.md states that a SIGHUP
// during start-up is applied once every worker listens.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { waitFor } from '../helpers/process';

/** Returns the pids of the direct children of `pid`, from /proc. */
function childPids(pid: number): number[] {
  try {
    const text = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return text === '' ? [] : text.split(/\s+/).map(Number);
  } catch {
    return [];
  }
}

test('Workers=2: SIGHUP while a killed worker restarts', async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'Workers=2'] });
  t.after(() => ph.stop());
  const [, a, b] = (await ph.waitForLog(/started 2 workers: (\d+) (\d+)/)).map(Number);
  const primary = ph.proc.pid!;

  process.kill(a, 'SIGKILL');
  // The SIGHUP goes as soon as the primary has forked the replacement, which
  // then still loads its modules.
  const replacement = await waitFor('the replacement worker', () => childPids(primary).find((pid) => pid !== a && pid !== b), 10_000, 1);
  process.kill(primary, 'SIGHUP');

  const outcome = await waitFor(
    'the replacement to listen or to die',
    () => {
      const logs = ph.logs();
      if (new RegExp(`posthorn\\[${replacement}\\]: starting daemon`).test(logs)) return 'listens';
      const died = /worker (\d+) exited with signal SIGHUP before listening/.exec(logs);
      return died ? `worker ${died[1]} died of the SIGHUP` : undefined;
    },
    15_000,
  );
  assert.equal(outcome, 'listens', ph.logs());
  await ph.waitForLog(new RegExp(`posthorn\\[${primary}\\]: restarting posthorn due to signal`));
});
