import { test } from 'node:test';
import assert from 'node:assert/strict';
import { echoableCommandLine, parseCommand } from '../../src/smtp/command';

test('parseCommand splits verb and argument', () => {
  assert.deepEqual(parseCommand('MAIL FROM:<a@b>'), { verb: 'MAIL', arg: 'FROM:<a@b>' });
  assert.deepEqual(parseCommand('mail from:<a@b> SIZE=10'), { verb: 'MAIL', arg: 'from:<a@b> SIZE=10' });
});

test('parseCommand without argument', () => {
  assert.deepEqual(parseCommand('QUIT'), { verb: 'QUIT', arg: '' });
  assert.deepEqual(parseCommand('data'), { verb: 'DATA', arg: '' });
  assert.deepEqual(parseCommand(''), { verb: '', arg: '' });
});

test('parseCommand trims blanks around verb and argument', () => {
  assert.deepEqual(parseCommand('  EHLO \t host.example  \t'), { verb: 'EHLO', arg: 'host.example' });
  assert.deepEqual(parseCommand('STARTTLS '), { verb: 'STARTTLS', arg: '' });
  assert.deepEqual(parseCommand('HELO\thost'), { verb: 'HELO', arg: 'host' });
});

test('parseCommand keeps inner blanks of the argument', () => {
  assert.deepEqual(parseCommand('MAIL FROM: <a@b>  SIZE=1'), { verb: 'MAIL', arg: 'FROM: <a@b>  SIZE=1' });
});

// Expected texts are sendmail 8.17.1.9's replies to the same lines.
test('unrecognized line echoed as sendmail does', () => {
  assert.equal(echoableCommandLine('FOO bar baz'), 'FOO bar baz');
  assert.equal(echoableCommandLine('  foo  Bar  '), '  foo  Bar  ');
  assert.equal(echoableCommandLine('\tzap\t'), '\tzap\t');
  assert.equal(echoableCommandLine('NO\0OP'), 'NO');
  assert.equal(echoableCommandLine('\xc3\xa4HLO x'), 'C$HLO x');
  assert.equal(echoableCommandLine('Y'.repeat(202)), 'Y'.repeat(202));
  assert.equal(echoableCommandLine('X'.repeat(203)), `${'X'.repeat(100)}...${'X'.repeat(100)}`);
  assert.equal(echoableCommandLine(`FOO ${'x'.repeat(300)}`), `FOO ${'x'.repeat(96)}...${'x'.repeat(100)}`);
});

test('control bytes never echoed', () => {
  assert.equal(echoableCommandLine('BAR\x01baz\x1b[2J\x7f q'), 'BAR?baz?[2J? q');
  assert.equal(echoableCommandLine('\x81\x9b'), '??');
});
