// Workers=2 with the counters that the primary shares between the workers:
// FEATURE(`conncontrol') and FEATURE(`ratecontrol') limits, MaxDaemonChildren
// and ConnectionRateThrottle hold across both workers as they do in one
// process, counts drop when sessions end, and a worker killed with SIGKILL
// leaves no counts behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { waitFor } from '../helpers/process';
import { makemap } from './policy-support';
import { holdGreeted } from '../helpers/reload';

const LIMITS = ['ClientConn:127.0.0.10\t2', 'ClientConn:127.0.0.12\t2', 'ClientRate:127.0.0.11\t2', 'ClientRate:\t0', ''].join('\n');

interface WorkerDaemon {
  ph: Posthorn;
  workers: number[];
}

async function startWorkers(
  t: { after(fn: () => Promise<void>): void },
  features: string[],
  args: string[] = [],
): Promise<WorkerDaemon> {
  const ph = await startPosthorn({
    mc: baseMc({
      extra: ["define(`confPID_FILE', `@DIR@/pid')", "FEATURE(`access_db', `hash -o @DIR@/access')", ...features],
    }),
    args: ['-O', 'Workers=2', '-O', 'DeliveryMode=queueonly', '-O', 'LogLevel=9', ...args],
    // The primary hands connections out in turn, so that the sessions of a
    // test reach both workers. When the workers accept themselves, the kernel
    // may give all of them to one.
    env: { NODE_CLUSTER_SCHED_POLICY: 'rr' },
  });
  t.after(() => ph.stop());
  assert.equal(makemap(path.join(ph.dir, 'access'), LIMITS).status, 0);
  const started = await ph.waitForLog(/started 2 workers: (\d+) (\d+)/);
  return { ph, workers: [Number(started[1]), Number(started[2])] };
}

/** Ends a held session with QUIT and waits until the server has closed it. */
function quit(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.once('close', () => resolve());
    socket.end('QUIT\r\n');
  });
}

/** Returns the pids of the processes that logged "did not issue MAIL" for a client address. */
function sessionPids(logs: string, address: string): Set<number> {
  const escaped = address.replace(/\./g, '\\.');
  const re = new RegExp(`posthorn\\[(\\d+)\\]: \\S+: \\[${escaped}\\] did not issue MAIL`, 'g');
  return new Set([...logs.matchAll(re)].map((m) => Number(m[1])));
}

function countMatches(text: string, re: RegExp): number {
  return (text.match(re) ?? []).length;
}

test('Workers=2: ClientConn holds across workers', async (t) => {
  const { ph, workers } = await startWorkers(t, ["FEATURE(`conncontrol')"]);
  const held = [await holdGreeted(ph.port, '127.0.0.10'), await holdGreeted(ph.port, '127.0.0.10')];
  t.after(() => held.forEach((s) => s.destroy()));

  const third = await rawSmtp(ph.port, ['EHLO c.example', 'MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.10' });
  assert.match(third[0], /^220 /);
  assert.equal(third[1], '250-mx.posthorn.test Hello [127.0.0.10], pleased to meet you\n250 ENHANCEDSTATUSCODES');
  assert.equal(third[2], '452 4.3.2 Too many open connections.');
  await ph.waitForLog(/ruleset=check_relay, arg1=\[127\.0\.0\.10\], arg2=127\.0\.0\.10, relay=\[127\.0\.0\.10\], reject=452 4\.3\.2 Too many open connections\./);

  // One held session ends. Its worker releases the count at the primary, and
  // the next connection may reach the other worker first, so it is retried.
  await quit(held[0]);
  const fourth = await waitFor(
    'a session from 127.0.0.10 to pass after one ended',
    async () => {
      const r = await rawSmtp(ph.port, ['MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.10' });
      return /^250 /.test(r[1] ?? '') ? r : undefined;
    },
    5_000,
    100,
  );
  assert.match(fourth[2], /^221 /);

  await quit(held[1]);
  // The third session, held[0] and held[1] log the line; the fourth issued MAIL.
  await waitFor('every session to end', () => countMatches(ph.logs(), /\[127\.0\.0\.10\] did not issue MAIL/g) >= 3);
  const pids = sessionPids(ph.logs(), '127.0.0.10');
  assert.deepEqual([...pids].sort(), [...workers].sort(), 'the sessions ran in both workers');
});

test('Workers=2: ClientRate holds across workers', async (t) => {
  const { ph, workers } = await startWorkers(t, ["FEATURE(`ratecontrol')"]);
  for (let i = 1; i <= 2; i++) {
    const ok = await rawSmtp(
      ph.port,
      ['MAIL FROM:<a@c.example>', 'RCPT TO:<alice@posthorn.test>', 'DATA', `Subject: rate ${i}\r\n\r\nbody\r\n.`, 'QUIT'],
      { localAddress: '127.0.0.11' },
    );
    assert.match(ok[4], /^250 /, `connection ${i} is within the limit: ${ok.join(' | ')}`);
  }
  const third = await rawSmtp(ph.port, ['EHLO c.example', 'MAIL FROM:<a@c.example>', 'QUIT'], { localAddress: '127.0.0.11' });
  assert.match(third[0], /^220 /);
  assert.equal(third[2], '452 4.3.2 Connection rate limit exceeded.');
  await ph.waitForLog(/ruleset=check_relay, arg1=\[127\.0\.0\.11\], arg2=127\.0\.0\.11, relay=\[127\.0\.0\.11\], reject=452 4\.3\.2 Connection rate limit exceeded\./);

  // The two accepted sessions logged their message; the third its rejection.
  const pids = new Set([...ph.logs().matchAll(/posthorn\[(\d+)\]: \S+: from=<a@c\.example>/g)].map((m) => Number(m[1])));
  const rejectedBy = Number(/posthorn\[(\d+)\]: \S+: ruleset=check_relay, arg1=\[127\.0\.0\.11\]/.exec(ph.logs())![1]);
  pids.add(rejectedBy);
  assert.deepEqual([...pids].sort(), [...workers].sort(), 'the connections went to both workers');
});

test('Workers=2: MaxDaemonChildren and SIGKILL release', async (t) => {
  const { ph, workers } = await startWorkers(t, ["FEATURE(`conncontrol', `', `terminate')"], ['-O', 'MaxDaemonChildren=2']);
  const held = [await holdGreeted(ph.port, '127.0.0.12'), await holdGreeted(ph.port, '127.0.0.12')];
  const closed = new Set<net.Socket>();
  for (const socket of held) socket.once('close', () => closed.add(socket));
  t.after(() => held.forEach((s) => s.destroy()));

  const rejected = await rawSmtp(ph.port, ['QUIT'], { localAddress: '127.0.0.20' });
  assert.deepEqual(rejected, [], 'the connection is closed without a greeting');
  await ph.waitForLog(/rejecting connections on daemon MTA: 2 children, max 2/);

  // A worker killed with SIGKILL cannot send releases: the primary drops its counts.
  for (const pid of workers) {
    process.kill(pid, 'SIGKILL');
    await ph.waitForLog(new RegExp(`worker ${pid} exited with signal SIGKILL; restarting it`));
    await waitFor(`sessions of worker ${pid} to close`, () => closed.size > 0 || undefined, 2_000).catch(() => undefined);
    if (closed.size > 0) {
      const line = await ph.waitForLog(new RegExp(`worker ${pid} exited: released its counts \\(sessions=(\\d+), client connections=(\\d+)\\)`));
      assert.equal(Number(line[1]), closed.size, 'sessions released');
      assert.equal(Number(line[2]), closed.size, 'client connections released');
      break;
    }
  }
  assert.ok(closed.size > 0, 'a held session was in a killed worker');
  await waitFor(
    'the restarted worker',
    () =>
      [...ph.logs().matchAll(/posthorn\[(\d+)\]: starting daemon \(Posthorn [^)]*\): SMTP$/gm)]
        .map((m) => Number(m[1]))
        .find((pid) => pid !== ph.proc.pid && !workers.includes(pid)),
    30_000,
  ).catch((err: Error) => assert.fail(`${err.message}\n${ph.logs()}\n${ph.output()}`));
  // Each released slot takes a new session from the same client, within both
  // MaxDaemonChildren and ClientConn; a leaked count would reject it.
  const fresh: net.Socket[] = [];
  t.after(() => fresh.forEach((s) => s.destroy()));
  for (let i = 0; i < closed.size; i++) fresh.push(await holdGreeted(ph.port, '127.0.0.12'));
  const over = await rawSmtp(ph.port, ['QUIT'], { localAddress: '127.0.0.21' });
  assert.deepEqual(over, [], 'the limit still holds after the release');
});

test('Workers=2: ConnectionRateThrottle counts both workers', async (t) => {
  const { ph } = await startWorkers(t, [], ['-O', 'ConnectionRateThrottle=3']);
  // Six connections in one clock second, three per worker: only the shared
  // count goes past 3. Starting early in a second keeps them in one second.
  await waitFor('the start of a clock second', () => Date.now() % 1000 < 100 || undefined, 2_000);
  const replies = await Promise.all(
    [1, 2, 3, 4, 5, 6].map((i) => rawSmtp(ph.port, ['QUIT'], { localAddress: `127.0.0.${30 + i}` })),
  );
  for (const r of replies) assert.match(r[0], /^220 /, 'deferred, not rejected');
  const line = await ph.waitForLog(/posthorn\[(\d+)\]: deferring connections on daemon MTA: 3 per second/);
  assert.notEqual(Number(line[1]), ph.proc.pid, 'a worker deferred the connection');
});
