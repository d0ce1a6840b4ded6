import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DataReader, DataReaderOptions, parseHeaderName } from '../../src/smtp/datareader';
import { DataOutcome, bytewise, encodeData, readData, splitAt } from './feed';

/** Reads data whole, byte by byte and at every single cut; all must agree. */
function readAllWays(input: string, opts?: Partial<DataReaderOptions>): DataOutcome {
  const data = Buffer.from(input, 'latin1');
  const whole = readData([data], opts);
  const same = (other: DataOutcome, how: string): void => {
    assert.deepEqual(other.headers, whole.headers, `headers differ ${how}`);
    // With an error, how much body was streamed before it depends on the split.
    if (whole.end?.error === undefined) {
      assert.equal(text(other), text(whole), `body differs ${how}`);
    }
    assert.deepEqual(other.end, whole.end, `end differs ${how}`);
  };

  same(readData(bytewise(data), opts), 'byte by byte');
  for (let cut = 1; cut < data.length; cut++) same(readData(splitAt(data, [cut]), opts), `cut at ${cut}`);
  return whole;
}

function text(outcome: DataOutcome): string {
  return outcome.body.toString('latin1');
}

test('DataReader splits headers and body', () => {
  const out = readAllWays('Subject: hi\r\nTo: a@b\r\n\r\nline 1\r\nline 2\r\n.\r\n');
  assert.deepEqual(out.headers, ['Subject: hi', 'To: a@b']);
  assert.equal(text(out), 'line 1\r\nline 2\r\n');
  assert.equal(out.end?.size, 'Subject: hi\r\nTo: a@b\r\n\r\nline 1\r\nline 2\r\n'.length);
  assert.equal(out.end?.error, undefined);
  assert.deepEqual(out.order, ['headers', 'body', 'end']);
});

test('DataReader keeps folded headers joined by CRLF', () => {
  const out = readAllWays('Subject: a\r\n\tb\r\n c\r\nX: y\r\n\r\nbody\r\n.\r\n');
  assert.deepEqual(out.headers, ['Subject: a\r\n\tb\r\n c', 'X: y']);
});

test('DataReader ends headers at a non-header line', () => {
  const out = readAllWays('Subject: a\r\nnot a header\r\nmore\r\n.\r\n');
  assert.deepEqual(out.headers, ['Subject: a']);
  assert.equal(text(out), 'not a header\r\nmore\r\n');
  assert.equal(out.end?.size, 'Subject: a\r\nnot a header\r\nmore\r\n'.length);
});

test('DataReader with no headers at all', () => {
  const first = readAllWays(' indented first\r\n.\r\n');
  assert.deepEqual(first.headers, []);
  assert.equal(text(first), ' indented first\r\n');

  const blank = readAllWays('\r\nbody\r\n.\r\n');
  assert.deepEqual(blank.headers, []);
  assert.equal(text(blank), 'body\r\n');
});

test('DataReader with headers only', () => {
  const out = readAllWays('Subject: a\r\n.\r\n');
  assert.deepEqual(out.headers, ['Subject: a']);
  assert.equal(text(out), '');
  assert.equal(out.end?.size, 12);
});

test('DataReader ends at once on a leading dot line', () => {
  const out = readAllWays('.\r\nMAIL FROM:<a@b>\r\n');
  assert.deepEqual(out.headers, []);
  assert.equal(out.end?.size, 0);
  assert.equal(out.end?.rest.toString('latin1'), 'MAIL FROM:<a@b>\r\n');
});

test('DataReader removes dot-stuffing', () => {
  const out = readAllWays('\r\n..\r\n..x\r\n.y\r\nz.\r\n...\r\n.\r\n');
  assert.equal(text(out), '.\r\n.x\r\ny\r\nz.\r\n..\r\n');
  assert.equal(out.end?.size, 2 + text(out).length);
});

test('DataReader unstuffs a dot line in the header section', () => {
  const header = readAllWays('..X: y\r\n\r\n.\r\n');
  assert.deepEqual(header.headers, ['.X: y']);

  const body = readAllWays('..not a header\r\n\r\n.\r\n');
  assert.deepEqual(body.headers, []);
  assert.equal(text(body), '.not a header\r\n\r\n');
});

test('DataReader never ends on smuggled end-of-data variants', () => {
  const variants: Array<[string, string]> = [
    ['\n.\n', 'bare LF dot bare LF'],
    ['\r.\r', 'bare CR dot bare CR'],
    ['\n.\r\n', 'bare LF dot CRLF'],
    ['\r\n.\n', 'CRLF dot bare LF'],
    ['\r\n.\r\r\n', 'CRLF dot CR CRLF'],
    ['\r.\r\n', 'bare CR dot CRLF'],
    ['\r\n.\r', 'CRLF dot bare CR'],
  ];
  for (const [variant, name] of variants) {
    const smuggled = `\r\nbody${variant}MAIL FROM:<evil@x>\r\n`;
    const out = readAllWays(`${smuggled}tail\r\n.\r\nQUIT\r\n`);
    assert.ok(out.end, `${name}: no end`);
    assert.equal(out.end.rest.toString('latin1'), 'QUIT\r\n', `${name}: ended early`);
    assert.ok(text(out).includes('MAIL FROM:<evil@x>'), `${name}: smuggled command not in body`);
    assert.ok(out.end.sawBareLf || out.end.sawBareCr, `${name}: bare line end not recorded`);
  }
});

test('DataReader records bare LF, bare CR and NUL', () => {
  const lf = readAllWays('\r\na\nb\r\n.\r\n');
  assert.equal(lf.end?.sawBareLf, true);
  assert.equal(lf.end?.sawBareCr, false);
  assert.equal(text(lf), 'a\nb\r\n');

  const cr = readAllWays('\r\na\rb\r\n.\r\n');
  assert.equal(cr.end?.sawBareCr, true);
  assert.equal(cr.end?.sawBareLf, false);
  assert.equal(text(cr), 'a\rb\r\n');

  const nul = readAllWays('\r\na\u0000b\r\n.\r\n');
  assert.equal(nul.end?.sawNul, true);
  assert.equal(text(nul), 'a\u0000b\r\n');

  const clean = readAllWays('\r\nab\r\n.\r\n');
  assert.deepEqual([clean.end?.sawBareLf, clean.end?.sawBareCr, clean.end?.sawNul], [false, false, false]);
});

test('DataReader keeps a dot line ended by bare LF', () => {
  const out = readAllWays('\r\na\r\n.\nb\r\n.\r\n');
  assert.equal(text(out), 'a\r\n\nb\r\n');
  assert.equal(out.end?.sawBareLf, true);
});

test('DataReader finds the end split at every boundary', () => {
  const out = readAllWays('Subject: s\r\n\r\nx\r\n.\r\nRSET\r\n');
  assert.equal(text(out), 'x\r\n');
  assert.equal(out.end?.rest.toString('latin1'), 'RSET\r\n');
});

test('DataReader passes pipelined commands in rest', () => {
  const out = readAllWays('\r\nhi\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n');
  assert.equal(out.end?.rest.toString('latin1'), 'MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n');
});

test('DataReader reads an oversized message to its end', () => {
  const body = 'x'.repeat(60) + '\r\n';
  const out = readAllWays(`Subject: big\r\n\r\n${body}${body}.\r\nQUIT\r\n`, { maxMessageSize: 100 });
  assert.equal(out.end?.error, 'size');
  assert.equal(out.end?.size, 'Subject: big\r\n\r\n'.length + 2 * body.length);
  assert.equal(out.end?.rest.toString('latin1'), 'QUIT\r\n');
});

test('DataReader accepts a message of exactly maxMessageSize', () => {
  const message = 'Subject: a\r\n\r\nbody\r\n';
  const out = readAllWays(`${message}.\r\n`, { maxMessageSize: message.length });
  assert.equal(out.end?.error, undefined);
  assert.equal(out.end?.size, message.length);
});

test('DataReader rejects a header section over maxHeadersLength', () => {
  const header = `X-Long: ${'h'.repeat(50)}\r\n`;
  const out = readAllWays(`${header}${header}\r\nbody\r\n.\r\nQUIT\r\n`, { maxHeadersLength: 80 });
  assert.equal(out.end?.error, 'headers');
  assert.equal(out.headers, undefined);
  assert.equal(out.body.length, 0);
  assert.equal(out.end?.size, 2 * header.length + 2 + 6);
  assert.equal(out.end?.rest.toString('latin1'), 'QUIT\r\n');
});

test('DataReader accepts headers within maxHeadersLength', () => {
  const out = readAllWays('A: 1\r\nB: 2\r\n\r\nx\r\n.\r\n', { maxHeadersLength: 12 });
  assert.equal(out.end?.error, undefined);
  assert.deepEqual(out.headers, ['A: 1', 'B: 2']);
});

test('DataReader flags lines over maxLineLength', () => {
  const long = readAllWays(`\r\n${'z'.repeat(11)}\r\n.\r\n`, { maxLineLength: 10 });
  assert.equal(long.end?.sawLongLine, true);
  const fits = readAllWays(`\r\n${'z'.repeat(10)}\r\n.\r\n`, { maxLineLength: 10 });
  assert.equal(fits.end?.sawLongLine, false);
});

test('DataReader streams a large body without holding it', () => {
  const lines = 'a'.repeat(998) + '\r\n';
  const data = Buffer.from('Subject: s\r\n\r\n' + lines.repeat(2000) + '.\r\n', 'latin1');
  const chunks = splitAt(data, Array.from({ length: 200 }, (_, i) => (i + 1) * 10007));
  const out = readData(chunks);
  assert.equal(out.body.length, lines.length * 2000);
  assert.equal(out.end?.size, data.length - 3);
});

test('DataReader rejects push after the end', () => {
  const reader = new DataReader({ maxMessageSize: 0, maxHeadersLength: 0 });
  const events = reader.push(Buffer.from('.\r\nQUIT\r\n'));
  assert.equal(events[events.length - 1].kind, 'end');
  assert.throws(() => reader.push(Buffer.from('x')), /after the end/);
});

test('parseHeaderName accepts field names', () => {
  assert.equal(parseHeaderName('Subject: x'), 'Subject');
  assert.equal(parseHeaderName('X-Odd!#name:'), 'X-Odd!#name');
  assert.equal(parseHeaderName('Subject : obsolete blank'), 'Subject');
});

test('parseHeaderName rejects non-header lines', () => {
  assert.equal(parseHeaderName('no colon here'), undefined);
  assert.equal(parseHeaderName(': empty name'), undefined);
  assert.equal(parseHeaderName(' Subject: folded'), undefined);
  assert.equal(parseHeaderName('Sub ject: x'), undefined);
  assert.equal(parseHeaderName('--boundary: x'), undefined);
  assert.equal(parseHeaderName('N\u00e4me: x'), undefined);
});

test('DataReader returns any body in any split', () => {
  const chars = fc.constantFrom('a', '.', '\r', '\n', '\r\n', '.\r\n', '\r\n.\r\n', ':', ' ', 'X: y');
  const message = fc.array(chars, { maxLength: 60 }).map((parts) => parts.join(''));
  fc.assert(
    fc.property(message, fc.array(fc.nat(200)), (msg, cuts) => {
      // The header section is fixed so that the whole message is the body.
      const original = Buffer.from('\r\n' + msg, 'latin1');
      const data = Buffer.concat([encodeData(original), Buffer.from('NEXT')]);
      const out = readData(splitAt(data, cuts));
      const expected = original.toString('latin1').replace(/^\r\n/, '');
      const ending = msg === '' || original.toString('latin1').endsWith('\r\n') ? '' : '\r\n';

      assert.ok(out.end, 'no end');
      assert.equal(out.end.rest.toString('latin1'), 'NEXT');
      assert.equal(text(out), expected + ending);
      assert.equal(out.end.size, original.length + ending.length);
    }),
    { numRuns: 500 },
  );
});
