// Property tests for the DATA reader against smuggling and for the queue control
// file reader against damaged files (torn writes, flipped bytes).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DataReader } from '../../src/smtp/datareader';
import { parseControlFile, QueueFileError } from '../../src/queue/qf';

/** Feeds `pieces` to a DataReader; returns the 'end' event's rest and how many bytes were consumed before it. */
function feed(pieces: Buffer[]): { ended: boolean; rest: string; size: number } {
  const reader = new DataReader({ maxMessageSize: 0, maxHeadersLength: 0 });
  let total = 0;
  for (const [i, piece] of pieces.entries()) {
    for (const event of reader.push(piece)) {
      if (event.kind !== 'end') continue;
      const later = Buffer.concat(pieces.slice(i + 1)).toString('latin1');
      return { ended: true, rest: event.rest.toString('latin1') + later, size: total };
    }
    total += piece.length;
  }
  return { ended: false, rest: '', size: total };
}

function split(data: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const p of [...points, data.length]) {
    if (p > from) pieces.push(data.subarray(from, p));
    from = Math.max(from, p);
  }
  return pieces;
}

test('DataReader ends at first CRLF.CRLF', () => {
  const token = fc.constantFrom('\r', '\n', '.', 'a', '\r\n', '\n.\n', '\r.\r', '\n.\r\n', '\r\n.\n', '\r\n.\r', '.\r\n', 'MAIL FROM:<x@y>');
  fc.assert(
    fc.property(fc.array(token, { maxLength: 40 }), fc.array(fc.nat(400), { maxLength: 8 }), (tokens, cuts) => {
      const wire = tokens.join('') + '\r\n.\r\nNEXT';
      // The data starts at a line start, as if right after "DATA\r\n".
      const end = ('\r\n' + wire).indexOf('\r\n.\r\n');
      const expectedRest = wire.slice(end + 3);
      const out = feed(split(Buffer.from(wire, 'latin1'), cuts));
      assert.ok(out.ended, 'no end of data');
      assert.equal(out.rest, expectedRest);
    }),
    { numRuns: 1000 },
  );
});

const SAMPLE_QF = [
  'V8', 'T1796403141', 'K0', 'N0', 'P30332', 'Xsize=20', '$_root@localhost', 'S<a@posthorn.test>', 'Xstate=pending',
  'RP:<bob@posthorn.test>', 'H??Received: (from root@localhost)', '\tby mx.posthorn.test (Posthorn 0.1.0/0.1.0) id 6B4GqLnl017681',
  '\tfor <bob@posthorn.test>; Fri, 4 Dec 2026 16:52:21 +0000', 'H??To: bob@posthorn.test', 'H??Subject: x', '.', '',
].join('\n');
const SAMPLE_ID = '6B4GqLnl017681';

function parsesOrQueueFileError(text: string): void {
  try {
    parseControlFile(text, SAMPLE_ID);
  } catch (err) {
    assert.ok(err instanceof QueueFileError, `${(err as Error).stack}\ninput: ${JSON.stringify(text)}`);
  }
}

test('sample control file parses', () => {
  const item = parseControlFile(SAMPLE_QF, SAMPLE_ID);
  assert.equal(item.sender, 'a@posthorn.test');
});

test('torn control file is detected', () => {
  for (let n = 0; n < SAMPLE_QF.length; n++) {
    const torn = SAMPLE_QF.slice(0, n);
    parsesOrQueueFileError(torn);
    if (n < SAMPLE_QF.lastIndexOf('\n.\n') + 1) assert.throws(() => parseControlFile(torn, SAMPLE_ID), QueueFileError, `cut at ${n}`);
  }
});

test('damaged control file throws QueueFileError', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(SAMPLE_QF.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (flips) => {
      const chars = SAMPLE_QF.split('');
      for (const [at, byte] of flips) chars[at] = String.fromCharCode(byte);
      parsesOrQueueFileError(chars.join(''));
    }),
    { numRuns: 1000 },
  );
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (text) => parsesOrQueueFileError(text)),
    { numRuns: 1000 },
  );
});
