// A queue that sendmail 8.17 left behind, delivered by Posthorn: an
// administrator who replaces sendmail may have mail still queued.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { startSendmail } from '../helpers/sendmail';
import { startSink } from '../helpers/sink';

// A body with a line that starts with a dot, a CRLF line end and no newline at the end.
const MESSAGE = 'Subject: left behind\nX-Folded: one\n two\n\nline1\n.dot\nline3 \r\nlast';

test('sendmail queue delivers after conversion', { timeout: 60_000 }, async (t) => {
  const bin = requirePeer(t, 'sendmail');
  if (bin === undefined) return;
  const sink = await startSink();
  t.after(() => sink.close());
  const sendmail = await startSendmail({ bin, smartHost: { addr: '127.0.0.1', port: sink.port } });
  t.after(() => sendmail.stop());
  const queued = await sendmail.run(['-odq', 'bob@remote.example', 'carol@remote.example'], MESSAGE);
  assert.equal(queued.code, 0, queued.stderr);

  const extra = ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sink.port}')`];
  const ph = await startPosthorn({ mc: baseMc({ extra }), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());
  const files = sendmail.queueFiles();
  assert.deepEqual(files.map((f) => f.slice(0, 2)).sort(), ['df', 'qf']);
  for (const f of files) fs.copyFileSync(path.join(sendmail.queueDir, f), path.join(ph.queueDir, f));

  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  await ph.waitForLog(/stat=Sent/);
  assert.equal(sink.messages.length, 1);
  const message = sink.messages[0];
  // sendmail adds its own host name to a sender without a domain when it sends.
  assert.equal(message.from, 'root@mx.posthorn.test');
  assert.deepEqual(message.to, ['bob@remote.example', 'carol@remote.example']);
  const text = message.data.toString('latin1');
  const [head, body] = text.split('\r\n\r\n');
  assert.equal(body, 'line1\r\n.dot\r\nline3 \r\nlast\r\n');
  assert.match(head, /^Subject: left behind$/m);
  assert.match(head, /^X-Folded: one\r\n two$/m);
  assert.match(head, /^Message-Id: <.*@mx\.sendmail\.test>$/m);
  // Return-Path: <$g> and Full-Name: are for mailers with the P and x flags only.
  assert.doesNotMatch(head, /^Return-Path:/m);
  assert.doesNotMatch(head, /^Full-Name:/m);
  assert.doesNotMatch(text, /[\x80-\xff]/);
  assert.deepEqual(ph.queueFiles().filter((f) => !f.startsWith('.')), []);
});
