// The DELIVERBY line of the control file: "!", sendmail's flag byte (0x01 N,
// 0x02 R, 0x10 trace), a space and the by-time, as sendmail 8.17.1.9 writes
// it after the S and Z lines.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyQueueItem, parseControlFile, serializeControlFile, QueueFileError } from '../../src/queue/qf';
import type { QueueItem } from '../../src/queue/types';

function item(deliverBy: QueueItem['deliverBy']): QueueItem {
  const it = emptyQueueItem('6B4NDc0c026144');
  it.created = 1796426018;
  it.sender = 'a@example.org';
  it.envid = 'QQ1';
  it.deliverBy = deliverBy;
  it.recipients = [{ address: 'b@example.net', state: 'pending' }];
  return it;
}

test('deliver-by line bytes', () => {
  const cases: Array<[QueueItem['deliverBy'], string]> = [
    [{ seconds: 60, mode: 'N', trace: false }, '!\x01 60'],
    [{ seconds: 60, mode: 'R', trace: true }, '!\x12 60'],
    [{ seconds: -5, mode: 'N', trace: true }, '!\x11 -5'],
    [{ seconds: 2, mode: 'R', trace: false }, '!\x02 2'],
  ];
  for (const [by, line] of cases) {
    const text = serializeControlFile(item(by));
    assert.ok(text.includes(`S<a@example.org>\nZQQ1\n${line}\nXstate=pending\n`), JSON.stringify(text));
    assert.deepEqual(parseControlFile(text, 'x').deliverBy, by);
  }
});

test('no deliver-by line without BY', () => {
  const text = serializeControlFile(item(undefined));
  assert.ok(!text.includes('\n!'));
  assert.equal(parseControlFile(text, 'x').deliverBy, undefined);
});

test('bad deliver-by lines rejected', () => {
  const good = serializeControlFile(item({ seconds: 60, mode: 'N', trace: false }));
  for (const bad of ['!\x03 60', '!\x10 60', '!\x0160', '!\x01 6x', '!', '!\ufffd 60', '!\x81 60']) {
    const text = good.replace('!\x01 60', bad);
    assert.throws(() => parseControlFile(text, 'x'), QueueFileError, JSON.stringify(bad));
  }
});
