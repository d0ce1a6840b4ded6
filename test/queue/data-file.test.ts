// The df writer: a small message is written once, at close(), and kept as
// `contents`; a large one goes out in batches written behind the caller, in
// order, and a failed batch write fails close() and removes the file.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BufferedDataFile } from '../../src/queue/data-file';
import { makeTempDir, removeDir } from './helpers';

function openWriter(file: string, flags = 'wx'): { writer: BufferedDataFile; removed: unknown[] } {
  const removed: unknown[] = [];
  const fd = fs.openSync(file, flags, 0o600);
  const writer = new BufferedDataFile(fd, {
    path: file,
    onError: async (err) => {
      removed.push(err);
      fs.rmSync(file, { force: true });
    },
  });
  return { writer, removed };
}

test('large body written in order', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const file = path.join(dir, 'df-large');
  const { writer } = openWriter(file);
  // Past the first MiB the batches grow from 256 KiB to 1 MiB.
  const body = crypto.randomBytes(3_300_000);
  // Chunks of many sizes, some larger than a batch, as socket reads arrive.
  let from = 0;
  for (const size of [1, 700, 65_536, 300_000, 17, 262_144, 5, 400_000, 1_048_576, 3, 1_100_000]) {
    await writer.write(body.subarray(from, from + size));
    from += size;
  }
  await writer.write(body.subarray(from));
  await writer.close();
  writer.release();

  assert.equal(writer.size, body.length);
  assert.equal(writer.contents, undefined, 'only a body that fitted in the first buffer is kept');
  assert.ok(fs.readFileSync(file).equals(body));
});

test('small body kept as contents', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const file = path.join(dir, 'df-small');
  const { writer } = openWriter(file);
  const body = Buffer.from('Subject: small\r\n\r\nbody\r\n');
  await writer.write(body.subarray(0, 10));
  await writer.write(body.subarray(10));
  assert.equal(fs.statSync(file).size, 0, 'nothing is written before close()');
  await writer.close();
  writer.release();

  assert.deepEqual(writer.contents, body);
  assert.deepEqual(fs.readFileSync(file), body);
});

test('failed batch write fails close', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const file = path.join(dir, 'df-failing');
  fs.writeFileSync(file, '');
  // A read-only descriptor: every write fails with EBADF.
  const { writer, removed } = openWriter(file, 'r');
  // The first buffer (64 KiB) fills and goes out behind the caller; its
  // failure must stop the write that next waits for it, before close().
  await writer.write(Buffer.alloc(65_536, 'a'));
  await assert.rejects(
    (async () => {
      for (let i = 0; i < 4; i++) await writer.write(Buffer.alloc(100_000, 'b'));
    })(),
    { code: 'EBADF' },
  );
  await assert.rejects(writer.close(), { code: 'EBADF' });
  assert.equal(removed.length, 1, 'onError ran once');
  assert.equal(fs.existsSync(file), false);
  await assert.rejects(writer.write(Buffer.from('x')));
});
