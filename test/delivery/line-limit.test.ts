import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { LineLimiter, limitHeader, mailerLineLimit, outboundLineLimit } from '../../src/delivery/line-limit';
import type { Config } from '../../src/config/types';

/** Runs a body through LineLimiter in blocks of `size` bytes and joins the output. */
function limit(body: Buffer, lineLimit: number, size = body.length): Buffer {
  const limiter = new LineLimiter(lineLimit);
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length; at += size) parts.push(...limiter.push(body.subarray(at, at + size)));
  parts.push(...limiter.finish());
  return Buffer.concat(parts);
}

/** Output line lengths, without the CRLFs. */
function lineLengths(output: Buffer): number[] {
  return output.toString('latin1').split('\r\n').slice(0, -1).map((l) => l.length);
}

function line(length: number, fill = 'a'): string {
  return fill.repeat(length);
}

// Output line lengths that sendmail 8.17.1.9 sent through the relay mailer
// (L=2040) for one body line of each length, measured on loopback.
const RELAY_MEASURED: Array<[number, number[]]> = [
  [2039, [2039]],
  [2040, [2040]],
  [2041, [2040, 3]],
  [2042, [2040, 4]],
  [4078, [2040, 2040]],
  [4082, [2040, 2044]],
  [4094, [2040, 2049, 9]],
  [4095, [2040, 2049, 10]],
  [6120, [2040, 2049, 2035]],
  [10200, [2040, 2049, 2049, 2049, 2021]],
  [20000, [2040, 2049, 2049, 2049, 2049, 2049, 2049, 2049, 2049, 1586]],
];

test('relay limit matches sendmail line lengths', () => {
  for (const [length, expected] of RELAY_MEASURED) {
    const output = limit(Buffer.from(line(length) + '\r\n'), 2040);
    assert.deepEqual(lineLengths(output), expected, `line of ${length} bytes`);
  }
});

test('split pieces carry "!" and a leading space', () => {
  const output = limit(Buffer.from(line(2039) + 'bc\r\n'), 2040).toString('latin1');
  assert.equal(output, line(2039) + '!\r\n bc\r\n');
});

test('esmtp limit matches sendmail for 2100 bytes', () => {
  // sendmail 8.17.1.9, esmtp mailer (L=990): 989 + "!", " " + 988 + "!", " " + 70 + 53.
  assert.deepEqual(lineLengths(limit(Buffer.from(line(2100) + '\r\n'), 990)), [990, 990, 124]);
});

test('a later piece starting with a dot keeps one dot', () => {
  // sendmail 8.17 writes ".." here, mid-line, and the recipient gets both dots. posthorn does not copy that.
  const long = line(2047) + '.' + line(2100, 'b');
  const output = limit(Buffer.from(long + '\r\n'), 2040).toString('latin1');
  assert.equal(output.split('\r\n')[1], ' ' + line(8) + '.' + line(2038, 'b') + '!');
  const short = line(2047) + '.' + line(100, 'c');
  assert.equal(limit(Buffer.from(short + '\r\n'), 2040).toString('latin1').split('\r\n')[1], ' ' + line(8) + '.' + line(100, 'c'));
});

test('bare LF and CRLF line ends are kept', () => {
  const lf = limit(Buffer.from(line(2041) + '\nend\n'), 2040).toString('latin1');
  assert.equal(lf, line(2039) + '!\r\n aa\nend\n');
  const crlf = limit(Buffer.from(line(2040) + '\r\n'), 2040).toString('latin1');
  assert.equal(crlf, line(2040) + '\r\n');
});

test('bare CR counts as text', () => {
  const output = limit(Buffer.from(line(2039) + '\rb\r\n'), 2040).toString('latin1');
  assert.equal(output, line(2039) + '!\r\n \rb\r\n');
});

test('last line without a line end', () => {
  assert.equal(limit(Buffer.from(line(2041)), 2040).toString('latin1'), line(2039) + '!\r\n aa');
});

test('8-bit bytes count as bytes', () => {
  const body = Buffer.concat([Buffer.alloc(2041, 0xe9), Buffer.from('\r\n')]);
  const output = limit(body, 2040);
  assert.deepEqual(lineLengths(output), [2040, 3]);
  assert.equal(output[0], 0xe9);
});

test('short lines come back as the same block', () => {
  const block = Buffer.from('one\r\ntwo\r\n' + line(2039) + '\r\n');
  const parts = new LineLimiter(2040).push(block);
  assert.equal(parts.length, 1);
  assert.equal(parts[0], block);
});

test('limit of 2047 or more never splits', () => {
  const body = Buffer.from(line(9000) + '\r\n');
  assert.deepEqual(limit(body, 2047), body);
  assert.deepEqual(limit(body, 0), body);
});

test('block boundaries do not change the output', () => {
  const piece = fc.oneof(
    fc.constantFrom('\r\n', '\n', '\r', '.', 'x'),
    fc.integer({ min: 1, max: 5000 }).map((n) => line(n, 'y')),
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 12 }), fc.integer({ min: 1, max: 3000 }), fc.constantFrom(10, 990, 2040), (pieces, size, lineLimit) => {
      const body = Buffer.from(pieces.join(''), 'latin1');
      assert.deepEqual(limit(body, lineLimit, size), limit(body, lineLimit));
    }),
    { numRuns: 300 },
  );
});

test('header lines split without 2047-byte pieces', () => {
  // sendmail 8.17.1.9 through esmtp (L=990) sent a 2303-byte Subject as 990, 990 and 327 bytes.
  const head = limitHeader(['Subject:' + line(2295, 's'), 'To: bob@remote.example'], 990);
  assert.deepEqual(lineLengths(head), [990, 990, 327, 22, 0]);
  const folded = limitHeader(['X-Folded: first\r\n\t' + line(1000, 'f')], 990).toString('latin1');
  assert.equal(folded, 'X-Folded: first\r\n\t' + line(988, 'f') + '!\r\n ' + line(12, 'f') + '\r\n\r\n');
});

test('mailer limits follow smtp.m4', () => {
  const config = { mcVariables: new Map([['SMTP_MAILER_LL', '500']]) } as Config;
  assert.equal(mailerLineLimit(config, 'esmtp'), 500);
  assert.equal(mailerLineLimit(config, 'relay'), 2040);
  assert.equal(mailerLineLimit({} as Config, 'smtp'), 990);
  assert.equal(mailerLineLimit({} as Config, 'local'), 0);
  assert.equal(outboundLineLimit({} as Config), 990);
  assert.equal(outboundLineLimit({ smartHost: '[127.0.0.1]' } as Config), 2040);
  assert.equal(outboundLineLimit({ smartHost: 'esmtp:[127.0.0.1]' } as Config), 990);
});
