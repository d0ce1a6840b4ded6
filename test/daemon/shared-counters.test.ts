// The counters shared by worker processes: the primary's CounterServer driven
// through cluster events with fake workers, and a worker's CounterClient over
// a fake channel, including the fallback to local counts after a timeout.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import cluster, { type Worker } from 'node:cluster';
import { CounterClient, CounterServer, type CounterChannel } from '../../src/daemon/shared-counters';
import { ConnectionRefusal } from '../../src/daemon/refuse-connections';
import { collectingLogger } from '../policy/helpers';

interface FakeWorker {
  worker: Worker;
  sent: unknown[];
  dead: boolean;
}

let nextWorkerId = 1000;

function fakeWorker(pid: number): FakeWorker {
  const fake: FakeWorker = { worker: undefined as unknown as Worker, sent: [], dead: false };
  fake.worker = {
    id: nextWorkerId++,
    process: { pid },
    isDead: () => fake.dead,
    isConnected: () => !fake.dead,
    send: (message: unknown) => {
      fake.sent.push(message);
      return true;
    },
  } as unknown as Worker;
  return fake;
}

const TAG = 'posthorn-counters';

/** Sends a request from a fake worker and returns the server's reply to it. */
function ask(fake: FakeWorker, request: Record<string, unknown>): Record<string, unknown> {
  cluster.emit('message', fake.worker, { tag: TAG, ...request });
  return fake.sent.at(-1) as Record<string, unknown>;
}

function tell(fake: FakeWorker, request: Record<string, unknown>): void {
  cluster.emit('message', fake.worker, { tag: TAG, ...request });
}

test('server counts sessions over workers against the maximum', (t) => {
  const { logger, lines } = collectingLogger();
  const refusal = new ConnectionRefusal(
    { refuseLA: 0, maxDaemonChildren: 2, rejectLogIntervalMs: 3_600_000, loadAverage: () => 0 },
    logger,
  );
  const server = new CounterServer(60_000, logger, refusal);
  t.after(() => server.close());
  const a = fakeWorker(101);
  const b = fakeWorker(102);
  assert.deepEqual(ask(a, { op: 'open-session', id: 1, daemon: 'MTA' }), { tag: TAG, id: 1, sessions: 0, counted: true });
  assert.deepEqual(ask(b, { op: 'open-session', id: 1, daemon: 'MTA' }), { tag: TAG, id: 1, sessions: 1, counted: true });
  assert.deepEqual(ask(a, { op: 'open-session', id: 2, daemon: 'MTA' }), { tag: TAG, id: 2, sessions: 2, counted: false });
  assert.deepEqual(ask(b, { op: 'open-session', id: 2, daemon: 'MTA' }), { tag: TAG, id: 2, sessions: 2, counted: false });
  assert.equal(server.openSessions(), 2, 'a rejected session is not counted');
  tell(b, { op: 'close-session' });
  assert.equal(server.openSessions(), 1);
  tell(b, { op: 'close-session' });
  assert.equal(server.openSessions(), 1, 'a worker cannot release more than it holds');
  assert.deepEqual(ask(b, { op: 'open-session', id: 3, daemon: 'MTA' }), { tag: TAG, id: 3, sessions: 1, counted: true });
  assert.deepEqual(lines, [
    'notice: rejecting connections on daemon MTA: 2 children, max 2',
    'info: accepting connections again for daemon MTA',
  ], 'the primary logs once for all workers');
});

test('server shares client counts and releases a dead worker', (t) => {
  const { logger, lines } = collectingLogger();
  const server = new CounterServer(60_000, logger);
  t.after(() => server.close());
  const a = fakeWorker(201);
  const b = fakeWorker(202);
  const first = ask(a, { op: 'open-client', id: 1, address: '192.0.2.1' });
  assert.deepEqual(first.counts, { clientRate: 1, totalRate: 1, clientConnections: 0 });
  const second = ask(b, { op: 'open-client', id: 1, address: '192.0.2.1' });
  assert.deepEqual(second.counts, { clientRate: 2, totalRate: 2, clientConnections: 1 });
  ask(a, { op: 'open-session', id: 2, daemon: 'MTA' });

  a.dead = true;
  cluster.emit('exit', a.worker, null, 'SIGKILL');
  assert.deepEqual(lines, ['info: worker 201 exited: released its counts (sessions=1, client connections=1)']);
  assert.equal(server.openSessions(), 0);
  const third = ask(b, { op: 'open-client', id: 2, address: '192.0.2.1' });
  assert.equal((third.counts as { clientConnections: number }).clientConnections, 1, "only b's connection is left");
  assert.equal((third.counts as { clientRate: number }).clientRate, 3, 'rates are not released');

  tell(a, { op: 'open-client', id: 3, address: '192.0.2.1' });
  assert.equal(a.sent.length, 2, 'a dead worker gets no reply');
});

test('server counts connections per second per daemon', (t) => {
  const { logger } = collectingLogger();
  const server = new CounterServer(60_000, logger);
  t.after(() => server.close());
  const a = fakeWorker(301);
  const b = fakeWorker(302);
  const counts = [ask(a, { op: 'count-second', id: 1, daemon: 'MTA' }), ask(b, { op: 'count-second', id: 1, daemon: 'MTA' })];
  const other = ask(a, { op: 'count-second', id: 2, daemon: 'MSA' });
  // Both requests normally fall in one clock second; across a second boundary the count restarts.
  assert.ok(counts[1].count === 2 || counts[1].count === 1, `count ${counts[1].count}`);
  assert.equal(counts[0].count, 1);
  assert.equal(other.count, 1);
});

/** A channel to a fake primary whose replies the test sends by hand. */
function fakeChannel(): CounterChannel & { sent: Array<Record<string, unknown>>; reply(message: Record<string, unknown>): void } {
  let listener: ((message: unknown) => void) | undefined;
  const sent: Array<Record<string, unknown>> = [];
  return {
    sent,
    send(message) {
      sent.push(message as Record<string, unknown>);
      return true;
    },
    listen(l) {
      listener = l;
      return () => (listener = undefined);
    },
    reply(message) {
      listener?.({ tag: TAG, ...message });
    },
  };
}

test('client uses the primary counts when it replies', async (t) => {
  const { logger } = collectingLogger();
  const channel = fakeChannel();
  const client = new CounterClient(60_000, logger, 1000, channel);
  t.after(() => client.close());
  const store = client.connectionStore();
  const pending = store.opened('192.0.2.9');
  assert.deepEqual(channel.sent[0], { tag: TAG, op: 'open-client', id: 1, address: '192.0.2.9' });
  const counts = { clientRate: 7, totalRate: 9, clientConnections: 3 };
  channel.reply({ id: 1, counts });
  assert.deepEqual(await pending, counts);
  store.closed('192.0.2.9');
  assert.deepEqual(channel.sent[1], { tag: TAG, op: 'close-client', address: '192.0.2.9' });
});

test('client falls back to local counts on timeout', async (t) => {
  const { logger, lines } = collectingLogger();
  const channel = fakeChannel();
  const client = new CounterClient(60_000, logger, 20, channel);
  t.after(() => client.close());
  const store = client.connectionStore();
  await store.opened('192.0.2.9');
  const counts = await store.opened('192.0.2.9');
  assert.deepEqual(counts, { clientRate: 2, totalRate: 2, clientConnections: 1 }, "this worker's own counts");
  assert.equal(lines.length, 1, 'the timeout is logged once a minute');
  assert.match(lines[0], /^err: shared counters: no reply from the primary within 20 ms \(timeouts so far: 1\); using this worker's own counts$/);
  assert.equal(await client.countSecond('MTA'), 1);
});

test('client releases a session counted after the timeout', async (t) => {
  const { logger } = collectingLogger();
  const channel = fakeChannel();
  const client = new CounterClient(60_000, logger, 20, channel);
  t.after(() => client.close());
  const lease = await client.openSession('MTA', 3);
  assert.equal(lease.sessions, 3, 'the local count after the timeout');
  lease.release();
  assert.equal(channel.sent.length, 1, 'nothing to release before the primary has counted');
  channel.reply({ id: 1, sessions: 4, counted: true });
  assert.deepEqual(channel.sent[1], { tag: TAG, op: 'close-session' }, 'the late count is released');

  assert.equal(lease.rejected, undefined, 'the worker decides after a timeout');

  const rejected = client.openSession('MTA', 0);
  channel.reply({ id: 2, sessions: 5, counted: false });
  const r = await rejected;
  assert.equal(r.rejected, true);
  assert.equal(r.sessions, 5);
  r.release();
  assert.equal(channel.sent.length, 3, 'a rejected session sends no release');
});

test('client without a channel uses local counts at once', async (t) => {
  const { logger, lines } = collectingLogger();
  const closed: CounterChannel = { send: () => false, listen: () => () => undefined };
  const client = new CounterClient(60_000, logger, 1000, closed);
  t.after(() => client.close());
  const lease = await client.openSession('MTA', 1);
  assert.equal(lease.sessions, 1);
  assert.deepEqual(lines, [], 'a closed channel is not a timeout');
});
