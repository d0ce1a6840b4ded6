// Hostile sort key caches (.sortkeys-qf) in a queue of 5,000 items, the depth
// from which queue runs and mailq use the cache. The cache may change the
// order of a run, but it must never make a run skip an item or hang:
//  - a cache whose records carry each file's right inode, size and time but
//    mark every item quarantined (a run reads such an item's head again
//    before it leaves the item out);
//  - a FIFO named .sortkeys-qf (opened without waiting, and not read).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startSinkHop } from '../helpers/e2e-setup';
import { fillQueue } from '../helpers/queue-fill';
import { rawSmtp } from '../helpers/clients';
import { posthornBin } from '../helpers/posthorn';
import { runCommand, waitFor } from '../helpers/process';

const ITEMS = 5000;
const HEADER_BYTES = 16;
const RECORD_BYTES = 16 + 8 * 8;
/** Byte offset of the quarantined flag (the 8th number) in a record. */
const QUARANTINED_AT = 16 + 7 * 8;

/** Returns `cache` with the quarantined flag of every record set, the other numbers kept. */
function markAllQuarantined(cache: Buffer): Buffer {
  const out = Buffer.from(cache);
  const count = out.readUInt32LE(8);
  const littleEndian = out[12] === 1;
  for (let r = 0; r < count; r++) {
    const at = HEADER_BYTES + r * RECORD_BYTES + QUARANTINED_AT;
    if (littleEndian) out.writeDoubleLE(1, at);
    else out.writeDoubleBE(1, at);
  }
  return out;
}

test('hostile sort key caches', { timeout: 900_000 }, async (t) => {
  const { ph, sink } = await startSinkHop(t, { args: ['-O', 'DeliveryMode=queueonly'] });
  const messages = Array.from({ length: ITEMS }, (_, i) => ({
    from: 'alice@posthorn.test',
    to: ['bob@remote.example'],
    subject: `cached ${i}`,
    body: `item ${i}`,
  }));
  await fillQueue(ph.port, messages, { connections: 8, timeoutMs: 600_000 });

  // A daemon queue run that selects nothing writes the cache of every item.
  const cachePath = path.join(ph.queueDir, '.sortkeys-qf');
  const etrn = await rawSmtp(ph.port, ['EHLO client.posthorn.test', 'ETRN nowhere.example', 'QUIT']);
  assert.equal(etrn[2], '250 2.0.0 Queuing for node nowhere.example started');
  await waitFor('the sort key cache', () => fs.existsSync(cachePath), 60_000, 200);
  const goodCache = fs.readFileSync(cachePath);
  assert.equal(goodCache.length, HEADER_BYTES + ITEMS * RECORD_BYTES);

  const command = (args: string[]) =>
    runCommand(process.execPath, [posthornBin, '-C', ph.mcPath, ...args], { cwd: ph.dir, timeoutMs: 30_000 });

  await t.test('FIFO cache and mailq', async () => {
    fs.rmSync(cachePath);
    execFileSync('mkfifo', [cachePath]);
    try {
      const mailq = await command(['-bp']);
      assert.equal(mailq.signal, null, 'mailq was killed after 30 s');
      assert.match(mailq.stdout, new RegExp(`Total requests: ${ITEMS}`));
      // mailq wrote a new cache in place of the FIFO before it exited.
      assert.ok(fs.statSync(cachePath).isFile(), 'a regular cache file');
      assert.equal(fs.statSync(cachePath).size, HEADER_BYTES + ITEMS * RECORD_BYTES);
    } finally {
      try {
        fs.closeSync(fs.openSync(cachePath, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
      } catch {
        // ENXIO: no reader is waiting.
      }
      fs.rmSync(cachePath, { force: true });
    }
  });

  await t.test('lying cache and posthorn -qf', async () => {
    const temp = `${cachePath}.planted`;
    fs.writeFileSync(temp, markAllQuarantined(goodCache));
    fs.renameSync(temp, cachePath);

    const mailq = await command(['-bp']);
    assert.match(mailq.stdout, new RegExp(`Total requests: ${ITEMS}`));

    const run = await command(['-qf']);
    assert.equal(run.code, 0);
    // posthorn -qf returns once its deliveries are done.
    assert.equal(sink.messages.length, ITEMS, 'every item reaches the next hop');
  });
});
