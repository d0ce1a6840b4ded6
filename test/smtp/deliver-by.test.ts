// DELIVERBY (RFC 2852): BY= parsing with sendmail 8.17's replies, the EHLO
// keyword, and the BY= and refusals of the outbound side. The replies were
// taken from `sendmail -bs` 8.17.1.9; test/e2e/deliver-by.test.ts compares
// them with the running peer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { byParameter, deliverByKeyword, deliverByRefusal, nextHopMinimum, parseDeliverBy } from '../../src/smtp/deliver-by';
import { checkMailParams } from '../../src/smtp/params';

/** Renders a parse result as the reply text or the request, for compact tables. */
function parsed(value: string | undefined, min: number): string {
  const r = parseDeliverBy(value, min);
  if ('ok' in r) return `${r.code} ${r.enhanced} ${r.text}`;
  return `${r.seconds};${r.mode}${r.trace ? 'T' : ''}`;
}

test('BY= values with DeliverByMin 0', () => {
  const cases: Array<[string | undefined, string]> = [
    ['60;R', '60;R'],
    ['60;N', '60;N'],
    ['60;RT', '60;RT'],
    ['60;rt', '60;RT'],
    ['-5;N', '-5;N'],
    ['+7;R', '7;R'],
    ['07;NT', '7;NT'],
    ['60;RTX', '60;RT'],
    [';N', '0;N'],
    ['999999999;N', '999999999;N'],
    ['0;R', '501 5.5.4 mode R requires BY time > 0'],
    ['-5;R', '501 5.5.4 mode R requires BY time > 0'],
    ['abc;R', "501 5.5.2 BY= missing ';'"],
    ['60', "501 5.5.2 BY= missing ';'"],
    ['', "501 5.5.2 BY= missing ';'"],
    ['60;X', "501 5.5.2 illegal by-mode 'X'"],
    ['60;', "501 5.5.2 illegal by-mode '?'"],
    ['60;NR', "501 5.5.2 illegal by-trace 'R'"],
    ['60;n;x', "501 5.5.2 illegal by-trace ';'"],
    ['9999999999;R', '501 5.5.2 BY=9999999999;R out of range'],
    ['1000000000;N', '501 5.5.2 BY=1000000000;N out of range'],
    [undefined, '501 5.5.2 BY= requires a value'],
  ];
  for (const [value, expected] of cases) assert.equal(parsed(value, 0), expected, `BY=${value}`);
});

test('BY= below DeliverByMin', () => {
  assert.equal(parsed('5;R', 10), '555 5.5.2 time 5 less than 10');
  assert.equal(parsed('+7;R', 10), '555 5.5.2 time 7 less than 10');
  assert.equal(parsed('10;R', 10), '10;R');
  // sendmail checks the minimum for mode R only.
  assert.equal(parsed('5;N', 10), '5;N');
});

test('MAIL parameters with BY', () => {
  const on = { maxMessageSize: 0, dsn: true, deliverByMin: 0 };
  const twice = checkMailParams([{ key: 'BY', value: '60;R' }, { key: 'BY', value: '30;N' }], on);
  assert.ok(twice.ok);
  assert.deepEqual(twice.deliverBy, { seconds: 30, mode: 'N', trace: false });

  for (const min of [-1, undefined]) {
    const off = checkMailParams([{ key: 'BY', value: '60;R' }], { maxMessageSize: 0, dsn: true, deliverByMin: min });
    assert.ok(!off.ok);
    assert.equal(`${off.code} ${off.enhanced} ${off.text}`, '555 5.5.4 BY parameter unrecognized');
  }
});

test('EHLO keyword by DeliverByMin', () => {
  assert.equal(deliverByKeyword(0), 'DELIVERBY');
  assert.equal(deliverByKeyword(10), 'DELIVERBY 10');
  assert.equal(deliverByKeyword(-1), undefined);
});

test('outbound BY= with the time left', () => {
  assert.equal(byParameter({ seconds: 600, mode: 'R', trace: false }, 10, 0), ' BY=590;R');
  assert.equal(byParameter({ seconds: 600, mode: 'N', trace: true }, 10, 0), ' BY=590;NT');
  assert.equal(byParameter({ seconds: 5, mode: 'N', trace: false }, 10, 0), ' BY=-5;N');
  // An R request without time left requests the next hop's minimum, or 1.
  assert.equal(byParameter({ seconds: 5, mode: 'R', trace: false }, 10, 0), ' BY=1;R');
  assert.equal(byParameter({ seconds: 5, mode: 'R', trace: true }, 10, 30), ' BY=30;RT');
  assert.equal(nextHopMinimum(''), 0);
  assert.equal(nextHopMinimum('120'), 120);
});

test('R request refused by next hop', () => {
  const r = { seconds: 60, mode: 'R' as const, trace: false };
  assert.equal(deliverByRefusal(r, 10, undefined), '554 5.4.7 Server does not support Deliver By');
  assert.equal(deliverByRefusal(r, 10, '100'), "554 5.4.7 Message can't be delivered in time; 50 < 100");
  assert.equal(deliverByRefusal(r, 10, ''), undefined);
  assert.equal(deliverByRefusal(r, 10, '50'), undefined);
  assert.equal(deliverByRefusal({ ...r, mode: 'N' }, 10, undefined), undefined);
});
