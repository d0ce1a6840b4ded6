// Checks of the submission flags that need no running daemon: -N, -R, -V and
// -B values and their errors, unknown -o letters, the -F display name, and
// the Workers bound.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from '../../src/cli/args';
import { displayName } from '../../src/cli/submit';
import { ExitError } from '../../src/cli/sysexits';
import { loadConfig } from '../../src/config/load';
import { workerCount } from '../../src/daemon/workers';

/** Returns the ExitError that parseArgs throws for `argv`. */
function parseError(argv: string[]): ExitError {
  try {
    parseArgs(argv, 'posthorn');
  } catch (err) {
    assert.ok(err instanceof ExitError, `not an ExitError: ${String(err)}`);
    return err;
  }
  assert.fail(`no error for ${argv.join(' ')}`);
}

test('DSN flags parsed like ESMTP parameters', () => {
  const a = parseArgs(['-N', 'Success,DELAY', '-R', 'hdrs', '-V', 'id+2B1', '-B', '8bitmime', 'bob@b.test'], 'posthorn');
  assert.deepEqual(a.dsn.notify, ['SUCCESS', 'DELAY']);
  assert.equal(a.dsn.ret, 'HDRS');
  assert.equal(a.dsn.envid, 'id+2B1');
  assert.equal(a.dsn.bodyType, '8BITMIME');
  assert.deepEqual(a.recipients, ['bob@b.test']);
});

test('-N never and repeated -N', () => {
  assert.deepEqual(parseArgs(['-N', 'never'], 'posthorn').dsn.notify, ['NEVER']);
  assert.deepEqual(parseArgs(['-Nnever', '-Nsuccess'], 'posthorn').dsn.notify, ['SUCCESS']);
  assert.deepEqual(parseArgs(['-Nfailure', '-Nnever'], 'posthorn').dsn.notify, ['FAILURE']);
});

test('empty -V sets no ENVID', () => {
  assert.equal(parseArgs(['-V', ''], 'posthorn').dsn.envid, undefined);
});

test('invalid DSN flags use sendmail text', () => {
  const cases: Array<[string[], string]> = [
    [['-N', 'bogus'], 'Invalid -N argument'],
    [['-N', ''], 'Invalid -N argument'],
    [['-N', 'never,success'], 'Invalid -N argument'],
    [['-N', 'success,,delay'], 'Invalid -N argument'],
    [['-R', 'all'], 'Invalid -R value'],
    [['-R', 'full', '-R', 'hdrs'], 'Duplicate -R flag'],
    [['-V', 'a=b'], 'Invalid syntax in -V flag'],
    [['-V', 'a b'], 'Invalid syntax in -V flag'],
    [['-V', 'a+4'], 'Invalid syntax in -V flag'],
    [['-B', '9BIT'], 'Illegal body type 9BIT'],
    [['-B', 'x\ny'], 'Illegal body type x?y'],
  ];
  for (const [argv, message] of cases) {
    const err = parseError(argv);
    assert.equal(err.message, message, argv.join(' '));
    assert.equal(err.exitCode, 64, argv.join(' '));
  }
});

test('unknown -o letter is a usage error', () => {
  for (const argv of [['-o!x'], ['-o%x'], ['-o', '-bp'], ['-o\u0001']]) {
    const err = parseError(argv);
    assert.equal(err.exitCode, 64, argv.join(' '));
    assert.match(err.message, /^unknown option letter \S+ in -o/, argv.join(' '));
  }
  assert.match(parseError(['-o\u0001']).message, /letter 0x1 /);
  assert.deepEqual(parseArgs(['-odq'], 'posthorn').shortOptions, [{ letter: 'd', value: 'q' }]);
});

test('-F display name has no line breaks', () => {
  assert.equal(displayName('Alice Smith'), 'Alice Smith');
  assert.equal(displayName('Evil\nBcc: victim@x.test\nX-Injected: 1'), '"Evil Bcc: victim@x.test X-Injected: 1"');
  assert.equal(displayName('Evil\r\nX-Injected'), 'Evil X-Injected');
  assert.equal(displayName('"Q. Smith"'), '"Q. Smith"');
  assert.equal(displayName('A "b" \\c'), '"A \\"b\\" \\\\c"');
});

test('Workers outside 1 to 64 rejected', () => {
  for (const value of ['0', '-1', '65', '100000', '']) {
    assert.throws(
      () => loadConfig({ overrides: [{ name: 'Workers', value }] }),
      /invalid value "[^"]*" for option Workers: expected a whole number from 1 to 64/,
      `Workers=${value}`,
    );
  }
  const config = loadConfig({ overrides: [{ name: 'Workers', value: '64' }] });
  assert.equal(workerCount(config), 64);
});

test('workerCount caps a Config built in code', () => {
  const config = loadConfig({});
  config.options.set('Workers', 100000);
  assert.equal(workerCount(config), 64);
  config.options.set('Workers', -1);
  assert.equal(workerCount(config), 1);
});

test('empty QueueDirectory rejected by the reader', () => {
  assert.throws(
    () => loadConfig({ overrides: [{ name: 'QueueDirectory', value: ' ' }] }),
    { name: 'ConfigError', message: '-O: QueueDirectory is empty. Set it to the queue directory, e.g. /var/spool/mqueue.' },
  );
});
