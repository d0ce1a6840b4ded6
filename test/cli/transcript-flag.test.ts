// -X outside the daemon: a queue run and a submission's delivery record the
// dialogue with the next hop in the transcript file, and a -bs session its
// own dialogue, as the daemon does.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { startSink } from '../helpers/sink';
import { waitFor } from '../helpers/process';

const MESSAGE = 'Subject: traced\n\nTraced body.\n';

test('-X records a queue run and a submission', { timeout: 60_000 }, async (t) => {
  const sink = await startSink();
  t.after(() => sink.close());
  const extra = ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sink.port}')`];
  const ph = await startPosthorn({ mc: baseMc({ extra }), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());
  const transcript = path.join(ph.dir, 'transcript');

  assert.equal((await ph.run(['-odq', 'bob@remote.example'], MESSAGE)).code, 0);
  const run = await ph.run(['-X', transcript, '-q', '-v']);
  assert.equal(run.code, 0, run.stderr);
  const text = fs.readFileSync(transcript, 'utf8');
  assert.match(text, /^\d{5} <<< 220 sink\.test ESMTP ready$/m);
  assert.match(text, /^\d{5} >>> MAIL FROM:<root@mx\.posthorn\.test> SIZE=\d+$/m);
  assert.match(text, /^\d{5} <<< 250 2\.0\.0 Message accepted for delivery$/m);

  // A submission delivered in the background writes to the same file.
  const before = text.length;
  assert.equal((await ph.run(['-X', transcript, '-odb', 'carol@remote.example'], MESSAGE)).code, 0);
  const added = await waitFor('the background delivery in the transcript', () => {
    const now = fs.readFileSync(transcript, 'utf8').slice(before);
    return /RCPT TO:<carol@remote\.example>/.test(now) && /<<< 250 2\.0\.0 Message accepted/.test(now) ? now : undefined;
  }, 20_000);
  assert.match(added, /^\d{5} >>> RCPT TO:<carol@remote\.example>$/m);
});

test('-X records a -bs session', { timeout: 30_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());
  const transcript = path.join(ph.dir, 'transcript-bs');
  const run = await ph.run(['-X', transcript, '-bs'], 'EHLO client.example\r\nNOOP\r\nQUIT\r\n');
  assert.equal(run.code, 0, run.stderr);
  const text = fs.readFileSync(transcript, 'utf8');
  assert.match(text, /^\d{5} === CONNECT /m);
  assert.match(text, /^\d{5} >>> 220 /m);
  assert.match(text, /^\d{5} <<< EHLO client\.example$/m);
  assert.match(text, /^\d{5} >>> 250 2\.0\.0 OK$/m);
  assert.match(text, /^\d{5} >>> 221 /m);
});
