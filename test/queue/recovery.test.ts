import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { serializeControlFile } from '../../src/queue/qf';
import { QueueStore } from '../../src/queue/store';
import { captureLogger, makeTempDir, removeDir, sampleItem } from './helpers';

const GOOD = 'k5KCE4Kb012345';
const BAD = 'k5KCE4Kc012345';
const NO_DATA = 'k5KCE4Kd012345';
const ORPHAN = 'k5KCE4Ke012345';
// A commit in progress: its id names a live process (this one), as the receiving process's ids do.
const YOUNG = `k5KCE4Kf${String(process.pid).padStart(6, '0')}`;

const TWO_HOURS_AGO = new Date(Date.now() - 2 * 60 * 60 * 1000);

function write(dir: string, name: string, content: string, old = false): void {
  fs.writeFileSync(`${dir}/${name}`, content);
  if (old) fs.utimesSync(`${dir}/${name}`, TWO_HOURS_AGO, TWO_HOURS_AGO);
}

test('recovery keeps complete items', async () => {
  const dir = makeTempDir();
  write(dir, `df${GOOD}`, 'body\r\n', true);
  write(dir, `qf${GOOD}`, serializeControlFile(sampleItem(GOOD)), true);
  const { logger, lines } = captureLogger();
  const store = new QueueStore({ dir, superSafe: 'true', logger });
  await store.init();

  assert.deepEqual(await store.list(), [GOOD]);
  assert.deepEqual(await store.read(GOOD), sampleItem(GOOD));
  assert.deepEqual(lines, []);
  removeDir(dir);
});

test('recovery removes old tf leftovers', async () => {
  const dir = makeTempDir();
  write(dir, `df${GOOD}`, 'body\r\n', true);
  write(dir, `qf${GOOD}`, serializeControlFile(sampleItem(GOOD)), true);
  write(dir, `tf${GOOD}`, 'V8\nT1\n', true);
  write(dir, `df${YOUNG}`, 'body\r\n');
  write(dir, `tf${YOUNG}`, 'V8\n');
  const { logger, lines } = captureLogger();
  const store = new QueueStore({ dir, superSafe: 'true', logger });
  await store.init();

  const names = fs.readdirSync(dir).sort();
  assert.deepEqual(names, [`df${GOOD}`, `df${YOUNG}`, `qf${GOOD}`, `tf${YOUNG}`]);
  assert.deepEqual(store.recovery?.removedTempFiles, [GOOD]);
  assert.ok(lines.some((l) => l.startsWith(`${GOOD}: removed tf${GOOD}`)));
  removeDir(dir);
});

test('recovery leaves a bad qf to its first reader, which renames it to Qf', async () => {
  const dir = makeTempDir();
  const truncated = serializeControlFile(sampleItem(BAD)).slice(0, 40);
  write(dir, `df${BAD}`, 'body\r\n', true);
  write(dir, `qf${BAD}`, truncated, true);
  write(dir, `df${GOOD}`, 'body\r\n', true);
  write(dir, `qf${GOOD}`, serializeControlFile(sampleItem(GOOD)), true);
  const { logger, lines } = captureLogger();
  const store = new QueueStore({ dir, superSafe: 'true', logger });
  await store.init();
  // Recovery reads no control file, so a deep queue is checked quickly.
  assert.deepEqual((await store.list()).sort(), [GOOD, BAD].sort());
  assert.deepEqual(lines, []);

  const reason = await store.read(BAD).then(
    () => 'parsed',
    (err: Error) => err.message,
  );
  assert.equal(await store.setAside(BAD, reason), true);
  assert.deepEqual(await store.list(), [GOOD]);
  assert.deepEqual(await store.list('Qf'), [BAD]);
  assert.equal(fs.readFileSync(`${dir}/Qf${BAD}`, 'utf8'), truncated);
  assert.ok(fs.existsSync(`${dir}/df${BAD}`), 'the data file is kept');
  assert.deepEqual(lines, [
    `${BAD}: unparseable control file, renamed to Qf${BAD}: line 7: last line has no newline (file is truncated)`,
  ]);
  removeDir(dir);
});

test('recovery sets aside qf without df', async () => {
  const dir = makeTempDir();
  write(dir, `qf${NO_DATA}`, serializeControlFile(sampleItem(NO_DATA)), true);
  const { logger, lines } = captureLogger();
  const store = new QueueStore({ dir, superSafe: 'true', logger });
  await store.init();

  assert.deepEqual(fs.readdirSync(dir), [`Qf${NO_DATA}`]);
  assert.match(lines[0], /data file df\w+ is missing, control file renamed to Qf\w+$/);
  removeDir(dir);
});

test('recovery removes old or dead orphan df', async () => {
  // An orphan df goes when it is old or its receiving process is gone.
  const dir = makeTempDir();
  // The id ends with the pid of the receiving process.
  const live = `k5KCE4Kf${String(process.ppid).padStart(6, '0')}`;
  const dead = `k5KCE4Kg${String(spawnSync(process.execPath, ['-e', '']).pid).padStart(6, '0')}`;
  const oldLive = `k5KCE4Kh${String(process.ppid).padStart(6, '0')}`;
  write(dir, `df${oldLive}`, 'body\r\n', true);
  write(dir, `df${live}`, 'body\r\n');
  write(dir, `df${dead}`, 'body\r\n');
  write(dir, 'unrelated-file', 'x', true);
  const { logger, lines } = captureLogger();
  const store = new QueueStore({ dir, superSafe: 'true', logger });
  await store.init();

  assert.deepEqual(fs.readdirSync(dir).sort(), [`df${live}`, 'unrelated-file']);
  assert.deepEqual(lines.sort(), [
    `${dead}: removed data file df${dead} without control file`,
    `${oldLive}: removed data file df${oldLive} without control file`,
  ].sort());
  removeDir(dir);
});

test('recovery removes dead df.milter files', async () => {
  // A filter's replacement body goes once its receiving process is gone.
  const dir = makeTempDir();
  const live = `k5KCE4Kf${String(process.ppid).padStart(6, '0')}`;
  const dead = `k5KCE4Kg${String(spawnSync(process.execPath, ['-e', '']).pid).padStart(6, '0')}`;
  write(dir, `df${live}.milter`, 'new body\r\n');
  write(dir, `df${dead}.milter`, 'new body\r\n');
  write(dir, `df${dead}`, 'old body\r\n');
  write(dir, `qf${dead}`, serializeControlFile(sampleItem(dead)));
  const { logger, lines } = captureLogger();
  const store = new QueueStore({ dir, superSafe: 'true', logger });
  await store.init();

  assert.deepEqual(fs.readdirSync(dir).sort(), [`df${dead}`, `df${live}.milter`, `qf${dead}`].sort());
  assert.deepEqual(lines, [`${dead}: removed df${dead}.milter left by an interrupted mail filter body replacement`]);
  removeDir(dir);
});

test('recovery removes stale locks', async () => {
  const dir = makeTempDir();
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  write(dir, `df${GOOD}`, 'body\r\n', true);
  write(dir, `qf${GOOD}`, serializeControlFile(sampleItem(GOOD)), true);
  write(dir, `lf${GOOD}`, `${dead}\n`);
  write(dir, `lf${BAD}`, `${process.pid}\n`);
  write(dir, `lf${YOUNG}`, `${process.ppid}\n`);
  const store = new QueueStore({ dir, superSafe: 'true', logger: captureLogger().logger });
  await store.init();

  assert.deepEqual(fs.readdirSync(dir).sort(), [`df${GOOD}`, `lf${YOUNG}`, `qf${GOOD}`]);
  removeDir(dir);
});

test('recovery keeps newer of qf and hf', async () => {
  const dir = makeTempDir();
  const quarantined = { ...sampleItem(GOOD), quarantine: 'held' };
  write(dir, `df${GOOD}`, 'body\r\n', true);
  write(dir, `qf${GOOD}`, serializeControlFile(sampleItem(GOOD)), true);
  write(dir, `hf${GOOD}`, serializeControlFile(quarantined));
  const store = new QueueStore({ dir, superSafe: 'true', logger: captureLogger().logger });
  await store.init();

  assert.deepEqual(fs.readdirSync(dir).sort(), [`df${GOOD}`, `hf${GOOD}`]);
  assert.deepEqual(await store.read(GOOD), quarantined);
  removeDir(dir);
});

test('recovery creates missing directory', async () => {
  const parent = makeTempDir();
  const dir = `${parent}/spool/mqueue`;
  const store = new QueueStore({ dir, superSafe: 'true', logger: captureLogger().logger });
  await store.init();
  assert.deepEqual(fs.readdirSync(dir), []);
  removeDir(parent);
});
