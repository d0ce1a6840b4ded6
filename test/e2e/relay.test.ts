// The relay decision: localhost may relay, another client may only send to the
// local domain, and gets "Relaying denied" for a remote one.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { rawSmtp } from '../helpers/clients';
import type { Posthorn } from '../helpers/posthorn';
import { makeMessage, startPosthornWithDns } from '../helpers/e2e-setup';

async function startRelayWorld(t: TestContext): Promise<Posthorn> {
  // queueonly keeps relayed test mail in the queue, because only the replies matter here.
  const { ph } = await startPosthornWithDns(t, { args: ['-O', 'DeliveryMode=queueonly'] });
  return ph;
}

/**
 * Sends MAIL FROM:<carol@client.example> and RCPT TO:<x@remote.example> over a
 * connection from `localAddress` and returns every reply.
 */
function tryRelay(port: number, localAddress: string): Promise<string[]> {
  const script = ['EHLO client.example', 'MAIL FROM:<carol@client.example>', 'RCPT TO:<x@remote.example>', 'QUIT'];
  return rawSmtp(port, script, { localAddress });
}

test('relaying denied from 127.0.0.9', async (t) => {
  const ph = await startRelayWorld(t);
  const replies = await tryRelay(ph.port, '127.0.0.9');
  assert.match(replies[0], /^220 /);
  assert.match(replies[2], /^250 2\.1\.0 /);
  assert.match(replies[3], /^550 5\.7\.1 <x@remote\.example>\.\.\. Relaying denied/);
  assert.match(replies[4], /^221 /);
});

test('relaying allowed from 127.0.0.1', async (t) => {
  const ph = await startRelayWorld(t);
  const replies = await tryRelay(ph.port, '127.0.0.1');
  assert.match(replies[3], /^250 2\.1\.5 /);
});

test('local domain accepted from 127.0.0.9', async (t) => {
  const ph = await startRelayWorld(t);
  const data = makeMessage({
    from: 'carol@client.example',
    to: 'alice@posthorn.test',
    subject: 'from outside',
    body: 'Local delivery for an outside client.',
  });
  const replies = await rawSmtp(
    ph.port,
    [
      'EHLO client.example',
      'MAIL FROM:<carol@client.example>',
      'RCPT TO:<alice@posthorn.test>',
      'DATA',
      data + '.\r\n',
      'QUIT',
    ],
    { localAddress: '127.0.0.9' },
  );
  assert.match(replies[3], /^250 2\.1\.5 /);
  assert.match(replies[4], /^354 /);
  assert.match(replies[5], /^250 2\.0\.0 \S+ Message accepted for delivery$/);

  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  const mbox = await ph.waitForMailbox('alice', 'Local delivery for an outside client.');
  assert.match(mbox, /^From carol@client\.example /m);
  assert.ok(mbox.includes('Local delivery for an outside client.'));
  assert.match(mbox, /^Received: from client\.example \(.*\[127\.0\.0\.9\]\)/m);
});
