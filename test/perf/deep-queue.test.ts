// Deep queues: queue recovery works from the directory listing and runs in the
// background, a control file that cannot be parsed is set aside by its first
// reader, and mailq prints its header before it reads the control files.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Logger } from '../../src/log/logger';
import { serializeControlFile } from '../../src/queue/qf';
import { recoverQueue } from '../../src/queue/recovery';
import { QueueStore } from '../../src/queue/store';
import { streamMailq } from '../../src/queue/mailq-stream';
import { quoteRe, startSinkHop } from '../helpers/e2e-setup';
import { captureLogger, makeTempDir, removeDir, sampleItem } from '../queue/helpers';

/** Commits one item to remote.example through the store, as the daemon would. */
async function addItem(store: QueueStore, priority: number, subject: string): Promise<string> {
  const id = store.newId();
  const body = Buffer.from(`Subject: ${subject}\r\n\r\n${subject}\r\n`);
  const writer = await store.openDataFile(id);
  await writer.write(body);
  await writer.close();
  await store.commit({
    id,
    created: Math.floor(Date.now() / 1000) - 60,
    lastAttempt: 0,
    attempts: 0,
    priority,
    flags: '',
    macros: new Map([['r', 'ESMTP']]),
    sender: 'alice@posthorn.test',
    recipients: [{ address: `bob@remote.example`, state: 'pending' }],
    headers: [`Subject: ${subject}`],
    bodySize: body.length,
  });
  return id;
}

test('recovery running beside deliveries keeps the locks this process holds', async () => {
  const dir = makeTempDir();
  const store = new QueueStore({ dir, superSafe: 'false', logger: captureLogger().logger });
  await store.init({ recover: false });
  const id = await addItem(store, 1000, 'held');
  assert.equal(await store.lock(id), true);
  const leftover = 'k5KCE4Kb012345';
  fs.writeFileSync(path.join(dir, `lf${leftover}`), `${process.pid}\n`);

  await store.init({ background: true });
  await store.recovered();
  assert.ok(fs.existsSync(path.join(dir, `lf${id}`)), 'a held lock must stay');
  assert.ok(!fs.existsSync(path.join(dir, `lf${leftover}`)), 'a lock with this pid that is not held is a leftover');
  assert.equal(store.recoveryRunning, false);

  // A plain recovery, without the store's locks, still checks the locks this
  // process has taken. A lock with this pid that nothing here has taken (an
  // earlier process with the same pid left it) goes, and a taken one stays.
  fs.writeFileSync(path.join(dir, `lf${leftover}`), `${process.pid}\n`);
  await recoverQueue(dir, new Logger([], 0));
  assert.ok(!fs.existsSync(path.join(dir, `lf${leftover}`)));
  assert.ok(fs.existsSync(path.join(dir, `lf${id}`)));
  removeDir(dir);
});

test('recovery reads no control file but sets aside a qf without df', async () => {
  const dir = makeTempDir();
  const bad = 'k5KCE4Kc012345';
  const lost = 'k5KCE4Kd012345';
  fs.writeFileSync(path.join(dir, `qf${bad}`), 'garbage\n');
  fs.writeFileSync(path.join(dir, `df${bad}`), 'body\r\n');
  fs.writeFileSync(path.join(dir, `qf${lost}`), serializeControlFile(sampleItem(lost)));
  const { logger, lines } = captureLogger();
  const store = new QueueStore({ dir, superSafe: 'false', logger });
  await store.init();
  assert.deepEqual(fs.readdirSync(dir).sort(), [`Qf${lost}`, `df${bad}`, `qf${bad}`]);
  assert.deepEqual(lines, [`${lost}: data file df${lost} is missing, control file renamed to Qf${lost}`]);
  removeDir(dir);
});

test('streamed mailq: header from the listing, entries in QueueSortOrder', async () => {
  const dir = makeTempDir();
  const store = new QueueStore({ dir, superSafe: 'false', logger: captureLogger().logger });
  await store.init({ recover: false });
  const ids = [await addItem(store, 3000, 'c'), await addItem(store, 1000, 'a'), await addItem(store, 2000, 'b')];
  const listed = async (order: 'priority' | 'filename' | 'none'): Promise<{ pieces: string[]; ids: string[] }> => {
    const pieces: string[] = [];
    await streamMailq(store, '/q', { kind: 'qf', order, minQueueAgeMs: 0, write: async (t) => void pieces.push(t) });
    const text = pieces.join('');
    return { pieces, ids: [...text.matchAll(/^ *(\w{14}) /gm)].map((m) => m[1]) };
  };

  const byPriority = await listed('priority');
  assert.match(byPriority.pieces[0], /^\t\t\/q \(3 requests\)\n-----Q-ID-----/, 'the header is written first, alone');
  assert.equal(byPriority.pieces[0].split('\n').length, 3);
  assert.deepEqual(byPriority.ids, [ids[1], ids[2], ids[0]]);
  assert.equal(byPriority.pieces.at(-1), '\t\tTotal requests: 3\n');
  assert.deepEqual((await listed('filename')).ids, [...ids].sort());
  assert.deepEqual((await listed('none')).ids.sort(), [...ids].sort());
  removeDir(dir);
});

test('a queue run sets aside an unparseable qf and delivers the rest', async (t) => {
  const { ph, sink } = await startSinkHop(t, { args: ['-O', 'DeliveryMode=queueonly'] });

  const store = new QueueStore({ dir: ph.queueDir, superSafe: 'false', logger: new Logger([], 0) });
  const good = await addItem(store, 1000, 'good item');
  const bad = await addItem(store, 2000, 'bad item');
  fs.writeFileSync(path.join(ph.queueDir, `qf${bad}`), 'V8\nT1\nK0\nN0\nP2000\nSalice@posthorn.test\nRP:bob@remote.example');

  const mailq = await ph.run(['-bp']);
  assert.equal(mailq.code, 0, mailq.stderr);
  assert.match(mailq.stdout, /\(2 requests\)/);
  assert.match(mailq.stdout, new RegExp(`${bad} \\(unreadable control file: `));

  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  const [message] = await sink.waitForMessages(1, 20_000);
  assert.match(message.data.toString('latin1'), /^Subject: good item\r$/m);
  assert.ok(ph.queueFiles().includes(`Qf${bad}`), ph.queueFiles().join(' '));
  assert.ok(!ph.queueFiles().some((f) => f.endsWith(good)), ph.queueFiles().join(' '));
  assert.match(ph.logs(), new RegExp(`${quoteRe(bad)}: unparseable control file, renamed to Qf${quoteRe(bad)}: `));
  assert.equal(sink.messages.length, 1);
});
