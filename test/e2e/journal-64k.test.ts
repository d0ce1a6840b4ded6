// Bodies around the 64 KiB that the commit journal keeps (the first buffer
// of the data file writer): 65,535 and 65,536 bytes go to the journal, 65,537
// to df and qf. Lines that start with a dot sit at the boundary. The next
// hop must receive the body byte for byte, after a direct delivery and after
// a deferred one that was written out.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sendRaw, startNextHopDown } from '../helpers/e2e-setup';
import { waitFor } from '../helpers/process';

/**
 * Builds a body of exactly `size` bytes of CRLF lines (at most 80 bytes each),
 * in which a line starts with "." at each offset of `dots` that leaves room for
 * the line. A segment of 3 bytes from a dot is the line ".".
 */
function body(size: number, dots: number[], tag: string): Buffer {
  const starts = dots.filter((d) => d > tag.length + 2 && d <= size - 3).sort((x, y) => x - y);
  const breaks = [...starts, size];
  let text = `${tag}\r\n`;
  for (const end of breaks) {
    let first = true;
    while (text.length < end) {
      const left = end - text.length;
      // A line of 80 bytes at most, and never a last piece shorter than its CRLF.
      let take = left;
      if (left > 80) take = left - 80 >= 2 ? 80 : 78;
      const lead = first && starts.includes(text.length) ? '.' : '';
      text += (lead + 'y'.repeat(take - 2)).slice(0, take - 2) + '\r\n';
      first = false;
    }
  }
  assert.equal(text.length, size, tag);
  for (const d of starts) assert.equal(text[d], '.', `${tag}: no dot at ${d}`);
  return Buffer.from(text, 'latin1');
}

test('bodies around 64 KiB arrive unchanged', { timeout: 55_000 }, async (t) => {
  const hop = await startNextHopDown(t);
  const { ph } = hop;
  const cases: Array<{ tag: string; body: Buffer }> = [];
  for (const size of [65_535, 65_536, 65_537]) {
    for (const dots of [[], [65_533], [65_534], [65_535], [65_530, 65_533, 65_536]]) {
      const tag = `size ${size} dots ${dots.join(',') || 'none'}`;
      cases.push({ tag, body: body(size, dots, tag) });
    }
  }
  const send = (c: { tag: string; body: Buffer }) =>
    sendRaw({
      port: ph.port,
      from: 'alice@posthorn.test',
      to: ['bob@remote.example'],
      data: `From: alice@posthorn.test\r\nTo: bob@remote.example\r\nSubject: ${c.tag}\r\n\r\n${c.body.toString('latin1')}`,
    });
  // Deferred first (the hop is down), then written out and delivered by a queue run.
  for (const c of cases) assert.notEqual((await send(c)).queueId, '', c.tag);
  await waitFor('every item deferred', () => (ph.logs().match(/stat=Deferred/g) ?? []).length >= cases.length, 20_000);
  const sink = await hop.startSink();
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  // And delivered at once.
  for (const c of cases) assert.notEqual((await send(c)).queueId, '', c.tag);
  await sink.waitForMessages(2 * cases.length, 30_000);

  for (const c of cases) {
    const got = sink.messages.filter((m) => m.data.toString('latin1').includes(`\r\nSubject: ${c.tag}\r\n`));
    assert.equal(got.length, 2, c.tag);
    for (const m of got) {
      const tail = m.data.subarray(m.data.length - c.body.length);
      assert.ok(tail.equals(c.body), `${c.tag}: body differs (${m.data.length} bytes received)`);
      assert.equal(m.data.subarray(m.data.length - c.body.length - 4, m.data.length - c.body.length).toString('latin1'), '\r\n\r\n', c.tag);
    }
  }
});
