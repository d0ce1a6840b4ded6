// sendmail's slowdown of repeated NOOP, HELO/EHLO, VRFY/EXPN and ETRN: the
// delay table, then in-process sessions whose timer is replaced, so the tests
// check the requested waits and never the time taken. The last test runs a
// real daemon. The log lines and delays copy what sendmail 8.17.1.9 did when
// run as `sendmail -bs` with a private /dev/log.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/load';
import { Logger, type Severity } from '../../src/log/logger';
import { CheckpointChain } from '../../src/server/checkpoint';
import type { ServerContext, SessionTransport } from '../../src/server/context';
import { Session } from '../../src/server/session';
import {
  MAX_DELAY_SECONDS,
  commandCount,
  resetHeloCount,
  setAttackSleep,
  slowdownFor,
  type Sleep,
} from '../../src/server/smtp-attack';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';

test('slowdownFor doubles up to the cap', () => {
  assert.equal(slowdownFor(19, 20, false), undefined);
  assert.deepEqual(slowdownFor(20, 20, false), { first: 1, rest: 0, stop: false });
  assert.deepEqual(slowdownFor(21, 20, false), { first: 1, rest: 1, stop: false });
  assert.deepEqual(slowdownFor(22, 20, false), { first: 1, rest: 3, stop: false });
  assert.deepEqual(slowdownFor(27, 20, false), { first: 1, rest: 127, stop: false });
  assert.deepEqual(slowdownFor(28, 20, false), { first: 1, rest: 239, stop: false });
  assert.deepEqual(slowdownFor(60, 20, false), { first: 3, rest: 237, stop: false });
  assert.deepEqual(slowdownFor(6, 3, false), { first: 2, rest: 6, stop: false });
  assert.deepEqual(slowdownFor(6, 3, true), { first: 2, rest: 6, stop: true });
  assert.deepEqual(slowdownFor(5, 3, true), { first: 1, rest: 3, stop: false });
});

test('slowdownFor stays bounded', () => {
  for (const count of [3, 10, 100, 1000, 100_000]) {
    const delay = slowdownFor(count, 3, false);
    assert.ok(delay, `count ${count}`);
    assert.ok(delay.first + delay.rest <= MAX_DELAY_SECONDS, `count ${count}`);
    assert.ok(delay.first >= 1, `count ${count}`);
  }
});

interface LogLine {
  severity: Severity;
  line: string;
}

/** A transport that records what the session writes; `end()` acts as the client's half-close. */
class FakeTransport implements SessionTransport {
  output = '';
  closed = false;
  private dataHandlers: Array<(chunk: Buffer) => void> = [];
  private endHandlers: Array<() => void> = [];
  remoteAddress = '127.0.0.1';
  remotePort = 40000;
  localAddress = '127.0.0.1';
  localPort = 25;

  write(text: string | Buffer): boolean {
    this.output += text.toString();
    return true;
  }
  onData(handler: (chunk: Buffer) => void): void {
    this.dataHandlers.push(handler);
  }
  onEnd(handler: () => void): void {
    this.endHandlers.push(handler);
  }
  pause(): void {}
  resume(): void {}
  close(): void {
    this.closed = true;
  }
  drain(): Promise<void> {
    return Promise.resolve();
  }
  send(text: string): void {
    for (const handler of this.dataHandlers) handler(Buffer.from(text));
  }
  end(): void {
    for (const handler of this.endHandlers) handler();
  }
  /** Returns every complete reply so far, each with its lines joined by "\n". */
  replies(): string[] {
    const replies: string[] = [];
    let lines: string[] = [];
    for (const line of this.output.split('\r\n').slice(0, -1)) {
      lines.push(line);
      if (/^\d{3} /.test(line)) {
        replies.push(lines.join('\n'));
        lines = [];
      }
    }
    return replies;
  }
}

let sessionNumber = 0;

/** Opens a session on a fake transport with -O `overrides`, and collects the log lines it writes. */
function openSession(overrides: Record<string, string> = {}): { session: Session; transport: FakeTransport; logs: LogLine[] } {
  const logs: LogLine[] = [];
  const logger = new Logger([{ write: (severity, line) => logs.push({ severity, line }), close: () => undefined }], 9);
  const config = loadConfig({
    env: {},
    overrides: Object.entries(overrides).map(([name, value]) => ({ name, value })),
  });
  const ctx = {
    config,
    logger,
    store: { newId: () => `s${++sessionNumber}` },
    chain: new CheckpointChain([]),
    version: 'test',
    onAccepted: () => undefined,
    runQueue: async () => 0,
  } as unknown as ServerContext;
  const transport = new FakeTransport();
  const session = new Session(ctx, transport, { daemonName: 'MTA', relayAllowed: false, clientText: 'client [127.0.0.1]' });
  session.start();
  return { session, transport, logs };
}

/** Waits (in event loop turns, not time) until the transport contains `count` replies. */
async function repliesAfter(transport: FakeTransport, count: number): Promise<string[]> {
  for (let turn = 0; turn < 10_000 && transport.replies().length < count; turn++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  return transport.replies();
}

/** Replaces the delay timer with one that records each request in seconds and returns at once. */
/** Sends each command after the reply to the one before, as a client that does not pipeline. */
async function converse(transport: FakeTransport, commands: string[]): Promise<string[]> {
  for (const command of commands) {
    const count = transport.replies().length;
    transport.send(`${command}\r\n`);
    await repliesAfter(transport, count + 1);
  }
  return transport.replies();
}

function recordSleeps(t: { after(fn: () => void): void }): number[] {
  const requested: number[] = [];
  setAttackSleep(async (ms) => {
    requested.push(ms / 1000);
  });
  t.after(() => setAttackSleep());
  return requested;
}

function attackLines(logs: LogLine[]): LogLine[] {
  return logs.filter((l) => l.line.includes('possible SMTP attack'));
}

test('22 NOOPs: one log line, growing delays', async (t) => {
  const sleeps = recordSleeps(t);
  const { session, transport, logs } = openSession();
  t.after(() => session.close());

  transport.send('NOOP\r\n'.repeat(22));
  const replies = await repliesAfter(transport, 23);
  assert.equal(replies.length, 23);
  for (const r of replies.slice(1)) assert.equal(r, '250 2.0.0 OK');

  const lines = attackLines(logs);
  assert.equal(lines.length, 1);
  assert.equal(lines[0].line, `${session.id}: client [127.0.0.1]: possible SMTP attack: command=NOOP, count=20`);
  assert.equal(lines[0].severity, 'info');
  assert.deepEqual(sleeps, [1, 2, 4]);
});

test('MaxNOOPCommands sets the NOOP limit', async (t) => {
  // sendmail 8.17 with MaxNOOPCommands=2 replies to four NOOPs after 1, 2 and 4 s, and with 0 at once.
  const sleeps = recordSleeps(t);
  const two = openSession({ MaxNOOPCommands: '2' });
  t.after(() => two.session.close());
  two.transport.send('NOOP\r\n'.repeat(4));
  assert.equal((await repliesAfter(two.transport, 5)).length, 5);
  assert.match(attackLines(two.logs)[0]?.line ?? '', /possible SMTP attack: command=NOOP, count=2$/);
  assert.deepEqual(sleeps, [1, 2, 4]);

  const none = openSession({ MaxNOOPCommands: '0' });
  t.after(() => none.session.close());
  none.transport.send('NOOP\r\n'.repeat(25));
  assert.equal((await repliesAfter(none.transport, 26)).length, 26);
  assert.deepEqual(attackLines(none.logs), []);
  assert.deepEqual(sleeps, [1, 2, 4], 'no more waits');
});

test('HELO/EHLO counts invalid ones too', async (t) => {
  const sleeps = recordSleeps(t);
  const { session, transport, logs } = openSession();
  t.after(() => session.close());

  // One at a time: a command pipelined behind HELO would be rejected.
  const replies = await converse(transport, ['HELO a.example', 'EHLO', 'HELO bad!name', 'HELO b.example']);
  assert.equal(replies.length, 5);
  assert.equal(replies[2], '501 5.0.0 EHLO requires domain address');
  assert.equal(replies[3], '501 5.0.0 Invalid domain name');
  assert.match(replies[4], /^250 \S+ Hello client \[127\.0\.0\.1\], pleased to meet you$/);

  const lines = attackLines(logs);
  assert.equal(lines.length, 1);
  assert.match(lines[0].line, /: client \[127\.0\.0\.1\]: possible SMTP attack: command=HELO\/EHLO, count=3$/);
  assert.deepEqual(sleeps, [1, 2]);
});

test('VRFY and EXPN share one count', async (t) => {
  const sleeps = recordSleeps(t);
  const { session, transport, logs } = openSession({ PrivacyOptions: 'noexpn' });
  t.after(() => session.close());

  transport.send('VRFY root\r\n'.repeat(5) + 'EXPN root\r\nVRFY root\r\nEXPN root\r\n');
  const replies = await repliesAfter(transport, 9);
  assert.equal(replies.length, 9);
  assert.equal(replies[6], '502 5.7.0 Sorry, we do not allow this operation');
  assert.equal(replies[7], replies[1]);
  assert.equal(replies[8], '502 5.7.0 Sorry, we do not allow this operation');

  const lines = attackLines(logs);
  assert.equal(lines.length, 1);
  assert.match(lines[0].line, /: possible SMTP attack: command=EXPN, count=6$/);
  // EXPN is refused, so it waits only the first part; VRFY also waits the rest after its lookup.
  assert.deepEqual(sleeps, [1, 1, 1, 1]);
});

test('ETRN counts only with a parameter', async (t) => {
  const sleeps = recordSleeps(t);
  const { session, transport, logs } = openSession();
  t.after(() => session.close());

  transport.send('ETRN\r\n' + 'ETRN remote.example\r\n'.repeat(9));
  const replies = await repliesAfter(transport, 11);
  assert.equal(replies.length, 11);
  assert.equal(replies[1], '500 5.5.2 Parameter required');
  for (const r of replies.slice(2)) assert.equal(r, '250 2.0.0 Queuing for node remote.example started');

  const lines = attackLines(logs);
  assert.equal(lines.length, 1);
  assert.match(lines[0].line, /: possible SMTP attack: command=ETRN, count=8$/);
  assert.deepEqual(sleeps, [1, 2]);
});

test('RSET and HELP are not counted', async (t) => {
  const sleeps = recordSleeps(t);
  const { session, transport, logs } = openSession();
  t.after(() => session.close());

  transport.send('RSET\r\n'.repeat(25) + 'HELP\r\n'.repeat(25));
  const replies = await repliesAfter(transport, 51);
  assert.equal(replies.length, 51);
  assert.deepEqual(attackLines(logs), []);
  assert.deepEqual(sleeps, []);
});

test('counts are kept per session', async (t) => {
  const sleeps = recordSleeps(t);
  const first = openSession();
  const second = openSession();
  t.after(() => first.session.close());
  t.after(() => second.session.close());

  first.transport.send('NOOP\r\n'.repeat(19));
  second.transport.send('NOOP\r\n'.repeat(19));
  await repliesAfter(first.transport, 20);
  await repliesAfter(second.transport, 20);
  assert.deepEqual(sleeps, []);
  assert.equal(commandCount(first.session, 'noop'), 19);

  first.transport.send('NOOP\r\n');
  await repliesAfter(first.transport, 21);
  assert.equal(attackLines(first.logs).length, 1);
  assert.deepEqual(attackLines(second.logs), []);
  assert.equal(commandCount(second.session, 'noop'), 19);
  assert.deepEqual(sleeps, [1]);
});

test('MaxDaemonChildren closes at twice the limit', async (t) => {
  const sleeps = recordSleeps(t);
  const { session, transport } = openSession({ MaxDaemonChildren: '5' });
  t.after(() => session.close());

  const replies = await converse(transport, [...Array<string>(6).fill('HELO a.example'), 'NOOP']);
  assert.equal(replies.length, 7);
  assert.match(replies[5], /^250 /);
  assert.match(replies[6], /^421 4\.7\.0 \S+ Too many bad commands; closing connection$/);
  assert.equal(transport.closed, true);
  // The sixth HELO waits its whole delay before the 421, as in sendmail.
  assert.deepEqual(sleeps, [1, 2, 4, 8]);
});

test('delay ends when the client stops sending', async (t) => {
  const signals: AbortSignal[] = [];
  const waitForAbort: Sleep = (_ms, signal) =>
    new Promise((resolve) => {
      signals.push(signal);
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  setAttackSleep(waitForAbort);
  t.after(() => setAttackSleep());
  const { session, transport } = openSession();
  t.after(() => session.close());

  transport.send('NOOP\r\n'.repeat(20));
  const before = await repliesAfter(transport, 20);
  // The replies to the first 19 are written out before the wait.
  assert.equal(before.length, 20);
  assert.equal(signals.length, 1);
  assert.equal(signals[0].aborted, false);

  transport.end();
  const after = await repliesAfter(transport, 21);
  assert.equal(signals[0].aborted, true);
  assert.equal(after[20], '250 2.0.0 OK');
});

test('resetHeloCount forgets HELO/EHLO', async (t) => {
  recordSleeps(t);
  const { session, transport } = openSession();
  t.after(() => session.close());

  await converse(transport, ['EHLO a.example', 'EHLO a.example']);
  assert.equal(commandCount(session, 'helo'), 2);
  resetHeloCount(session);
  assert.equal(commandCount(session, 'helo'), 0);
});

test('VRFY and EXPN log lines as sendmail 8.17 writes them', async () => {
  // sendmail: "<client>: VRFY root [rejected]" under novrfy, "<client>: VRFY" for an empty one.
  const refused = openSession({ PrivacyOptions: 'novrfy,noexpn' });
  await converse(refused.transport, ['VRFY root', 'EXPN root']);
  assert.deepEqual(
    // Each line starts with the session id, as sendmail's start with the queue id.
    refused.logs.map((l) => l.line.replace(/^\S+: /, '')).filter((l) => / (VRFY|EXPN) /.test(l)),
    ['client [127.0.0.1]: VRFY root [rejected]', 'client [127.0.0.1]: EXPN root [rejected]'],
  );
  const allowed = openSession();
  await converse(allowed.transport, ['HELO client.example', 'VRFY', 'VRFY <nobody@elsewhere.example>', 'EXPN root']);
  assert.deepEqual(
    allowed.logs.map((l) => l.line.replace(/^\S+: /, '')).filter((l) => /: (VRFY|EXPN)/.test(l)),
    ['client [127.0.0.1]: VRFY', 'client [127.0.0.1]: VRFY <nobody@elsewhere.example>', 'client [127.0.0.1]: EXPN root'],
  );
});

test('daemon answers 21 NOOPs and logs the count', async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());

  // Real delays: 1 s for the 20th NOOP, 2 s for the 21st.
  const replies = await rawSmtp(ph.port, ['EHLO client.example', ...Array<string>(21).fill('NOOP'), 'QUIT']);
  assert.equal(replies.length, 24);
  for (const r of replies.slice(2, 23)) assert.equal(r, '250 2.0.0 OK');
  assert.match(replies[23], /^221 /);

  await ph.waitForLog(/: localhost \[127\.0\.0\.1\]: possible SMTP attack: command=NOOP, count=20$/m);
  assert.equal(ph.logs().match(/possible SMTP attack/g)?.length, 1);
});
