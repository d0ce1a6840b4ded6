// kill -9 of the daemon and of `posthorn -qf` queue runners, mixed, while
// clients send mail and the daemon runs the queue every second. Afterwards
// every message that got a 250 has reached the next hop. Nothing is left in
// the queue folder: no control file, no Qf, no tf or df of a commit that a
// kill cut off, no lock and no .lfpid file.
//
// Before the fixes this ended with tf/df pairs of killed daemons (recovery
// kept a tf younger than a minute, and the restarted daemon never runs
// recovery again), and now and then with an item delivered by two processes
// at once and left as Qf<id> ("Deferred: ENOENT ... df<id>", then "data file
// df<id> is missing"): the restarted daemon's recovery removed a stale lock
// that a queue runner had just taken over (see break14-stale-lock.test.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { baseMc, posthornBin, startPosthorn } from '../helpers/posthorn';
import { startSink } from '../helpers/sink';
import { freePort, sleep } from '../helpers/process';

const KILLS = 12;
const CLIENTS = 4;

/** Returns a fixed pseudo-random sequence, so that a failure can be run again. */
function lcg(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/** Sends one message; resolves with true when the final dot got a 250. */
function sendOne(port: number, tag: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const commands = [
      'EHLO crash.example\r\n',
      'MAIL FROM:<crash@posthorn.test>\r\n',
      'RCPT TO:<sink@remote.example>\r\n',
      'DATA\r\n',
      `Subject: ${tag}\r\nX-Tag: ${tag}\r\n\r\nbody of ${tag}\r\n.\r\n`,
    ];
    let step = 0;
    let buffer = '';
    let accepted = false;
    const timer = setTimeout(() => socket.destroy(), 20_000);
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      for (let m = /^(\d{3}) [^\r\n]*\r\n/m.exec(buffer); m !== null; m = /^(\d{3}) [^\r\n]*\r\n/m.exec(buffer)) {
        buffer = buffer.slice(m.index + m[0].length);
        let want = '250';
        if (step === 0) want = '220';
        if (step === 4) want = '354';
        if (m[1] !== want) {
          socket.destroy();
          return;
        }
        if (step === commands.length) {
          accepted = true;
          socket.end('QUIT\r\n');
          return;
        }
        socket.write(commands[step++]);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(accepted);
    });
  });
}

test('kill -9 of daemon and runners', { timeout: 600_000 }, async (t) => {
  const random = lcg(14);
  const sinkPort = await freePort('127.0.0.1');
  const sink = await startSink({ host: '127.0.0.1', port: sinkPort });
  t.after(() => sink.close());
  const ph = await startPosthorn({
    mc: baseMc({ extra: ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sinkPort}')`] }),
    args: ['-q1s', '-O', 'RefuseLA=0', '-O', 'QueueLA=0'],
  });
  t.after(() => ph.stop());

  const runners = new Set<ChildProcess>();
  const accepted: string[] = [];
  let sent = 0;
  let restarting: Promise<void> | undefined;
  let stopping = false;
  const client = async (): Promise<void> => {
    while (!stopping) {
      if (restarting) await restarting;
      const tag = `c${sent++}`;
      if (await sendOne(ph.port, tag)) accepted.push(tag);
    }
  };
  const clients = Array.from({ length: CLIENTS }, client);

  for (let kills = 0; kills < KILLS; kills++) {
    await sleep(100 + Math.floor(random() * 300));
    if (random() < 0.5) {
      let done = (): void => undefined;
      restarting = new Promise((resolve) => (done = resolve));
      await ph.kill('SIGKILL');
      await ph.restart();
      restarting = undefined;
      done();
    } else {
      const runner = spawn(process.execPath, [posthornBin, '-C', ph.mcPath, '-qf'], { stdio: 'ignore' });
      runners.add(runner);
      const exited = new Promise((resolve) => runner.once('exit', resolve));
      await sleep(50 + Math.floor(random() * 400));
      runner.kill('SIGKILL');
      await exited;
      runners.delete(runner);
    }
  }
  stopping = true;
  await Promise.all(clients);

  // Drain: the daemon's own runs plus explicit ones, bounded.
  for (let round = 0; round < 30; round++) {
    const delivered = new Set(sink.messages.map((m) => /^X-Tag: (\S+)/m.exec(m.data.toString('latin1'))?.[1]));
    const queued = ph.queueFiles().filter((f) => f.startsWith('qf'));
    if (queued.length === 0 && accepted.every((tag) => delivered.has(tag))) break;
    await ph.run(['-qf']);
    await sleep(500);
  }
  await ph.kill('SIGTERM');
  const last = await ph.run(['-qf']);
  assert.equal(last.code, 0, last.stderr);

  const delivered = new Set(sink.messages.map((m) => /^X-Tag: (\S+)/m.exec(m.data.toString('latin1'))?.[1]));
  assert.ok(accepted.length > 0, 'no message was accepted');
  assert.deepEqual(accepted.filter((tag) => !delivered.has(tag)), [], 'accepted but never delivered');
  assert.deepEqual(ph.queueFiles(), [], 'left in the queue folder');
  const damaged = ph.logs().split('\n').filter((l) => /renamed to Qf|delivery failed|queue recovery failed/.test(l));
  assert.deepEqual(damaged, []);
});
