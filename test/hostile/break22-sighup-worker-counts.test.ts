// Workers=2: limits switched on by SIGHUP while sessions are open. The
// primary's counts miss the sessions that the workers accepted before the
// reload, so the new limits let more sessions in than they allow.
// - MaxDaemonChildren from 0 to 2: a worker requests a count from the primary
//   only while MaxDaemonChildren is above 0 (acceptCounted). The two
//   sessions opened before the reload count as none, and a third session gets
//   its greeting. One daemon process counts its open sockets and rejects it.
// - FEATURE(`conncontrol') added: without conncontrol or ratecontrol a worker
//   counts connections in a store of its own. The reload switches it to the
//   primary's store, which never saw the open session. With Workers=1 the
//   same store goes on, and the second session gets 452.
// Per docs/queue-operations.md, after a SIGHUP new sessions use the new
// MaxDaemonChildren and connect-time features, and the connection counts go on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { holdGreeted, reloadEdited } from '../helpers/reload';
import { makemap } from '../e2e/policy-support';

test('Workers=2: MaxDaemonChildren raised from 0', async (t) => {
  const ph = await startPosthorn({
    mc: baseMc({ extra: ["define(`confMAX_DAEMON_CHILDREN', `0')"] }),
    args: ['-O', 'Workers=2', '-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => ph.stop());
  await ph.waitForLog(/started 2 workers/);
  const open = [await holdGreeted(ph.port, '127.0.0.1'), await holdGreeted(ph.port, '127.0.0.1')];
  t.after(() => open.forEach((socket) => socket.destroy()));

  await reloadEdited(ph, (mc) => mc.replace("confMAX_DAEMON_CHILDREN', `0'", "confMAX_DAEMON_CHILDREN', `2'"), 3);
  const third = await rawSmtp(ph.port, ['QUIT'], { timeoutMs: 10_000 });
  assert.deepEqual(third, [], 'two sessions are open, so the third is closed without a greeting');
});

test('Workers=2: conncontrol added by SIGHUP', async (t) => {
  const ph = await startPosthorn({
    mc: baseMc({ extra: ["FEATURE(`access_db', `hash -o @DIR@/access')"] }),
    args: ['-O', 'Workers=2', '-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => ph.stop());
  assert.equal(makemap(path.join(ph.dir, 'access'), 'ClientConn:127.0.0.10\t1\n').status, 0);
  await ph.waitForLog(/started 2 workers/);
  const open = await holdGreeted(ph.port, '127.0.0.10');
  t.after(() => open.destroy());

  await reloadEdited(ph, (mc) => mc.replace(/^(FEATURE\(`access_db'.*\n)/m, "$1FEATURE(`conncontrol')\n"), 3);
  const second = await rawSmtp(ph.port, ['MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.10' });
  assert.match(second[0], /^220 /);
  assert.equal(second[1], '452 4.3.2 Too many open connections.', 'ClientConn:127.0.0.10 1 with one session open');
});
