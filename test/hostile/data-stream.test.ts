// Hostile DATA streams against a running daemon that relays to a sink. The
// cases: the end-of-data line split across writes, bare line ends deep in a
// large body, a body over MaxMessageSize, clients that vanish mid-body,
// one-byte writes, and a body sent together with QUIT. Each case checks the
// replies, the bytes the sink got, the queue folder and the log.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Posthorn } from '../helpers/posthorn';
import type { Sink, SinkMessage } from '../helpers/sink';
import { quoteRe } from '../helpers/e2e-setup';
import { waitFor } from '../helpers/process';
import {
  RawConnection,
  dataFileSize,
  dotStuff,
  dottedBody,
  filesOf,
  messageText,
  receivingId,
  startRelayWorld,
  waitForEmptyQueue,
  type RelayWorld,
} from './data-stream-support';

const FROM = 'alice@client.example';
const TO = 'carol@remote.example';
const HELLO = /^250-mx\.posthorn\.test Hello /;
const ACCEPTED = /^250 2\.0\.0 (\w{14}) Message accepted for delivery$/;
/**
 * The data file writer buffers the first 64 KiB of a body, then 256 KiB
 * batches that it writes behind the session. A body this large fills both.
 */
const LARGE = 400 * 1024;
const FIRST_TWO_BUFFERS = (64 + 256) * 1024;
const LOST = 'collect: unexpected close on connection from localhost, sender=<' + FROM + '>';

let world: RelayWorld;
let ph: Posthorn;
let sink: Sink;

before(async () => {
  world = await startRelayWorld();
  ph = world.ph;
  sink = world.sink;
});
after(() => world.close());

/** Returns the body of a sink message: the bytes after the header section. */
function bodyOf(message: SinkMessage): string {
  const text = message.data.toString('latin1');
  return text.slice(text.indexOf('\r\n\r\n') + 4);
}

/** Sink messages whose Subject header is `subject`. */
function delivered(subject: string): SinkMessage[] {
  const line = `\r\nSubject: ${subject}\r\n`;
  return sink.messages.filter((m) => m.data.toString('latin1').includes(line));
}

/** Waits for the one message with `subject` and checks its body byte for byte. */
async function assertDeliveredOnce(subject: string, body: string): Promise<void> {
  await waitFor(`"${subject}" at the sink`, () => delivered(subject).length > 0, 15_000);
  const copies = delivered(subject);
  assert.equal(copies.length, 1, `copies of ${subject}`);
  assert.equal(copies[0].to.join(), TO);
  const got = bodyOf(copies[0]);
  if (got === body) return;
  let at = 0;
  while (got[at] === body[at]) at++;
  const around = (text: string): string => JSON.stringify(text.slice(Math.max(0, at - 40), at + 40));
  assert.fail(`${subject}: the delivered body differs at byte ${at}: ${around(got)}, sent ${around(body)}`);
}

/** Asserts the receipt and delivery log lines of an accepted message. */
async function assertLoggedSent(id: string, size: number): Promise<void> {
  // The sink may have the message before the daemon has read its reply and logged the delivery.
  await ph.waitForLog(new RegExp(`: ${id}: to=<${quoteRe(TO)}>, .*stat=Sent`));
  const logs = ph.logs();
  assert.match(logs, new RegExp(`: ${id}: from=<${quoteRe(FROM)}>, size=\\d+, class=0, nrcpts=1, `));
  const logged = Number(new RegExp(`: ${id}: from=<[^>]*>, size=(\\d+)`).exec(logs)?.[1]);
  // The size counts the added Received header too.
  assert.ok(logged > size, `logged size ${logged} for a message of ${size} bytes`);
}

/** A log line about a message the daemon did not accept, and that message's queue id. */
interface RejectionRecord {
  line: string;
  queueId: string;
  loggedId: string;
}
const rejections: RejectionRecord[] = [];

/**
 * Waits for the first line of `logs()` after the first `skip` ones that
 * matches `text` after its id, and records the id it carries.
 */
async function recordRejection(logs: () => string, text: string, queueId: string, skip = 0): Promise<void> {
  const pattern = new RegExp(`: (\\w{14}): ${quoteRe(text)}$`, 'gm');
  const match = await waitFor(`a log line ending in "${text}"`, () => [...logs().matchAll(pattern)][skip], 10_000);
  rejections.push({ line: text, queueId, loggedId: match[1] });
}

function countLines(logs: string, text: string): number {
  return logs.split('\n').filter((line) => line.endsWith(text)).length;
}

/** Sends one normal message on `conn` and checks that it is delivered. */
async function sendNormal(conn: RawConnection, subject: string): Promise<void> {
  assert.match(await conn.startData(FROM, TO), /^354 /);
  const body = dottedBody(500, subject);
  await conn.write(dotStuff(messageText(subject, body)) + '.\r\n');
  const reply = await conn.reply();
  assert.match(reply, ACCEPTED);
  await assertDeliveredOnce(subject, body);
}

/**
 * Returns the ways to cut `wire`, which ends with the body's final CRLF and
 * ".\r\n", into writes: one cut before each of those five bytes and one after
 * them, and every one of them in its own write.
 */
function tailSplits(wire: string): string[][] {
  const head = wire.slice(0, -5);
  const tail = wire.slice(-5);
  const splits = [];
  for (let cut = 0; cut <= tail.length; cut++) {
    splits.push([head + tail.slice(0, cut), tail.slice(cut)].filter((part) => part !== ''));
  }
  splits.push([head, ...tail]);
  return splits;
}

for (const [label, size] of [['small', 200], ['large', LARGE]] as const) {
  test(`end of data split, ${label} body`, async () => {
    const atStart = sink.messages.length;
    const conn = await RawConnection.open(ph.port);
    assert.match(await conn.command('EHLO client.example'), HELLO);

    const sent: Array<{ subject: string; body: string; id: string }> = [];
    for (let n = 0; n < 7; n++) {
      const subject = `split ${label} ${n}`;
      const body = dottedBody(size, subject);
      const split = tailSplits(dotStuff(messageText(subject, body)) + '.\r\n')[n];
      assert.match(await conn.startData(FROM, TO), /^354 /);

      await conn.writeParts(split);
      const reply = await conn.reply();
      const id = ACCEPTED.exec(reply)?.[1];
      const tails = split.slice(1).map((part) => JSON.stringify(part)).join(' + ');
      assert.ok(id, `split ${n} (body, then ${tails}): ${reply}`);
      sent.push({ subject, body, id });
    }
    assert.match(await conn.command('QUIT'), /^221 /);
    await conn.closed;

    for (const { subject, body, id } of sent) {
      await assertDeliveredOnce(subject, body);
      await assertLoggedSent(id, body.length);
    }
    await waitForEmptyQueue(ph);
    const ours = sink.messages.slice(atStart).filter((m) => sent.some(({ subject }) => m.data.includes(`\r\nSubject: ${subject}\r\n`)));
    assert.equal(ours.length, sent.length, 'messages of this test at the sink');
  });
}

for (const [label, bad, text] of [
  ['LF', 'bare\nLF', 'Bare linefeed (LF) not allowed'],
  ['CR', 'bare\rCR', 'Bare carriage return (CR) not allowed'],
] as const) {
  test(`bare ${label} after 400 KiB`, async () => {
    await waitForEmptyQueue(ph);
    const conn = await RawConnection.open(ph.port);
    assert.match(await conn.command('EHLO client.example'), HELLO);
    const subject = `bare ${label}`;
    assert.match(await conn.startData(FROM, TO), /^354 /);
    const id = receivingId(ph);

    const body = dottedBody(LARGE, subject) + `${bad} in a line\r\nafter it\r\n`;
    await conn.writeParts([dotStuff(messageText(subject, body)), '.\r\n']);
    assert.equal(await conn.reply(), `421 4.5.0 ${text}`);
    await conn.closed;

    assert.deepEqual(filesOf(ph, id), []);
    const line = `collect: ${text}: from=<${FROM}>, relay=localhost [127.0.0.1]`;
    await recordRejection(() => ph.logs(), line, id);

    // The daemon ends the session, as Debian's sendmail 8.17.1.9 does, but a
    // new session works.
    const next = await RawConnection.open(ph.port);
    assert.match(await next.command('EHLO client.example'), HELLO);
    await sendNormal(next, `after bare ${label}`);
    assert.match(await next.command('QUIT'), /^221 /);
    assert.deepEqual(delivered(subject), []);
    await waitForEmptyQueue(ph);
  });
}

test('oversized body rejected after dot', async () => {
  const limited = await startRelayWorld(["define(`confMAX_MESSAGE_SIZE', `100000')"]);
  try {
    const conn = await RawConnection.open(limited.ph.port);
    assert.match(await conn.command('EHLO client.example'), HELLO);
    assert.match(await conn.startData(FROM, TO), /^354 /);
    const id = receivingId(limited.ph);

    const subject = 'one megabyte';
    const wire = dotStuff(messageText(subject, dottedBody(1024 * 1024, subject))) + '.\r\n';
    await conn.writeParts([wire.slice(0, 400_000), wire.slice(400_000)]);
    assert.equal(await conn.reply(), '552 5.2.3 Message exceeds maximum fixed size (100000)');
    assert.deepEqual(filesOf(limited.ph, id), []);
    const line = `Message exceeds maximum fixed size (100000): from=<${FROM}>, relay=localhost [127.0.0.1]`;
    await recordRejection(() => limited.ph.logs(), line, id);

    // The session stays in step: the next message goes through.
    assert.match(await conn.startData(FROM, TO), /^354 /);
    const small = dottedBody(300, 'within the limit');
    await conn.write(dotStuff(messageText('within the limit', small)) + '.\r\n');
    assert.match(await conn.reply(), ACCEPTED);
    assert.match(await conn.command('QUIT'), /^221 /);

    const [message] = await limited.sink.waitForMessages(1, 15_000);
    assert.equal(bodyOf(message), small);
    await waitForEmptyQueue(limited.ph);
    assert.equal(limited.sink.messages.length, 1);
  } finally {
    await limited.close();
  }
});

for (const ending of ['close', 'reset'] as const) {
  test(`client ${ending} mid-body`, async () => {
    await waitForEmptyQueue(ph);
    const conn = await RawConnection.open(ph.port);
    assert.match(await conn.command('EHLO client.example'), HELLO);
    assert.match(await conn.startData(FROM, TO), /^354 /);
    const id = receivingId(ph);

    const subject = `lost by ${ending}`;
    const wire = dotStuff(messageText(subject, dottedBody(LARGE, subject)));
    await conn.write(wire);
    const lostBefore = countLines(ph.logs(), LOST);
    // Close only once a full write-behind batch is on disk.
    await waitFor('a full batch in the data file', () => dataFileSize(ph, id) >= FIRST_TWO_BUFFERS);
    if (ending === 'close') conn.socket.end();
    else conn.socket.resetAndDestroy();
    await conn.closed;

    await recordRejection(() => ph.logs(), LOST, id, lostBefore);
    // The log line comes just before the files are removed.
    await waitFor(`no queue files of ${id}`, () => filesOf(ph, id).length === 0, 5_000).catch(() => undefined);
    assert.deepEqual(filesOf(ph, id), []);

    const next = await RawConnection.open(ph.port);
    assert.match(await next.command('EHLO client.example'), HELLO);
    await sendNormal(next, `after ${ending}`);
    assert.match(await next.command('QUIT'), /^221 /);
    assert.deepEqual(delivered(subject), []);
  });
}

test('one-byte writes of a message', async () => {
  const conn = await RawConnection.open(ph.port);
  const subject = 'one byte at a time';
  const body = dottedBody(300, subject);
  const writeBytes = async (text: string): Promise<void> => {
    for (const byte of Buffer.from(text, 'latin1')) {
      await conn.write(Buffer.of(byte));
      await nextTurn();
    }
  };

  for (const line of ['EHLO client.example', `MAIL FROM:<${FROM}>`, `RCPT TO:<${TO}>`, 'DATA']) {
    await writeBytes(line + '\r\n');
    assert.match(await conn.reply(), line === 'DATA' ? /^354 / : /^250[- ]/, line);
  }
  await writeBytes(dotStuff(messageText(subject, body)) + '.\r\n');
  const id = ACCEPTED.exec(await conn.reply())?.[1];
  assert.ok(id);
  await writeBytes('QUIT\r\n');
  assert.match(await conn.reply(), /^221 /);

  await assertDeliveredOnce(subject, body);
  await assertLoggedSent(id, body.length);
});

test('body and QUIT together', async () => {
  const conn = await RawConnection.open(ph.port);
  assert.match(await conn.command('EHLO client.example'), HELLO);
  assert.match(await conn.startData(FROM, TO), /^354 /);
  const subject = 'body with QUIT';
  const body = dottedBody(2000, subject);

  await conn.write(dotStuff(messageText(subject, body)) + '.\r\nQUIT\r\n');
  const id = ACCEPTED.exec(await conn.reply())?.[1];
  assert.ok(id);
  assert.match(await conn.reply(), /^221 2\.0\.0 /);
  await conn.closed;

  await assertDeliveredOnce(subject, body);
  await assertLoggedSent(id, body.length);
});

// Every log line about a message starts with its queue id, the id in
// the name of its data file, so that grepping the log for the id finds them.
test('rejections logged under queue id', () => {
  assert.ok(rejections.length > 0, 'no rejection was recorded');
  assert.deepEqual(
    rejections.map((r) => `${r.line}: ${r.loggedId}`),
    rejections.map((r) => `${r.line}: ${r.queueId}`),
  );
});
