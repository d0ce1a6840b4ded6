// The spare buffers of the df writer and the body sender: kept by size, a
// bounded number of each, and never a buffer of another size.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool } from '../../src/queue/buffer-pool';

test('pool returns kept buffers by size', () => {
  const pool = new BufferPool([16, 64], 1);
  const small = pool.take(16);
  const large = pool.take(64);
  assert.equal(small.length, 16);
  assert.equal(large.length, 64);
  pool.give(small);
  pool.give(large);
  assert.equal(pool.take(16), small);
  assert.equal(pool.take(64), large);
});

test('pool keeps a bounded number', () => {
  const pool = new BufferPool([16], 1);
  const first = pool.take(16);
  const second = pool.take(16);
  pool.give(first);
  pool.give(second);
  assert.equal(pool.take(16), first);
  assert.notEqual(pool.take(16), second, 'the second one was not kept');
});

test('pool ignores other sizes', () => {
  const pool = new BufferPool([16], 4);
  const other = Buffer.alloc(32);
  pool.give(other);
  assert.notEqual(pool.take(32), other);
  assert.equal(pool.take(32).length, 32);
});
