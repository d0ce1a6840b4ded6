// -bt, address test mode: classes, macros, /parse and /map, compared with
// sendmail 8.17 on the same input where the two can agree.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { startSendmail } from '../helpers/sendmail';

const INPUT = ['/parse bob@example.com', '/parse alice', '$j', '$x', '/map nosuch key', ''].join('\n');

/** Returns the lines of -bt output without sendmail's ruleset trace ("canonify input: ..."). */
function resultLines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => !/ (input|returns): /.test(l));
}

test('-bt parses like sendmail', { timeout: 60_000 }, async (t) => {
  const extra = ["define(`SMART_HOST', `[127.0.0.1]')", "define(`RELAY_MAILER_ARGS', `TCP $h 2599')"];
  const ph = await startPosthorn({ mc: baseMc({ extra }), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());
  const run = await ph.run(['-bt'], INPUT);
  assert.equal(run.code, 0, run.stderr);
  const ours = resultLines(run.stdout);
  assert.deepEqual(ours.slice(0, 2), ['ADDRESS TEST MODE (ruleset 3 NOT automatically invoked)', 'Enter <ruleset> <address>']);
  assert.ok(ours.includes('mailer relay, host [127.0.0.1], user bob@example.com'), run.stdout);
  assert.ok(ours.includes('mailer local, user alice'), run.stdout);
  assert.ok(ours.includes('> mx.posthorn.test'), run.stdout);
  assert.ok(ours.includes('> Undefined'), run.stdout);
  assert.ok(ours.includes('> Map named "nosuch" not found'), run.stdout);

  const bin = requirePeer(t, 'sendmail');
  if (bin === undefined) return;
  const sendmail = await startSendmail({ bin, smartHost: { addr: '127.0.0.1', port: 2599 } });
  t.after(() => sendmail.stop());
  const theirs = await sendmail.run(['-bt'], INPUT);
  assert.equal(theirs.code, 0, theirs.stderr);
  // Only the host name differs.
  assert.deepEqual(ours, resultLines(theirs.stdout).map((l) => l.replace('mx.sendmail.test', 'mx.posthorn.test')));
});

test('-bt lists class w and looks up maps', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc({ extra: ["FEATURE(`mailertable', `text -o @DIR@/mailertable')"] }), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());
  fs.writeFileSync(path.join(ph.dir, 'mailertable'), 'example.net smtp:[192.0.2.1]\n');
  const run = await ph.run(['-bt'], '$=w\n/map mailertable example.net\n/map mailertable example.org\n3,0 bob\n');
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout.split('\n');
  assert.ok(lines.includes('mx.posthorn.test'), run.stdout);
  assert.ok(lines.includes('localhost'), run.stdout);
  assert.ok(lines.includes('> map_lookup: mailertable (example.net) returns smtp:[192.0.2.1] (0)'), run.stdout);
  assert.ok(lines.includes('> map_lookup: mailertable (example.org) no match (0)'), run.stdout);
  assert.match(run.stdout, /> Posthorn has no rewriting rules: "3,0 bob" is not supported/);
});
