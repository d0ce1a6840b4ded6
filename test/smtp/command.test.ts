import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommand } from '../../src/smtp/command';

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
