// Bodies of every size class through the outbound block reader, checked on
// the wire. The next hop defers each message once with a 451 after the final
// dot, so the second copy is read from the data file by a queue run (-q). Both
// copies must carry the body byte for byte, dot-stuffed. A daemon killed with
// SIGKILL while the next hop withholds its reply must deliver again after
// a restart, and lose nothing.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { waitFor } from '../helpers/process';
import { RawConnection, waitForEmptyQueue } from './data-stream-support';
import { startWireSink, stuff, type WireMessage, type WireSink } from './wire-sink';

const KiB = 1024;
const FROM = 'alice@client.example';
const TO = 'carol@remote.example';
/** Body sizes in bytes: around the small read buffer, the 64 KiB limit and the 256 KiB blocks. */
const SIZES = [0, 2, 3, 8 * KiB, 64 * KiB - 1, 64 * KiB, 64 * KiB + 1, 256 * KiB, 256 * KiB + 1, 512 * KiB, 3 * KiB * KiB];
/** Offsets where the body gets a lone "." line, so a stuffed dot falls on a read boundary. */
const BOUNDARIES = [8 * KiB, 64 * KiB - 1, 64 * KiB, 256 * KiB, 512 * KiB, 768 * KiB];
const HELD = 'reply withheld';

let ph: Posthorn;
let sink: WireSink;
/** Cases whose first copy the sink has already deferred. */
const deferredOnce = new Set<string>();

before(async () => {
  sink = await startWireSink(replyAfterDot);
  ph = await startPosthorn({
    mc: baseMc({
      extra: [
        "FEATURE(`nocanonify')",
        "define(`SMART_HOST', `[127.0.0.1]')",
        `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sink.port}')`,
      ],
    }),
  });
});

after(async () => {
  await ph.stop();
  await sink.close();
});

/** Defers the first copy of every case with 451, and withholds the reply to the first copy of HELD. */
function replyAfterDot(message: WireMessage): string {
  const name = caseOf(message);
  if (deferredOnce.has(name)) return '250 2.0.0 accepted';
  deferredOnce.add(name);
  return name === HELD ? 'hold' : '451 4.3.0 try again later';
}

function caseOf(message: WireMessage): string {
  return /\r\nX-Case: ([^\r]*)\r\n/.exec('\r\n' + message.wire.toString('latin1'))?.[1] ?? '';
}

function copiesOf(name: string): WireMessage[] {
  return sink.messages.filter((m) => caseOf(m) === name);
}

/**
 * Builds a CRLF body of exactly `size` bytes with lines that start with dots,
 * lone dots, empty lines and 8-bit bytes, and a lone "." at each boundary
 * offset below `size`.
 */
function bodyOf(size: number): Buffer {
  if (size === 0) return Buffer.alloc(0);
  const lines = ['.', '..', '.leading dot', '...', '', 'a plain line', 'x'.repeat(900), '\xe9\xff eight-bit'];
  let text = '';
  for (let i = 0; text.length < size; i++) {
    const boundary = BOUNDARIES.find((b) => b > text.length && b - text.length <= 200);
    if (boundary !== undefined && boundary - text.length >= 2) {
      text += 'y'.repeat(boundary - text.length - 2) + '\r\n.\r\n';
    }
    text += lines[i % lines.length] + '\r\n';
  }
  // Cut to size. The last two bytes become CRLF, and a CR before them becomes a letter.
  const body = Buffer.from(text.slice(0, size), 'latin1');
  body.write('\r\n', size - 2, 'latin1');
  if (size >= 3 && body[size - 3] === 0x0d) body[size - 3] = 0x71;
  return body;
}

/** Sends one message over SMTP and returns its queue id. */
async function submit(name: string, body: Buffer): Promise<string> {
  const conn = await RawConnection.open(ph.port);
  try {
    assert.match(await conn.command('EHLO client.example'), /^250[- ]/);
    assert.match(await conn.startData(FROM, TO), /^354 /);
    const message = Buffer.concat([Buffer.from(`Subject: ${name}\r\nX-Case: ${name}\r\n\r\n`), body]);
    await conn.write(Buffer.concat([stuff(message), Buffer.from('.\r\n')]));
    const accepted = /^250 2\.0\.0 (\w{14}) Message accepted/.exec(await conn.reply());
    assert.ok(accepted, `${name} was not accepted`);
    await conn.command('QUIT');
    return accepted[1];
  } finally {
    conn.destroy();
  }
}

/** Asserts that a copy carries `body` stuffed, after its header section, and the final dot. */
function assertWireBody(name: string, copy: WireMessage, body: Buffer): void {
  const wire = copy.wire;
  const headerEnd = wire.indexOf('\r\n\r\n');
  assert.ok(headerEnd >= 0, `${name}: no end of the header section on the wire`);
  const expected = Buffer.concat([stuff(body), Buffer.from('.\r\n')]);
  const got = wire.subarray(headerEnd + 4);
  if (got.equals(expected)) return;
  let at = 0;
  while (at < got.length && got[at] === expected[at]) at++;
  assert.fail(`${name}: ${got.length} body bytes on the wire, ${expected.length} expected; first difference at byte ${at}`);
}

test('size classes deferred then sent by -q', async () => {
  const bodies = new Map<string, Buffer>();
  const ids: string[] = [];
  for (const size of SIZES) {
    const name = `size ${size}`;
    bodies.set(name, bodyOf(size));
    assert.equal(bodies.get(name)?.length, size);
    ids.push(await submit(name, bodies.get(name) as Buffer));
  }
  for (const id of ids) await ph.waitForLog(new RegExp(`: ${id}: to=<${TO}>, .*stat=Deferred: 451 4\\.3\\.0`), 30_000);

  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  await waitForEmptyQueue(ph, 60_000);

  for (const [name, body] of bodies) {
    const copies = copiesOf(name);
    assert.equal(copies.length, 2, `copies of ${name}`);
    assertWireBody(`${name}, first copy`, copies[0], body);
    assertWireBody(`${name}, from the data file`, copies[1], body);
  }
});

test('-t -i bodies: no final newline, bare CR', async () => {
  const cases: Array<[string, string, string]> = [
    ['one byte', 'a', 'a\r\n'],
    ['no final newline', '.a\n..\n.\nlast line', '..a\r\n...\r\n..\r\nlast line\r\n'],
    ['only a dot', '.', '..\r\n'],
    // A next hop rejects a bare CR in DATA, so it leaves as a line end.
    ['bare CR', 'bare cr\rhere', 'bare cr\r\nhere\r\n'],
  ];
  for (const [name, input] of cases) {
    const result = await ph.run(['-t', '-i'], `To: ${TO}\nX-Case: ${name}\n\n${input}`);
    assert.equal(result.code, 0, `${name}: ${result.stderr}`);
  }
  await waitFor('the first copies', () => cases.every(([name]) => copiesOf(name).length === 1), 30_000);
  await waitFor('the deferrals in the queue', () => ph.queueFiles().filter((f) => f.startsWith('qf')).length === cases.length, 30_000);
  await waitFor('unlocked queue items', () => !ph.queueFiles().some((f) => f.startsWith('lf')), 30_000);

  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  await waitForEmptyQueue(ph, 30_000);

  for (const [name, , stuffed] of cases) {
    const copies = copiesOf(name);
    assert.equal(copies.length, 2, `copies of ${name}`);
    for (const copy of copies) {
      const wire = copy.wire.toString('latin1');
      assert.equal(wire.slice(wire.indexOf('\r\n\r\n') + 4), `${stuffed}.\r\n`, name);
    }
  }
});

test('SIGKILL while the reply is withheld', async () => {
  const body = bodyOf(3 * KiB * KiB);
  const id = await submit(HELD, body);
  await waitFor('the held copy at the sink', () => copiesOf(HELD).length === 1, 30_000);
  await ph.kill('SIGKILL');
  assert.ok(ph.queueFiles().includes(`qf${id}`), 'the control file is gone after SIGKILL');
  assert.ok(ph.queueFiles().includes(`df${id}`), 'the data file is gone after SIGKILL');

  await ph.restart();
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  await waitForEmptyQueue(ph, 30_000);

  // The held copy was never acknowledged, so SMTP allows this one duplicate.
  const copies = copiesOf(HELD);
  assert.equal(copies.length, 2);
  assertWireBody('held copy', copies[0], body);
  assertWireBody('copy after restart', copies[1], body);
  await ph.waitForLog(new RegExp(`: ${id}: to=<${TO}>, .*stat=Sent`));
});
