import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openReadStreamNoFollow, readNoFollowSync, readBytesNoFollowSync, readTextNoFollow } from '../../src/queue/no-follow';

test('queue file reads refuse symlinks', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-nofollow-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const target = path.join(dir, 'secret');
  fs.writeFileSync(target, 'not for the queue\n');
  const link = path.join(dir, 'qfLINK');
  fs.symlinkSync(target, link);
  const plain = path.join(dir, 'qfPLAIN');
  fs.writeFileSync(plain, 'V8\n.\n');

  assert.throws(() => readBytesNoFollowSync(link), { code: 'ELOOP' });
  assert.throws(() => readNoFollowSync(link), { code: 'ELOOP' });
  await assert.rejects(readTextNoFollow(link), { code: 'ELOOP' });
  await assert.rejects(openReadStreamNoFollow(link), { code: 'ELOOP' });

  assert.equal(readBytesNoFollowSync(plain).toString(), 'V8\n.\n');
  assert.equal(await readTextNoFollow(plain), 'V8\n.\n');
  const chunks: Buffer[] = [];
  for await (const chunk of await openReadStreamNoFollow(plain)) chunks.push(chunk as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), 'V8\n.\n');
});
