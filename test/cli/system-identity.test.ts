// sendmail -d0.1 prints the host's names after reading the configuration;
// administrators run `sendmail -d0.1 -bv root` to check them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { startSendmail } from '../helpers/sendmail';

/** Returns the SYSTEM IDENTITY block's lines with the values of the host left out. */
function identityLabels(stdout: string): string[] {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => l.startsWith('============ SYSTEM IDENTITY'));
  return lines.slice(start, start + 6).map((l) => l.replace(/ = .*$/, ' ='));
}

test('-d0.1 prints the system identity', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());
  const run = await ph.run(['-d0.1', '-bv', 'root']);
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout.split('\n');
  assert.match(lines[0], /^Version Posthorn /);
  assert.match(lines[1], /^ Compiled with: .*STARTTLS/);
  assert.ok(lines.includes('  (canonical domain name) $j = mx.posthorn.test'), run.stdout);
  assert.ok(lines.includes('      (short domain name) $w = mx'), run.stdout);
  assert.ok(lines.includes('         (subdomain name) $m = posthorn.test'), run.stdout);
  assert.equal(lines.at(-2), 'root... deliverable: mailer local, user root');

  const bin = requirePeer(t, 'sendmail');
  if (bin === undefined) return;
  const sendmail = await startSendmail({ bin });
  t.after(() => sendmail.stop());
  const theirs = await sendmail.run(['-d0.1', '-bv', 'root']);
  assert.equal(theirs.code, 0, theirs.stderr);
  assert.deepEqual(identityLabels(run.stdout), identityLabels(theirs.stdout));
});
