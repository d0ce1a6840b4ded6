// Workers=2: two daemon worker processes share the listening socket and the
// queue; every message is delivered exactly once, both workers run sessions,
// and SIGTERM stops the primary and its workers and removes the PidFile.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { waitFor } from '../helpers/process';
import { makeMessage, sendRaw, startSinkHop } from '../helpers/e2e-setup';

const MESSAGES = 20;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('Workers=2: sessions in two workers, each message delivered once, SIGTERM stops all', async (t) => {
  const { ph, sink } = await startSinkHop(t, { args: ['-O', 'Workers=2'] });
  const primary = ph.proc.pid!;
  await ph.waitForLog(/started 2 workers: \d+ \d+/);

  // Five rounds of four connections at a time, one message each.
  const queueIds: string[] = [];
  for (let round = 0; round < MESSAGES / 4; round++) {
    const sent = await Promise.all(
      [0, 1, 2, 3].map((k) => {
        const n = round * 4 + k;
        return sendRaw({
          port: ph.port,
          from: 'carol@posthorn.test',
          to: ['alice@posthorn.test', 'bob@remote.example'],
          data: makeMessage({
            from: 'carol@posthorn.test',
            to: 'alice@posthorn.test, bob@remote.example',
            subject: `worker message ${n}`,
            body: `Body of message ${n}.`,
          }),
        });
      }),
    );
    for (const s of sent) {
      assert.notEqual(s.queueId, '', `not accepted: ${s.accepted}`);
      queueIds.push(s.queueId);
    }
  }
  assert.equal(new Set(queueIds).size, MESSAGES, 'queue ids are unique');

  const received = await sink.waitForMessages(MESSAGES, 30_000);
  await waitFor(
    'every delivery logged',
    () => (ph.logs().match(/stat=Sent/g) ?? []).length >= 2 * MESSAGES,
    30_000,
  );
  const mbox = await ph.waitForMailbox('alice', `Subject: worker message ${MESSAGES - 1}`, 30_000);

  // Exactly once: at the sink, in the mailbox, and in the log.
  const logs = ph.logs();
  assert.equal((logs.match(/stat=Sent/g) ?? []).length, 2 * MESSAGES, logs);
  assert.equal(sink.messages.length, MESSAGES);
  for (let n = 0; n < MESSAGES; n++) {
    const subject = `Subject: worker message ${n}\r\n`;
    assert.equal(received.filter((m) => m.data.toString('utf8').includes(subject)).length, 1, subject);
    const inMbox = mbox.split(`Subject: worker message ${n}\n`).length - 1;
    assert.equal(inMbox, 1, `message ${n} in the mailbox ${inMbox} times`);
  }

  // The sessions ran in two worker processes, not in the primary.
  const sessionPids = new Set<number>();
  for (const m of logs.matchAll(/posthorn\[(\d+)\]: \S+: from=<carol@posthorn\.test>/g)) sessionPids.add(Number(m[1]));
  assert.equal(sessionPids.size, 2, `session pids: ${[...sessionPids].join(' ')}\n${logs}`);
  assert.ok(!sessionPids.has(primary), 'the primary ran no session');
  const started = /started 2 workers: (\d+) (\d+)/.exec(logs)!;
  assert.deepEqual([...sessionPids].sort(), [Number(started[1]), Number(started[2])].sort());

  // The PidFile names the primary; SIGTERM stops the primary and both workers.
  const pidFile = path.join(ph.dir, 'sendmail.pid');
  assert.equal(fs.readFileSync(pidFile, 'utf8').split('\n')[0], String(primary));
  await ph.kill('SIGTERM');
  assert.equal(ph.proc.exitCode, 0, ph.output());
  assert.ok(!fs.existsSync(pidFile), 'PidFile removed');
  for (const pid of sessionPids) {
    await waitFor(`worker ${pid} to exit`, () => !alive(pid), 10_000);
  }
});

test('Workers=2: a worker killed with SIGKILL is restarted', async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'Workers=2'] });
  t.after(() => ph.stop());
  const [, a, b] = (await ph.waitForLog(/started 2 workers: (\d+) (\d+)/)).map(Number);
  process.kill(a, 'SIGKILL');
  await ph.waitForLog(new RegExp(`worker ${a} exited with signal SIGKILL; restarting it`));
  const fresh = await waitFor('a new worker', () =>
    [...ph.logs().matchAll(/posthorn\[(\d+)\]: starting daemon \(Posthorn [^)]*\): SMTP$/gm)]
      .map((m) => Number(m[1]))
      .find((pid) => pid !== a && pid !== b),
  );
  assert.ok(![a, b].includes(fresh), `new worker ${fresh}`);
  assert.ok(alive(fresh), `worker ${fresh} runs`);
  for (let n = 0; n < 4; n++) {
    const sent = await sendRaw({
      port: ph.port,
      from: 'carol@posthorn.test',
      to: ['alice@posthorn.test'],
      data: makeMessage({ from: 'carol@posthorn.test', to: 'alice@posthorn.test', subject: `after restart ${n}`, body: 'x' }),
    });
    assert.notEqual(sent.queueId, '', sent.accepted);
  }
  await ph.waitForMailbox('alice', 'Subject: after restart 3');
});

test('Workers=2: SIGHUP during start-up reloads, not stops', async (t) => {
  // The primary writes its PidFile before it starts the workers; SIGHUP goes at once after that.
  const mc = baseMc({ extra: ["define(`confPID_FILE', `@DIR@/posthorn.pid')"] });
  let sent = false;
  const ph = await startPosthorn({
    mc,
    args: ['-O', 'Workers=2'],
    onSpawn: (child, dir) => {
      const poll = setInterval(() => {
        if (child.exitCode !== null || !fs.existsSync(path.join(dir, 'posthorn.pid'))) return;
        clearInterval(poll);
        sent = child.kill('SIGHUP');
      }, 1);
      child.once('exit', () => clearInterval(poll));
    },
  });
  t.after(() => ph.stop());
  await waitFor('the SIGHUP', () => sent);
  await ph.waitForLog(/restarting posthorn due to signal/);
  assert.ok(alive(ph.proc.pid!), 'the primary runs');
  const reply = await sendRaw({
    port: ph.port,
    from: 'carol@posthorn.test',
    to: ['alice@posthorn.test'],
    data: makeMessage({ from: 'carol@posthorn.test', to: 'alice@posthorn.test', subject: 'after early SIGHUP', body: 'x' }),
  });
  assert.notEqual(reply.queueId, '', reply.accepted);
  await ph.waitForMailbox('alice', 'Subject: after early SIGHUP');
});

