// A kill between writing a lock's temporary file and removing it leaves
// ".lf<id>.<pid>.<suffix>"; queue recovery removes it once that pid is gone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { recoverQueue } from '../../src/queue/recovery';
import { Logger } from '../../src/log/logger';

test('recovery removes dead lock temp files', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-locktmp-'));
  try {
    // pid 2^22 + 1 is above Linux's pid_max limit, so no process has it.
    const dead = `.lf6B4GulGD029546.${2 ** 22 + 1}.4bbbfd57`;
    const live = `.lf6B4GulGG029546.${process.pid}.55dd4f1d`;
    fs.writeFileSync(path.join(dir, dead), '1\n');
    fs.writeFileSync(path.join(dir, live), `${process.pid}\n`);
    const report = await recoverQueue(dir, new Logger([], 0));
    assert.deepEqual(fs.readdirSync(dir), [live]);
    assert.deepEqual(report.removedTempFiles, ['6B4GulGD029546']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
