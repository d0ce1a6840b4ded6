import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { runSession, SessionOptions, Transaction, ClientTimeouts } from '../../src/delivery/smtp-client';
import { DotStuffer } from '../../src/delivery/dot-stuff';
import { parseReplyLine, splitEnhanced } from '../../src/delivery/reply-reader';
import { startSink } from '../helpers/sink';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-client-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const TIMEOUTS: ClientTimeouts = {
  connect: 2000,
  initial: 2000,
  helo: 2000,
  mail: 2000,
  rcpt: 2000,
  datainit: 2000,
  datablock: 2000,
  datafinal: 2000,
  quit: 2000,
};

let fileCount = 0;
function dataFile(body: string | Buffer): { path: string; size: number } {
  const p = path.join(dir, `df${fileCount++}`);
  fs.writeFileSync(p, body);
  return { path: p, size: fs.statSync(p).size };
}

function transaction(recipients: string[], body: string | Buffer = 'Hello.\r\n'): Transaction {
  const df = dataFile(body);
  return {
    sender: 'alice@origin.test',
    recipients: recipients.map((address) => ({ address })),
    headers: ['From: alice@origin.test', 'Subject: test'],
    dataPath: df.path,
    bodySize: df.size,
    eightBit: false,
  };
}

function session(port: number, extra: Partial<SessionOptions> = {}): SessionOptions {
  return {
    address: '127.0.0.1',
    port,
    hostName: 'mx.dest.test.',
    heloName: 'posthorn.test',
    timeouts: TIMEOUTS,
    ...extra,
  };
}

test('pipelined transaction delivers to every recipient', async () => {
  const sink = await startSink();
  try {
    const result = await runSession(session(sink.port), transaction(['a@dest.test', 'b@dest.test']));
    assert.equal(result.kind, 'transaction');
    if (result.kind !== 'transaction') return;
    assert.deepEqual(
      result.recipients.map((r) => [r.status, r.dsn, r.text]),
      [
        ['sent', '2.0.0', 'Message accepted for delivery'],
        ['sent', '2.0.0', 'Message accepted for delivery'],
      ],
    );
    assert.equal(sink.messages.length, 1);
    assert.deepEqual(sink.messages[0].to, ['a@dest.test', 'b@dest.test']);
    assert.equal(sink.messages[0].from, 'alice@origin.test');
    assert.equal(sink.messages[0].helo, 'posthorn.test');
    assert.equal(
      sink.messages[0].data.toString(),
      'From: alice@origin.test\r\nSubject: test\r\n\r\nHello.\r\n',
    );
    assert.ok(sink.commands.includes('MAIL FROM:<alice@origin.test> SIZE=50'));
    assert.ok(sink.pipelinedBatches >= 1, 'MAIL, RCPT and DATA arrive in one packet');
    assert.equal(sink.commands.at(-1), 'QUIT');
  } finally {
    await sink.close();
  }
});

test('without PIPELINING commands go one by one', async () => {
  const sink = await startSink({ extensions: ['8BITMIME'] });
  try {
    const tx = { ...transaction(['a@dest.test']), eightBit: true };
    const result = await runSession(session(sink.port), tx);
    assert.equal(result.kind, 'transaction');
    assert.equal(sink.pipelinedBatches, 0);
    assert.ok(sink.commands.includes('MAIL FROM:<alice@origin.test> BODY=8BITMIME'));
  } finally {
    await sink.close();
  }
});

test('EHLO 500 falls back to HELO', async () => {
  const sink = await startSink({ noEsmtp: true });
  try {
    const result = await runSession(session(sink.port), transaction(['a@dest.test']));
    assert.equal(result.kind, 'transaction');
    assert.deepEqual(sink.commands.slice(0, 3), [
      'EHLO posthorn.test',
      'HELO posthorn.test',
      'MAIL FROM:<alice@origin.test>',
    ]);
    assert.equal(sink.messages.length, 1);
  } finally {
    await sink.close();
  }
});

test('per-recipient 5xx and 4xx', async () => {
  const sink = await startSink({
    rcptReply: (a) =>
      a.startsWith('gone') ? '550 5.1.1 <gone@dest.test>... User unknown' : a.startsWith('busy') ? '452 4.2.2 Mailbox full' : '250 2.1.5 Ok',
  });
  try {
    const result = await runSession(session(sink.port), transaction(['ok@dest.test', 'gone@dest.test', 'busy@dest.test']));
    assert.equal(result.kind, 'transaction');
    if (result.kind !== 'transaction') return;
    const [ok, gone, busy] = result.recipients;
    assert.equal(ok.status, 'sent');
    assert.deepEqual(gone, {
      address: 'gone@dest.test',
      status: 'permfail',
      dsn: '5.1.1',
      text: 'User unknown',
      diagnostic: '550 5.1.1 <gone@dest.test>... User unknown',
    });
    assert.equal(busy.status, 'tempfail');
    assert.equal(busy.text, '452 4.2.2 Mailbox full');
    assert.deepEqual(sink.messages[0].to, ['ok@dest.test']);
  } finally {
    await sink.close();
  }
});

test('all recipients rejected sends no message', async () => {
  const sink = await startSink({ replies: { rcpt: '550 5.7.1 Relaying denied' } });
  try {
    const result = await runSession(session(sink.port), transaction(['a@dest.test']));
    assert.equal(result.kind, 'transaction');
    if (result.kind !== 'transaction') return;
    assert.equal(result.recipients[0].status, 'permfail');
    assert.equal(result.recipients[0].text, 'Service unavailable');
    assert.equal(sink.messages.length, 0);
  } finally {
    await sink.close();
  }
});

test('MAIL 451 defers every recipient', async () => {
  const sink = await startSink({ replies: { mail: '451 4.3.0 Try again later' } });
  try {
    const result = await runSession(session(sink.port), transaction(['a@dest.test', 'b@dest.test']));
    assert.equal(result.kind, 'transaction');
    if (result.kind !== 'transaction') return;
    assert.deepEqual(
      result.recipients.map((r) => r.text),
      ['451 4.3.0 Try again later', '451 4.3.0 Try again later'],
    );
  } finally {
    await sink.close();
  }
});

test('final dot 554 bounces accepted recipients', async () => {
  const sink = await startSink({ replies: { dot: '554 5.6.0 Content rejected' } });
  try {
    const result = await runSession(session(sink.port), transaction(['a@dest.test']));
    assert.equal(result.kind, 'transaction');
    if (result.kind !== 'transaction') return;
    assert.equal(result.recipients[0].status, 'permfail');
    assert.equal(result.recipients[0].diagnostic, '554 5.6.0 Content rejected');
  } finally {
    await sink.close();
  }
});

test('421 greeting makes the host unreachable', async () => {
  const sink = await startSink({ replies: { greeting: '421 4.3.2 Too busy, try later' } });
  try {
    const result = await runSession(session(sink.port), transaction(['a@dest.test']));
    assert.deepEqual({ kind: result.kind, text: 'text' in result ? result.text : '' }, {
      kind: 'unreachable',
      text: '421 4.3.2 Too busy, try later',
    });
  } finally {
    await sink.close();
  }
});

test('554 greeting rejects the transaction', async () => {
  const sink = await startSink({ replies: { greeting: '554 sink.test not accepting mail' } });
  try {
    const result = await runSession(session(sink.port), transaction(['a@dest.test']));
    assert.equal(result.kind, 'rejected');
    if (result.kind !== 'rejected') return;
    assert.equal(result.dsn, '5.0.0');
    assert.equal(result.diagnostic, '554 sink.test not accepting mail');
  } finally {
    await sink.close();
  }
});

test('connection refused', async () => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  const result = await runSession(session(port), transaction(['a@dest.test']));
  assert.equal(result.kind, 'unreachable');
  if (result.kind !== 'unreachable') return;
  assert.equal(result.text, 'Connection refused by mx.dest.test.');
});

test('silent server times out', async () => {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const timeouts = { ...TIMEOUTS, initial: 150 };
    const result = await runSession(session(port, { timeouts }), transaction(['a@dest.test']));
    assert.equal(result.kind, 'unreachable');
    if (result.kind !== 'unreachable') return;
    assert.equal(result.text, 'Connection timed out with mx.dest.test.');
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('server that stops answering after RCPT', async () => {
  const server = net.createServer((s) => {
    s.write('220 slow.test ESMTP\r\n');
    s.on('data', (d) => {
      const text = d.toString();
      if (text.startsWith('EHLO')) s.write('250 slow.test\r\n');
      else if (text.startsWith('MAIL')) s.write('250 2.1.0 Ok\r\n');
      else if (text.startsWith('RCPT')) s.write('250 2.1.5 Ok\r\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const timeouts = { ...TIMEOUTS, datainit: 150 };
    const result = await runSession(session(port, { timeouts }), transaction(['a@dest.test']));
    assert.equal(result.kind, 'transaction');
    if (result.kind !== 'transaction') return;
    assert.equal(result.recipients[0].status, 'tempfail');
    assert.equal(result.recipients[0].text, 'Connection timed out with mx.dest.test.');
  } finally {
    server.close();
  }
});

test('malformed reply is a protocol error', async () => {
  const server = net.createServer((s) => s.write('hello there\r\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const result = await runSession(session(port), transaction(['a@dest.test']));
    assert.equal(result.kind, 'unreachable');
    if (result.kind !== 'unreachable') return;
    assert.match(result.text, /^Remote protocol error with mx\.dest\.test\. \(malformed reply/);
  } finally {
    server.close();
  }
});

test('dot-stuffing over a large body', async () => {
  const sink = await startSink();
  try {
    const line = '.leading dot line that is long enough to cross chunk boundaries\r\n';
    const body = Buffer.from(line.repeat(40000) + '..two dots\r\n.');
    const result = await runSession(session(sink.port), transaction(['a@dest.test'], body.toString()));
    assert.equal(result.kind, 'transaction');
    const received = sink.messages[0].data;
    const expected = Buffer.concat([
      Buffer.from('From: alice@origin.test\r\nSubject: test\r\n\r\n'),
      body,
      Buffer.from('\r\n'),
    ]);
    assert.equal(received.length, expected.length);
    assert.ok(received.equals(expected));
  } finally {
    await sink.close();
  }
});

/** Sends `body` from a df whose size in the transaction is `bodySize`; returns what the sink got. */
async function sendWithSize(body: Buffer, bodySize: (actual: number) => number): Promise<Buffer> {
  const sink = await startSink();
  try {
    const tx = transaction(['a@dest.test'], body);
    tx.bodySize = bodySize(tx.bodySize);
    const result = await runSession(session(sink.port), tx);
    assert.equal(result.kind, 'transaction');
    return sink.messages[0].data;
  } finally {
    await sink.close();
  }
}

test('data file sent whole at any size hint', async () => {
  const line = 'line of the body that starts without a dot\r\n.then one with a dot\r\n';
  const cases: Array<[string, Buffer, (actual: number) => number]> = [
    ['size 0 for 100 KB', Buffer.from(line.repeat(1500)), () => 0],
    ['size too low by half', Buffer.from(line.repeat(300)), (n) => Math.floor(n / 2)],
    ['size too high', Buffer.from(line.repeat(300)), (n) => n * 3],
    ['exactly two large blocks', Buffer.alloc(512 * 1024, 'x'), (n) => n],
    ['exactly two 1 MiB blocks', Buffer.alloc(2 * 1024 * 1024, 'z'), (n) => n],
    ['1 MiB blocks, a short last one', Buffer.from(line.repeat(50_000)), (n) => n],
    ['exactly the small block limit', Buffer.alloc(64 * 1024 - 1, 'y'), (n) => n],
    ['empty', Buffer.alloc(0), (n) => n],
  ];
  for (const [name, body, size] of cases) {
    const received = await sendWithSize(body, size);
    // The sink undoes the dot-stuffing; a body without a final CRLF gets one.
    const text = body.toString('latin1');
    const expected = Buffer.concat([
      Buffer.from('From: alice@origin.test\r\nSubject: test\r\n\r\n'),
      body,
      Buffer.from(text === '' || text.endsWith('\r\n') ? '' : '\r\n'),
    ]);
    assert.ok(received.equals(expected), `${name}: ${received.length} bytes received, ${expected.length} expected`);
  }
});

test('LMTP reads one reply per recipient', async () => {
  const sink = await startSink({ lmtp: true });
  try {
    const result = await runSession(session(sink.port, { lmtp: true }), transaction(['a@dest.test', 'b@dest.test']));
    assert.equal(result.kind, 'transaction');
    if (result.kind !== 'transaction') return;
    assert.deepEqual(
      result.recipients.map((r) => r.status),
      ['sent', 'sent'],
    );
    assert.equal(sink.commands[0], 'LHLO posthorn.test');
  } finally {
    await sink.close();
  }
});

test('DotStuffer across chunk boundaries', () => {
  const s = new DotStuffer();
  const out = Buffer.concat([s.push(Buffer.from('.a\r\nb\r\n')), s.push(Buffer.from('.c\r\nd')), s.finish()]);
  assert.equal(out.toString(), '..a\r\nb\r\n..c\r\nd\r\n.\r\n');
  const empty = new DotStuffer();
  assert.equal(empty.finish().toString(), '.\r\n');
});

test('reply parsing', () => {
  assert.deepEqual(parseReplyLine('250-PIPELINING'), { code: 250, last: false, text: 'PIPELINING' });
  assert.deepEqual(parseReplyLine('250'), { code: 250, last: true, text: '' });
  assert.equal(parseReplyLine('25O ok'), undefined);
  assert.equal(parseReplyLine('600 nope'), undefined);
  assert.deepEqual(splitEnhanced(550, ['5.1.1 No such user']), {
    code: 550,
    enhanced: '5.1.1',
    lines: ['No such user'],
  });
  assert.deepEqual(splitEnhanced(550, ['2.1.1 mismatched class']), {
    code: 550,
    lines: ['2.1.1 mismatched class'],
  });
});

test('body of dot lines sent whole', async () => {
  // With and without a line limit.
  // 1 MiB of ".\r\n": each 256 KiB block splits into about 175,000 pieces,
  // more than one call may take as arguments.
  const body = Buffer.from('.\r\n'.repeat(350_000));
  for (const lineLimit of [0, 990]) {
    const sink = await startSink();
    try {
      const result = await runSession(session(sink.port, { lineLimit }), transaction(['a@dest.test'], body));
      assert.equal(result.kind, 'transaction', `L=${lineLimit}`);
      const received = sink.messages[0].data;
      assert.ok(received.subarray(received.length - body.length).equals(body), `L=${lineLimit}: body received whole`);
    } finally {
      await sink.close();
    }
  }
});
