// Chunk boundaries for the DataReader's indexOf fast path. The fast reader
// must give exactly what the byte-at-a-time reference gives, for any input and
// any way the input is cut into chunks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DataReader, type DataEvent, type DataReaderOptions } from '../../src/smtp/datareader';
import { ReferenceDataReader } from './datareader-reference';
import { DotStuffer } from '../../src/delivery/dot-stuff';
import { splitAt } from './feed';

interface Outcome {
  headers: string[] | undefined;
  body: string;
  /** Event kinds in order, repeated 'body' collapsed. */
  order: string[];
  end: Omit<Extract<DataEvent, { kind: 'end' }>, 'rest'> | undefined;
  rest: string;
}

interface Reader {
  push(chunk: Buffer): DataEvent[];
}

function run(reader: Reader, pieces: Buffer[]): Outcome {
  const out: Outcome = { headers: undefined, body: '', order: [], end: undefined, rest: '' };
  for (const piece of pieces) {
    if (out.end !== undefined) {
      out.rest += piece.toString('latin1');
      continue;
    }
    for (const event of reader.push(piece)) {
      if (out.order[out.order.length - 1] !== event.kind) out.order.push(event.kind);
      if (event.kind === 'headers') out.headers = event.headers;
      else if (event.kind === 'body') out.body += event.data.toString('latin1');
      else {
        const { rest, ...end } = event;
        out.end = end;
        out.rest = rest.toString('latin1');
      }
    }
  }
  return out;
}

function compare(data: Buffer, pieces: Buffer[], opts: Partial<DataReaderOptions> = {}): Outcome {
  const full: DataReaderOptions = { maxMessageSize: 0, maxHeadersLength: 0, ...opts };
  const fast = run(new DataReader(full), pieces);
  const reference = run(new ReferenceDataReader(full), pieces);
  assert.deepEqual(fast, reference, `input ${JSON.stringify(data.toString('latin1'))} in ${pieces.length} pieces`);
  return fast;
}

const atoms = fc.constantFrom(
  'a', 'bc', '.', '..', '\r', '\n', '\r\n', '\r\n.', '.\r\n', '\r\n.\r\n', '\r\n..\r\n', '\u0000',
  ':', ' ', '\t', 'X: y', 'Subject: s\r\n', '\r\n\r\n', '\u00ff', 'x'.repeat(40),
);

test('DataReader matches the reference reader', () => {
  fc.assert(
    fc.property(
      fc.array(atoms, { maxLength: 80 }),
      fc.array(fc.nat(600), { maxLength: 12 }),
      fc.record({
        maxMessageSize: fc.constantFrom(0, 0, 20, 100, 300),
        maxHeadersLength: fc.constantFrom(0, 0, 10, 60),
        maxLineLength: fc.constantFrom(0, 0, 5, 30),
      }),
      (parts, cuts, opts) => {
        const data = Buffer.from(parts.join('') + '\r\n.\r\nNEXT', 'latin1');
        compare(data, splitAt(data, cuts), opts);
      },
    ),
    { numRuns: 3000 },
  );
});

test('DataReader finds CRLF.CRLF at every split', () => {
  const line = 'The quick brown fox\r\n';
  const data = Buffer.from(`Subject: t\r\n\r\n${line}..dot\r\n${line}.\r\nQUIT\r\n`, 'latin1');
  const end = data.indexOf('\r\n.\r\nQUIT');
  for (let a = 1; a < data.length; a++) {
    const two = compare(data, splitAt(data, [a]));
    assert.equal(two.body, `${line}.dot\r\n${line}`);
    assert.equal(two.rest, 'QUIT\r\n');
    // Every pair of cuts around the end-of-data line.
    for (let b = Math.max(a + 1, end - 3); b < Math.min(data.length, end + 8); b++) {
      const three = compare(data, splitAt(data, [a, b]));
      assert.equal(three.body, two.body);
      assert.equal(three.rest, 'QUIT\r\n');
    }
  }
});

test('DataReader passes body views without copies', () => {
  const body = Buffer.from('y'.repeat(70) + '\r\n').toString('latin1').repeat(2000);
  const chunk = Buffer.from('\r\n' + body, 'latin1');
  const reader = new DataReader({ maxMessageSize: 0, maxHeadersLength: 0 });
  const events = reader.push(chunk);
  const bodies = events.filter((e): e is Extract<DataEvent, { kind: 'body' }> => e.kind === 'body');
  assert.equal(bodies.length, 1);
  assert.equal(bodies[0].data.buffer, chunk.buffer, 'the body is a view of the input chunk');
  assert.equal(bodies[0].data.toString('latin1'), body);
});

test('DataReader stays linear on bare CRs', () => {
  // Each bare CR hands over to the state machine; the fast path must not scan
  // the rest of the chunk again for each of them.
  const data = Buffer.from('\r\n' + 'a\r'.repeat(200_000) + '\r\n.\r\n', 'latin1');
  const out = run(new DataReader({ maxMessageSize: 0, maxHeadersLength: 0 }), [data]);
  assert.equal(out.end?.sawBareCr, true);
  assert.equal(out.body.length, data.length - 2 - 3);
});

/** Dot-stuffs `pieces` with the outbound DotStuffer, as the SMTP client sends them. */
function stuff(pieces: Buffer[]): Buffer {
  const stuffer = new DotStuffer();
  const out = pieces.map((p) => stuffer.push(p));
  out.push(stuffer.finish());
  return Buffer.concat(out);
}

test('unstuff(stuff(x)) equals x for any chunking', () => {
  const lineAtom = fc.constantFrom('.', '..', 'a', ' ', 'x'.repeat(30), '\u0000', '\u00e9', ':');
  const line = fc.array(lineAtom, { maxLength: 8 }).map((a) => a.join(''));
  fc.assert(
    fc.property(
      fc.array(line, { maxLength: 30 }),
      fc.boolean(),
      fc.array(fc.nat(400), { maxLength: 10 }),
      fc.array(fc.nat(400), { maxLength: 10 }),
      (lines, endsWithCrlf, sendCuts, receiveCuts) => {
        // A df contains a body with CRLF line ends, not necessarily ending in one.
        let body = lines.join('\r\n');
        if (endsWithCrlf && body !== '') body += '\r\n';
        const x = Buffer.from(body, 'latin1');
        const wire = Buffer.concat([Buffer.from('\r\n'), stuff(splitAt(x, sendCuts)), Buffer.from('NEXT')]);
        const out = compare(wire, splitAt(wire, receiveCuts));
        const expected = body === '' || body.endsWith('\r\n') ? body : body + '\r\n';
        assert.equal(out.body, expected);
        assert.equal(out.rest, 'NEXT');
        assert.equal(out.end?.sawBareCr, false);
        assert.equal(out.end?.sawBareLf, false);
      },
    ),
    { numRuns: 2000 },
  );
});
