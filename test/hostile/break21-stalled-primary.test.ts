// Workers=2 and MaxDaemonChildren=2 while the primary sends no replies (here
// it is stopped with SIGSTOP, like a primary busy for more than
// COUNTER_TIMEOUT_MS). The workers now accept connections themselves, so they
// still accept during the stall and fall back to their own counts after 1 s.
// docs/workers.md states that each limit then still applies per worker, so at
// most Workers times the limit in all. But a worker takes its own session
// count when the connection is accepted, before it waits for the primary,
// and counts the session only after the wait. So every connection of a burst
// counted 0 open sessions, and all of them got a greeting. With
// NODE_CLUSTER_SCHED_POLICY=rr the stopped primary accepts nothing, so the
// connections wait and the limit applies once it runs again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { baseMc, startPosthorn } from '../helpers/posthorn';

const LIMIT = 2;
const WORKERS = 2;
const BURST = 10;

/** Connects and returns the first reply line, or '' when the server closes the connection without one. */
function firstLine(port: number): Promise<{ socket: net.Socket; line: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let buffered = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('timed out after 20 s waiting for a greeting or a close'));
    }, 20_000);
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      const end = buffered.indexOf('\n');
      if (end < 0) return;
      clearTimeout(timer);
      resolve({ socket, line: buffered.slice(0, end).replace(/\r$/, '') });
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ socket, line: '' });
    });
  });
}

test('Workers=2: MaxDaemonChildren while the primary stalls', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({
    mc: baseMc(),
    args: ['-O', `Workers=${WORKERS}`, '-O', 'DeliveryMode=queueonly', '-O', `MaxDaemonChildren=${LIMIT}`],
  });
  const primary = ph.proc.pid!;
  t.after(async () => {
    process.kill(primary, 'SIGCONT');
    await ph.stop();
  });
  await ph.waitForLog(/started 2 workers/);

  process.kill(primary, 'SIGSTOP');
  const sessions = await Promise.all(Array.from({ length: BURST }, () => firstLine(ph.port)));
  process.kill(primary, 'SIGCONT');
  t.after(() => sessions.forEach((s) => s.socket.destroy()));

  await ph.waitForLog(/shared counters: no reply from the primary within 1000 ms/);
  const greeted = sessions.filter((s) => s.line.startsWith('220 ')).length;
  const closed = sessions.filter((s) => s.line === '').length;
  assert.equal(greeted + closed, BURST, sessions.map((s) => s.line).join('\n'));
  assert.ok(greeted <= WORKERS * LIMIT, `${greeted} of ${BURST} sessions greeted, at most ${WORKERS * LIMIT} expected`);
});
