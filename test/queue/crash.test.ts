import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { QueueStore } from '../../src/queue/store';
import { captureLogger, makeTempDir, removeDir } from './helpers';

// A child process commits messages of varying size without pause until it is
// killed with SIGKILL; every item left behind must then be complete.
const WRITER = `
const { QueueStore } = require(${JSON.stringify(path.join(__dirname, '../../src/queue/store'))});
const { Logger } = require(${JSON.stringify(path.join(__dirname, '../../src/log/logger'))});
const { sampleItem } = require(${JSON.stringify(path.join(__dirname, 'helpers'))});
const store = new QueueStore({ dir: process.argv[1], superSafe: 'true', logger: new Logger([]) });

async function session(n) {
  const id = store.newId();
  const writer = await store.openDataFile(id);
  const size = 1000 + (n % 7) * 40000;
  for (let sent = 0; sent < size; sent += 1000) await writer.write(Buffer.alloc(1000, 97 + (n % 26)));
  await writer.close();
  await store.commit({ ...sampleItem(id), bodySize: writer.size });
}

async function main() {
  await store.init();
  for (let n = 0; ; n += 4) {
    await Promise.all([0, 1, 2, 3].map((k) => session(n + k)));
    // The kill is timed from the first committed batch, so that a slow machine still leaves items.
    if (n === 0) process.stdout.write('committed\\n');
  }
}
main();
`;

/** Runs WRITER in `dir` and kills it `afterFirstMs` after its first committed batch. */
function runUntilKilled(dir: string, afterFirstMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', WRITER, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.once('data', () => setTimeout(() => child.kill('SIGKILL'), afterFirstMs));
    child.once('error', reject);
    child.once('exit', (_code, signal) => {
      if (signal === 'SIGKILL') resolve();
      else reject(new Error(`writer exited with ${signal ?? _code}`));
    });
  });
}

test('queue survives kill during commits', async () => {
  const dir = makeTempDir();
  for (const delay of [50, 120, 200]) {
    await runUntilKilled(dir, delay);

    const store = new QueueStore({ dir, superSafe: 'true', logger: captureLogger().logger });
    await store.init();
    const ids = await store.list();
    assert.ok(ids.length > 0, `no item left ${delay} ms after the first commit`);
    assert.deepEqual(await store.list('Qf'), []);

    for (const id of ids) {
      const item = await store.read(id);
      const data = fs.readFileSync(store.dataPath(id));
      assert.equal(data.length, item.bodySize, `df${id} is complete`);
    }
  }
  removeDir(dir);
});
