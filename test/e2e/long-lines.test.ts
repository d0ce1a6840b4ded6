// Long lines on the way out, compared byte for byte with sendmail 8.17: the
// same message goes through posthorn and through sendmail to a sink, once by
// SMART_HOST (relay mailer, L=2040) and once by the esmtp mailer (L=990), and
// the bodies the sinks receive must be equal.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { requirePeer } from '../helpers/peers';
import { startSendmail } from '../helpers/sendmail';
import { startSink, type Sink } from '../helpers/sink';
import { startPosthorn, baseMc } from '../helpers/posthorn';
import { sendRaw, startSinkHop } from '../helpers/e2e-setup';

const LOAD_OFF = ['-O', 'RefuseLA=0', '-O', 'QueueLA=0'];

/**
 * Body lines around both limits: exact, limit + 1, 2x and 5x, a leading dot,
 * 8-bit text. Not a dot at the start of a later 2047-byte piece: sendmail
 * doubles it mid-line, and posthorn does not (test/delivery/line-limit.test.ts).
 */
function bodyLines(): string[] {
  return [
    'short line',
    'a'.repeat(990),
    'b'.repeat(991),
    'c'.repeat(2040),
    'd'.repeat(2041),
    'e'.repeat(4080),
    'f'.repeat(10200),
    '.' + 'g'.repeat(2040),
    'j'.repeat(4094),
    'é'.repeat(1100),
    'end',
  ];
}

function headerLines(): string[] {
  return ['Subject: ' + 's'.repeat(1500), 'X-Folded: first', '\t' + 'f'.repeat(1200)];
}

/** Returns the message body: the bytes after the first blank line. */
function bodyOf(data: Buffer): Buffer {
  return data.subarray(data.indexOf('\r\n\r\n') + 4);
}

/** Returns the Subject and X-Folded fields as received, with their folds and splits. */
function headerOf(data: Buffer): string[] {
  const head = data.subarray(0, data.indexOf('\r\n\r\n')).toString('latin1');
  const fields = head.split(/\r\n(?![ \t])/);
  return fields.filter((f) => /^(Subject|X-Folded):/.test(f));
}

async function viaSendmail(t: test.TestContext, bin: string, sink: Sink, rcpt: string, count: number): Promise<Buffer> {
  const sm = await startSendmail({ bin, smartHost: { addr: sink.host, port: sink.port } });
  t.after(() => sm.stop());
  const message = ['From: alice@sendmail.test', `To: ${rcpt}`, ...headerLines(), '', ...bodyLines(), ''].join('\n');
  const sent = await sm.run(['-odi', '-oi', '-f', 'alice@sendmail.test', rcpt], message);
  assert.equal(sent.code, 0, sent.stdout + sent.stderr);
  const messages = await sink.waitForMessages(count, 30_000);
  return messages[count - 1].data;
}

async function viaPosthorn(port: number, sink: Sink): Promise<Buffer> {
  const data = ['From: alice@posthorn.test', 'To: bob@remote.example', ...headerLines(), '', ...bodyLines(), ''].join('\r\n');
  const sent = await sendRaw({ port, from: 'alice@posthorn.test', to: ['bob@remote.example'], data });
  assert.match(sent.accepted, /^250 /);
  const [message] = await sink.waitForMessages(1, 30_000);
  return message.data;
}

test('relay mailer splits like sendmail', async (t) => {
  const bin = requirePeer(t, 'sendmail');
  if (!bin || !requirePeer(t, 'm4')) return;
  const sink = await startSink();
  t.after(() => sink.close());
  const ph = await startPosthorn({
    mc: baseMc({ extra: ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sink.port}')`] }),
    args: LOAD_OFF,
  });
  t.after(() => ph.stop());
  const ours = await viaPosthorn(ph.port, sink);

  const theirSink = await startSink();
  t.after(() => theirSink.close());
  const theirs = await viaSendmail(t, bin, theirSink, 'bob@remote.example', 1);

  assert.ok(bodyOf(ours).includes('d'.repeat(2039) + '!\r\n dd\r\n'));
  assert.deepEqual(bodyOf(ours), bodyOf(theirs));
  assert.deepEqual(headerOf(ours), headerOf(theirs));
});

test('esmtp mailer splits like sendmail', async (t) => {
  const bin = requirePeer(t, 'sendmail');
  if (!bin || !requirePeer(t, 'm4')) return;
  const { ph, sink } = await startSinkHop(t, { args: LOAD_OFF });
  const ours = await viaPosthorn(ph.port, sink);

  // An address literal makes sendmail use the esmtp mailer, whose port the helper sets to the sink's.
  const theirSink = await startSink();
  t.after(() => theirSink.close());
  const theirs = await viaSendmail(t, bin, theirSink, 'bob@[127.0.0.1]', 1);

  assert.ok(bodyOf(ours).includes('b'.repeat(989) + '!\r\n bb\r\n'));
  assert.deepEqual(bodyOf(ours), bodyOf(theirs));
  // Header lines split the same way too; sendmail truncates a line only past 2303 bytes.
  assert.deepEqual(headerOf(ours), headerOf(theirs));
});
