import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineReader, LineResult } from '../../src/smtp/linereader';
import { bytewise, splitAt } from './feed';

function readLines(pieces: Buffer[], maxLineLength = 100): LineResult[] {
  const reader = new LineReader({ maxLineLength });
  const lines: LineResult[] = [];
  for (const piece of pieces) {
    reader.push(piece);
    for (let r = reader.next(); r !== undefined; r = reader.next()) lines.push(r);
  }
  return lines;
}

function line(text: string, bareLf = false): LineResult {
  return { kind: 'line', text, bareLf };
}

function bothWays(input: string, maxLineLength = 100): LineResult[] {
  const data = Buffer.from(input, 'latin1');
  const whole = readLines([data], maxLineLength);
  assert.deepEqual(readLines(bytewise(data), maxLineLength), whole, 'byte by byte differs from whole');
  return whole;
}

test('LineReader splits on CRLF', () => {
  assert.deepEqual(bothWays('EHLO a\r\nMAIL FROM:<x>\r\n'), [line('EHLO a'), line('MAIL FROM:<x>')]);
});

test('LineReader keeps an incomplete line', () => {
  const reader = new LineReader({ maxLineLength: 100 });
  reader.push(Buffer.from('NOOP\r\nQU'));
  assert.deepEqual(reader.next(), line('NOOP'));
  assert.equal(reader.next(), undefined);
  assert.equal(reader.pending, 2);
  reader.push(Buffer.from('IT\r\n'));
  assert.deepEqual(reader.next(), line('QUIT'));
  assert.equal(reader.pending, 0);
});

test('LineReader marks bare LF and keeps bare CR', () => {
  assert.deepEqual(bothWays('NOOP\nRSET\r\n'), [line('NOOP', true), line('RSET')]);
  assert.deepEqual(bothWays('A\rB\r\n'), [line('A\rB')]);
  assert.deepEqual(bothWays('\r\n\n'), [line(''), line('', true)]);
});

test('LineReader decodes bytes as latin1', () => {
  const data = Buffer.from([0x48, 0xe9, 0x00, 0xff, 0x0d, 0x0a]);
  const [result] = readLines([data]);
  assert.deepEqual(result, line('H\u00e9\u0000\u00ff'));
});

test('LineReader accepts exactly max and rejects max+1', () => {
  const max = 'x'.repeat(100);
  assert.deepEqual(bothWays(`${max}\r\n${max}x\r\nNOOP\r\n`), [
    line(max),
    { kind: 'toolong', length: 101 },
    line('NOOP'),
  ]);
  assert.deepEqual(bothWays(`${max}\n${max}x\n`), [line(max, true), { kind: 'toolong', length: 101 }]);
});

test('LineReader reports a long line once with its length', () => {
  const long = 'y'.repeat(1000);
  assert.deepEqual(bothWays(`NOOP\r\n${long}\r\nQUIT\r\n`), [
    line('NOOP'),
    { kind: 'toolong', length: 1000 },
    line('QUIT'),
  ]);
});

test('LineReader keeps memory bounded on a 10 MB line without LF', () => {
  const reader = new LineReader({ maxLineLength: 2048 });
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let maxPending = 0;
  for (let sent = 0; sent < 10 * 1024 * 1024; sent += chunk.length) {
    reader.push(chunk);
    assert.equal(reader.next(), undefined);
    maxPending = Math.max(maxPending, reader.pending);
  }
  assert.ok(maxPending <= 2049, `pending grew to ${maxPending}`);

  reader.push(Buffer.from('\r\nQUIT\r\n'));
  assert.deepEqual(reader.next(), { kind: 'toolong', length: 10 * 1024 * 1024 });
  assert.deepEqual(reader.next(), line('QUIT'));
});

test('LineReader counts a CR at a chunk end in a dropped line', () => {
  const reader = new LineReader({ maxLineLength: 4 });
  reader.push(Buffer.from('abcdefgh\r'));
  reader.push(Buffer.from('\n'));
  assert.deepEqual(reader.next(), { kind: 'toolong', length: 8 });
});

test('LineReader takeRest returns unread bytes', () => {
  const reader = new LineReader({ maxLineLength: 100 });
  reader.push(Buffer.from('DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n'));
  assert.deepEqual(reader.next(), line('DATA'));
  const rest = reader.takeRest();
  assert.equal(rest.toString('latin1'), 'Subject: x\r\n\r\nbody\r\n.\r\n');
  assert.equal(reader.pending, 0);
  assert.equal(reader.next(), undefined);
});

test('LineReader takeRest after a dropped line', () => {
  const reader = new LineReader({ maxLineLength: 4 });
  reader.push(Buffer.from('NOOP\r\nzzzzzzzz'));
  assert.deepEqual(reader.next(), line('NOOP'));
  assert.equal(reader.takeRest().length, 0);
  reader.push(Buffer.from('RSET\r\n'));
  assert.deepEqual(reader.next(), line('RSET'));
});

test('LineReader gives the same lines in any split', () => {
  const piece = fc.constantFrom('NOOP', 'x'.repeat(20), 'y'.repeat(21), '\r', '\n', '\r\n', 'a\rb');
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 30 }), fc.array(fc.nat(400)), (parts, cuts) => {
      const data = Buffer.from(parts.join(''), 'latin1');
      const whole = readLines([data], 20);
      assert.deepEqual(readLines(splitAt(data, cuts), 20), whole);
      assert.deepEqual(readLines(bytewise(data), 20), whole);
    }),
  );
});
