// hoststat (-bh) and purgestat (-bH): Posthorn keeps no host status, so they
// print nothing and succeed, as sendmail does without HostStatusDirectory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { startSendmail } from '../helpers/sendmail';

test('-bh and -bH print nothing', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());
  const bin = requirePeer(t, 'sendmail');
  const sendmail = bin === undefined ? undefined : await startSendmail({ bin });
  t.after(() => sendmail?.stop());
  for (const mode of ['-bh', '-bH']) {
    const ours = await ph.run([mode]);
    assert.deepEqual([ours.code, ours.stdout, ours.stderr], [0, '', ''], mode);
    if (sendmail === undefined) continue;
    const theirs = await sendmail.run([mode]);
    assert.deepEqual([theirs.code, theirs.stdout.trim()], [0, ''], mode);
  }

  const configured = await ph.run(['-O', 'HostStatusDirectory=.hoststat', '-bh']);
  assert.equal(configured.code, 0);
  assert.match(configured.stderr, /no host status is kept/);
});
