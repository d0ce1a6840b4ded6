// -M and -oM set a macro for one submitted message, as sendmail's do: $r (the
// protocol) and $s (the sender's host) go into the Received: header, the log
// line (proto=) and the control file, where sendmail 8.17 keeps them too.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { startSendmail } from '../helpers/sendmail';

const MESSAGE = 'Subject: macros\n\nbody\n';

function controlFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((name) => name.startsWith('qf'))
    .map((name) => fs.readFileSync(path.join(dir, name), 'latin1'));
}

test('-oMr and -oMs reach Received, the log and the qf', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());

  const run = await ph.run(['-odq', '-oMrUUCP', '-oMsuuhost.example', 'alice'], MESSAGE);
  assert.equal(run.code, 0, run.stderr);
  const [qf] = controlFiles(ph.queueDir);
  assert.match(qf, /^\$rUUCP$/m);
  assert.match(qf, /^\$suuhost\.example$/m);
  assert.match(qf, /^H\?\?Received: from uuhost\.example \(/m);
  assert.match(qf, /^\tby mx\.posthorn\.test \(Posthorn [^)]*\) with UUCP id /m);
  await ph.waitForLog(/from=<[^>]*>, size=\d+, .*proto=UUCP, relay=/);

  const sendmailBin = requirePeer(t, 'sendmail');
  if (sendmailBin === undefined) return;
  const sendmail = await startSendmail({ bin: sendmailBin });
  t.after(() => sendmail.stop());
  const theirs = await sendmail.run(['-odq', '-oMrUUCP', '-oMsuuhost.example', 'bob@remote.example'], MESSAGE);
  assert.equal(theirs.code, 0, theirs.stderr);
  const [theirQf] = controlFiles(sendmail.queueDir);
  assert.match(theirQf, /^\$rUUCP$/m);
  assert.match(theirQf, /^\$suuhost\.example$/m);
  assert.match(theirQf, /^H\?\?Received: from uuhost\.example \(/m);
  assert.match(theirQf, /\) with UUCP id /);
});

test('-M with a long macro name', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());

  const run = await ph.run(['-odq', '-MrLMTP', '-M{client_addr}192.0.2.1', 'alice'], MESSAGE);
  assert.equal(run.code, 0, run.stderr);
  const [qf] = controlFiles(ph.queueDir);
  assert.match(qf, /^\$rLMTP$/m);
  assert.doesNotMatch(qf, /client_addr/);
});

test('-M without a name fails', { timeout: 30_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());

  // sendmail 8.17 exits 70 (EX_SOFTWARE) for -M{bad name}x, -M{}x and -oM.
  const run = await ph.run(['-odq', '-M{bad name}x', 'alice'], MESSAGE);
  assert.equal(run.code, 70);
  assert.match(run.stderr, /invalid macro name/);
  assert.deepEqual(controlFiles(ph.queueDir), []);
});
