import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialPriority, precedenceClass, retryPriority } from '../../src/queue/priority';

test('initialPriority uses sendmail defaults', () => {
  assert.equal(initialPriority(1234, 1), 1234 + 30000);
  assert.equal(initialPriority(1000, 2, 100), 1000 - 100 * 1800 + 2 * 30000);
  assert.equal(initialPriority(1000, 1, -60), 1000 + 60 * 1800 + 30000);
});

test('initialPriority takes custom factors', () => {
  const factors = { classFactor: 10, recipientFactor: 100 };
  assert.equal(initialPriority(50, 3, -30, factors), 50 + 300 + 300);
});

test('retryPriority adds RetryFactor', () => {
  assert.equal(retryPriority(31234), 121234);
  assert.equal(retryPriority(0, { retryFactor: 5 }), 5);
});

test('precedenceClass maps sendmail.cf classes', () => {
  assert.equal(precedenceClass('first-class'), 0);
  assert.equal(precedenceClass('special-delivery'), 100);
  assert.equal(precedenceClass('list'), -30);
  assert.equal(precedenceClass(' Bulk '), -60);
  assert.equal(precedenceClass('JUNK'), -100);
});

test('precedenceClass of unknown value is 0', () => {
  assert.equal(precedenceClass('urgent'), 0);
  assert.equal(precedenceClass(''), 0);
  assert.equal(precedenceClass(undefined), 0);
});
