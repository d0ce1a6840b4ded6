// sendmail -v delivers in the foreground, so its exit status reports what
// became of the message. sendmail 8.17 exits 67 (EX_NOUSER) when the next
// hop rejects the only recipient with 550 5.1.1.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { startSendmail } from '../helpers/sendmail';
import { startHop } from './break10-hop';

const MESSAGE = 'Subject: verbose reject\n\nBody line.\n';

test('-v exit status on 550', { timeout: 90_000 }, async (t) => {
  const hop = await startHop({
    command: (verb, _line, s) => {
      if (verb !== 'RCPT') return false;
      s.recipients.pop();
      s.write('550 5.1.1 no such user\r\n');
      return true;
    },
  });
  t.after(() => hop.close());
  const extra = ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${hop.port}')`];
  const ph = await startPosthorn({ mc: baseMc({ extra }) });
  t.after(() => ph.stop());

  const sendmailBin = requirePeer(t, 'sendmail');
  if (sendmailBin !== undefined) {
    const sendmail = await startSendmail({ bin: sendmailBin, smartHost: { addr: '127.0.0.1', port: hop.port } });
    t.after(() => sendmail.stop());
    const theirs = await sendmail.run(['-v', 'bob@remote.test'], MESSAGE);
    t.diagnostic(`sendmail 8.17: exit ${theirs.code}`);
    assert.equal(theirs.code, 67, theirs.stdout);
  }

  const run = await ph.run(['-v', 'bob@remote.test'], MESSAGE);
  assert.match(run.stdout, /^bob@remote\.test\.\.\. User unknown$/m, run.stdout);
  assert.equal(run.code, 67, `posthorn -v exit status; stdout:\n${run.stdout}`);
});
