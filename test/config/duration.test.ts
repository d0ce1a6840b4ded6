import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, formatDuration } from '../../src/config/duration';

test('parseDuration units', () => {
  assert.equal(parseDuration('45s', 'm'), 45_000);
  assert.equal(parseDuration('5m', 's'), 300_000);
  assert.equal(parseDuration('2h', 's'), 7_200_000);
  assert.equal(parseDuration('5d', 's'), 432_000_000);
  assert.equal(parseDuration('1w', 's'), 604_800_000);
});

test('parseDuration bare number uses default unit', () => {
  assert.equal(parseDuration('10', 's'), 10_000);
  assert.equal(parseDuration('10', 'm'), 600_000);
  assert.equal(parseDuration('3', 'h'), 10_800_000);
  assert.equal(parseDuration('5', 'd'), 432_000_000);
});

test('parseDuration concatenated values', () => {
  assert.equal(parseDuration('1h30m', 's'), 5_400_000);
  assert.equal(parseDuration('1d2h3m4s', 's'), 93_784_000);
  assert.equal(parseDuration('1h30', 's'), 3_630_000);
});

test('parseDuration empty is zero', () => {
  assert.equal(parseDuration('', 'm'), 0);
  assert.equal(parseDuration('  ', 'm'), 0);
});

test('parseDuration rejects bad input', () => {
  assert.throws(() => parseDuration('abc', 's'), /invalid time value "abc"/);
  assert.throws(() => parseDuration('5x', 's'), /invalid time unit "x"/);
  assert.throws(() => parseDuration('-5m', 's'), /invalid time value/);
  assert.throws(() => parseDuration('5 m', 's'), /invalid time value/);
});

test('formatDuration round trip', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(5_400_000), '1h30m');
  assert.equal(formatDuration(432_000_000), '5d');
  assert.equal(parseDuration(formatDuration(93_784_000), 's'), 93_784_000);
});
