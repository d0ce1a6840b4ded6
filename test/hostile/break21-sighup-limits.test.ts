// Workers=2: limits changed in the configuration file and applied with
// SIGHUP. docs/queue-operations.md states that after a SIGHUP new sessions use
// the new settings, and sendmail, which runs itself again on SIGHUP, reads
// them all. Posthorn builds the MaxDaemonChildren and RefuseLA check (the
// primary's ConnectionRefusal, and each worker's choice whether to ask the
// primary) and the check_relay policy (conncontrol, ratecontrol, greet_pause,
// delay_checks) once, when the daemon starts, so a reload keeps the old ones.
// The same happens with Workers=1.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { holdGreeted, reloadEdited } from '../helpers/reload';
import { makemap } from '../e2e/policy-support';

for (const start of [4, 0]) {
  test(`Workers=2: MaxDaemonChildren lowered from ${start} to 1 by SIGHUP`, async (t) => {
    const ph = await startPosthorn({
      mc: baseMc({ extra: [`define(\`confMAX_DAEMON_CHILDREN', \`${start}')`] }),
      args: ['-O', 'Workers=2', '-O', 'DeliveryMode=queueonly'],
    });
    t.after(() => ph.stop());
    await ph.waitForLog(/started 2 workers/);
    await reloadEdited(ph, (mc) => mc.replace(`confMAX_DAEMON_CHILDREN', \`${start}'`, "confMAX_DAEMON_CHILDREN', `1'"), 3);

    const heldSession = await holdGreeted(ph.port, '127.0.0.1');
    t.after(() => heldSession.destroy());
    const second = await rawSmtp(ph.port, ['QUIT'], { timeoutMs: 10_000 });
    assert.deepEqual(second, [], 'the connection past MaxDaemonChildren=1 is closed without a greeting');
    await ph.waitForLog(/rejecting connections on daemon MTA: 1 children, max 1/);
  });
}

test('Workers=2: FEATURE(`conncontrol\') added by SIGHUP', async (t) => {
  const ph = await startPosthorn({
    mc: baseMc({ extra: ["FEATURE(`access_db', `hash -o @DIR@/access')"] }),
    args: ['-O', 'Workers=2', '-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => ph.stop());
  assert.equal(makemap(path.join(ph.dir, 'access'), 'ClientConn:127.0.0.10\t1\n').status, 0);
  await ph.waitForLog(/started 2 workers/);
  await reloadEdited(ph, (mc) => mc.replace(/^(FEATURE\(`access_db'.*\n)/m, "$1FEATURE(`conncontrol')\n"), 3);

  const heldSession = await holdGreeted(ph.port, '127.0.0.10');
  t.after(() => heldSession.destroy());
  // The kernel picks the worker of each connection. With an even split, all
  // six tries land in the worker of the held session once in 64 runs, so a
  // count kept per worker is almost always caught as well.
  for (let i = 0; i < 6; i++) {
    const replies = await rawSmtp(ph.port, ['MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.10' });
    assert.match(replies[0] ?? '', /^220 /);
    assert.equal(replies[1], '452 4.3.2 Too many open connections.', `try ${i + 1}`);
  }
});
