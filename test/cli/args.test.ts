import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from '../../src/cli/args';
import { ExitError } from '../../src/cli/sysexits';

test('args default mode delivers', () => {
  const a = parseArgs(['bob@example.org'], 'posthorn');
  assert.equal(a.mode, 'deliver');
  assert.deepEqual(a.recipients, ['bob@example.org']);
});

test('args mailq name prints queue', () => {
  assert.equal(parseArgs([], 'mailq').mode, 'print-queue');
});

test('args -t -i and -oi', () => {
  const a = parseArgs(['-t', '-i'], 'posthorn');
  assert.equal(a.readRecipients, true);
  assert.equal(a.ignoreDots, true);
  const b = parseArgs(['-oi'], 'posthorn');
  assert.equal(b.ignoreDots, true);
  assert.deepEqual(b.shortOptions, [{ letter: 'i', value: '' }]);
});

test('args values attached or separate', () => {
  const a = parseArgs(['-Cfile.mc', '-f', 'a@b', '-FAlice Smith', '-O', 'QueueDirectory=/q'], 'posthorn');
  assert.equal(a.configFile, 'file.mc');
  assert.equal(a.sender, 'a@b');
  assert.equal(a.fullName, 'Alice Smith');
  assert.deepEqual(a.overrides, [{ name: 'QueueDirectory', value: '/q' }]);
});

test('args daemon with queue interval', () => {
  const a = parseArgs(['-bd', '-q15m'], 'posthorn');
  assert.equal(a.mode, 'daemon');
  assert.equal(a.queueInterval, 15 * 60_000);
  const b = parseArgs(['-bD', '-q1h30m'], 'posthorn');
  assert.equal(b.mode, 'daemon-foreground');
  assert.equal(b.queueInterval, 90 * 60_000);
});

test('args plain -q runs the queue once', () => {
  const a = parseArgs(['-q'], 'posthorn');
  assert.equal(a.mode, 'queue-run');
  assert.equal(a.queueInterval, undefined);
});

test('args queue selectors', () => {
  const a = parseArgs(['-qIabc', '-q!Rbob', '-qSalice', '-qQ'], 'posthorn');
  assert.equal(a.mode, 'queue-run');
  assert.deepEqual(a.queueSelectors, [
    { kind: 'I', negate: false, value: 'abc' },
    { kind: 'R', negate: true, value: 'bob' },
    { kind: 'S', negate: false, value: 'alice' },
    { kind: 'Q', negate: false, value: '' },
  ]);
});

test('args -bp with selector stays -bp', () => {
  const a = parseArgs(['-bp', '-qRbob'], 'posthorn');
  assert.equal(a.mode, 'print-queue');
});

test('args unknown flag is a usage error', () => {
  assert.throws(
    () => parseArgs(['-Z'], 'posthorn'),
    (err: unknown) => err instanceof ExitError && err.exitCode === 64 && /unknown option -Z/.test(err.message),
  );
});

test('args bad -b mode and bad interval', () => {
  assert.throws(() => parseArgs(['-bx'], 'posthorn'), /invalid operation mode -bx/);
  assert.throws(() => parseArgs(['-qxyz'], 'posthorn'), /invalid queue interval/);
  assert.throws(() => parseArgs(['-q!G'], 'posthorn'), /Can not use -q!G/);
});

test('args missing value is a usage error', () => {
  assert.throws(
    () => parseArgs(['-C'], 'posthorn'),
    (err: unknown) => err instanceof ExitError && err.exitCode === 64,
  );
});

test('args accepted debug flags', () => {
  const a = parseArgs(['-d0.1', '-v', '-bP'], 'posthorn');
  assert.equal(a.mode, 'print-config');
  assert.equal(a.verbose, true);
});

test('args host status modes', () => {
  assert.equal(parseArgs(['-bh'], 'posthorn').mode, 'host-status');
  assert.equal(parseArgs(['-bH'], 'posthorn').mode, 'purge-host-status');
  assert.equal(parseArgs([], 'hoststat').mode, 'host-status');
  assert.equal(parseArgs([], 'purgestat').mode, 'purge-host-status');
  // A name that is a property of every object is no program name.
  assert.equal(parseArgs([], 'constructor').mode, 'deliver');
});
