// The From: that a submission adds carries the full name of the sender's
// account from the password file, as sendmail's $x: "From: root <root@host>".

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { startSendmail } from '../helpers/sendmail';
import { startSink } from '../helpers/sink';

const MESSAGE = 'To: bob@remote.example\nSubject: full name\n\nHi.\n';

/** Returns the From: line of the one message the sink holds, with the host name made neutral. */
function fromLine(data: Buffer): string | undefined {
  return /^From: .*$/m.exec(data.toString('latin1').split('\r\n\r\n')[0])?.[0].replace(/mx\.(posthorn|sendmail)\.test/, 'HOST');
}

test('added From: has the account name', { timeout: 60_000 }, async (t) => {
  const sink = await startSink();
  t.after(() => sink.close());
  const extra = ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sink.port}')`];
  const ph = await startPosthorn({ mc: baseMc({ extra }), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());

  const cases: Array<[string[], string]> = [
    [['-f', 'daemon'], 'From: daemon <daemon@HOST>'],
    [['-f', 'joe@other.example'], 'From: joe@other.example'],
    [['-f', 'daemon', '-F', 'Night Jobs'], 'From: Night Jobs <daemon@HOST>'],
  ];
  const ours: string[] = [];
  for (const [flags, expected] of cases) {
    sink.messages.length = 0;
    const run = await ph.run(['-odi', '-t', ...flags], MESSAGE);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(fromLine(sink.messages[0].data), expected, flags.join(' '));
    ours.push(expected);
  }

  const bin = requirePeer(t, 'sendmail');
  if (bin === undefined) return;
  const sendmail = await startSendmail({ bin, smartHost: { addr: '127.0.0.1', port: sink.port } });
  t.after(() => sendmail.stop());
  for (const [i, [flags]] of cases.entries()) {
    sink.messages.length = 0;
    const run = await sendmail.run(['-odi', '-t', ...flags], MESSAGE);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(fromLine(sink.messages[0].data), ours[i], `sendmail ${flags.join(' ')}`);
  }
});
