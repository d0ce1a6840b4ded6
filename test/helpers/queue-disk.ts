// A small tmpfs for the queue folder, for tests of a full disk.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';

/**
 * Mounts a tmpfs of `size` on a fresh folder, makes the queue folder on it and
 * unmounts it after the test. When mounting fails, the test fails in CI and is
 * skipped elsewhere, in which case this returns undefined and the caller must
 * return at once.
 */
export function mountQueueDisk(t: TestContext, size: string): { mountPoint: string; queueDir: string } | undefined {
  const mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', mountPoint], { stdio: 'pipe' });
  } catch (err) {
    fs.rmdirSync(mountPoint);
    const reason = `cannot mount a tmpfs (${(err as Error).message.split('\n')[0]})`;
    if (process.env.CI) assert.fail(reason);
    t.skip(reason);
    return undefined;
  }
  t.after(() => {
    execFileSync('umount', ['-l', mountPoint]);
    fs.rmdirSync(mountPoint);
  });
  const queueDir = path.join(mountPoint, 'mqueue');
  fs.mkdirSync(queueDir, { mode: 0o700 });
  return { mountPoint, queueDir };
}

/** Fills the file system of `file` until a write fails with ENOSPC, and returns the bytes written. */
export function fillDisk(file: string): number {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(4096, 0x61);
  let size = 0;
  try {
    for (;;) size += fs.writeSync(fd, chunk);
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    fs.closeSync(fd);
  }
  return size;
}
