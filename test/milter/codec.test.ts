// Unit tests of the milter packet codec, the 'y' reply-code parser and the
// parsing of filter definitions (X-line equates, sockets, timeouts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePacket, MAX_DATA_SIZE, nulFields, PacketDecoder, PacketError, splitNulFields } from '../../src/milter/codec';
import { decisionOf } from '../../src/milter/protocol';
import { parseReplyCode } from '../../src/milter/reply-code';
import { DEFAULT_TIMEOUTS, parseMilterDefinition, parseMilterSocket, parseMilterTimeouts } from '../../src/milter/definitions';
import { parseDaemonSpec } from '../../src/config/daemon-options';

const SAMPLES: Array<[string, Buffer]> = [
  ['O', Buffer.from([0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0x1f, 0xff, 0xff])],
  ['C', Buffer.concat([nulFields('client.example'), Buffer.from('4'), Buffer.from([0x30, 0x39]), nulFields('127.0.0.1')])],
  ['H', nulFields('client.example')],
  ['M', nulFields('<a@b.example>', 'SIZE=10')],
  ['R', nulFields('<c@d.example>')],
  ['T', Buffer.alloc(0)],
  ['L', nulFields('Subject', 'hi')],
  ['N', Buffer.alloc(0)],
  ['B', Buffer.from('body\r\n')],
  ['E', Buffer.alloc(0)],
  ['U', nulFields('XYZZY arg')],
  ['A', Buffer.alloc(0)],
  ['Q', Buffer.alloc(0)],
  ['D', Buffer.concat([Buffer.from('C'), nulFields('j', 'mx.example')])],
  ['y', nulFields('550 5.7.1 no')],
  ['h', nulFields('X-Added', 'yes')],
  ['+', nulFields('<e@f.example>')],
  ['2', nulFields('<e@f.example>', 'NOTIFY=NEVER')],
  ['-', nulFields('<e@f.example>')],
  ['e', nulFields('<g@h.example>', 'RET=HDRS')],
  ['q', nulFields('reason')],
  ['b', Buffer.from('new body')],
];

test('codec round trip whole', () => {
  const stream = Buffer.concat(SAMPLES.map(([command, data]) => encodePacket(command, data)));
  const packets = new PacketDecoder().push(stream);
  assert.equal(packets.length, SAMPLES.length);
  for (let i = 0; i < SAMPLES.length; i++) {
    assert.equal(packets[i].command, SAMPLES[i][0]);
    assert.deepEqual(packets[i].data, SAMPLES[i][1]);
  }
});

test('codec round trip byte by byte', () => {
  const stream = Buffer.concat(SAMPLES.map(([command, data]) => encodePacket(command, data)));
  const decoder = new PacketDecoder();
  const packets = [];
  for (let i = 0; i < stream.length; i++) packets.push(...decoder.push(stream.subarray(i, i + 1)));
  assert.deepEqual(packets.map((p) => p.command), SAMPLES.map(([command]) => command));
  assert.deepEqual(packets.map((p) => p.data), SAMPLES.map(([, data]) => data));
});

test('codec header layout', () => {
  const encoded = encodePacket('R', nulFields('<a@b>'));
  assert.equal(encoded.readUInt32BE(0), 1 + 6);
  assert.equal(encoded.toString('latin1', 4, 5), 'R');
  assert.equal(encoded.toString('latin1', 5), '<a@b>\0');
});

test('codec rejects oversized packets', () => {
  assert.throws(() => encodePacket('B', Buffer.alloc(MAX_DATA_SIZE + 1)), RangeError);
  assert.equal(encodePacket('B', Buffer.alloc(MAX_DATA_SIZE)).length, MAX_DATA_SIZE + 5);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(MAX_DATA_SIZE + 2);
  assert.throws(() => new PacketDecoder().push(header), PacketError);
});

test('codec rejects zero length', () => {
  assert.throws(() => new PacketDecoder().push(Buffer.from([0, 0, 0, 0, 0x63])), PacketError);
});

test('codec waits for a partial packet', () => {
  const decoder = new PacketDecoder();
  const encoded = encodePacket('c');
  assert.deepEqual(decoder.push(encoded.subarray(0, 4)), []);
  assert.deepEqual(decoder.push(encoded.subarray(4)).map((p) => p.command), ['c']);
});

test('NUL fields split and join', () => {
  assert.deepEqual(splitNulFields(nulFields('a', '', 'b')), ['a', '', 'b']);
  assert.deepEqual(splitNulFields(Buffer.from('a\0trailing')), ['a']);
  assert.deepEqual(splitNulFields(Buffer.alloc(0)), []);
});

test('decision letters map to decisions', () => {
  const cases: Array<[string, string]> = [['c', 'continue'], ['a', 'accept'], ['r', 'reject'], ['t', 'tempfail'], ['d', 'discard'], ['s', 'skip'], ['4', 'shutdown'], ['y', 'replycode']];
  for (const [letter, kind] of cases) assert.equal(decisionOf(letter, nulFields('550 x'))?.kind, kind, letter);
  assert.equal(decisionOf('h', Buffer.alloc(0)), undefined);
  assert.deepEqual(decisionOf('y', nulFields('451 4.7.1 later')), { kind: 'replycode', text: '451 4.7.1 later' });
});

test('reply code single line', () => {
  assert.deepEqual(parseReplyCode('550 5.7.1 Go away'), { code: 550, enhanced: '5.7.1', lines: ['Go away'] });
  assert.deepEqual(parseReplyCode('451 Later'), { code: 451, enhanced: undefined, lines: ['Later'] });
  assert.equal(parseReplyCode('421 4.7.0 bye')?.close, true);
});

test('reply code multi line', () => {
  const parsed = parseReplyCode('550-5.7.1 first\r\n550 5.7.1 second');
  assert.deepEqual(parsed?.lines, ['first', 'second']);
  assert.equal(parsed?.code, 550);
});

test('reply code invalid texts', () => {
  const invalid = ['250 2.0.0 ok', '55 short', 'abc', '550-5.7.1 a\r\n551 5.7.1 b', '550 5.7.1 a\r\n550 5.7.1 b', '550 4.7.1 class differs', '550 5.7.1 100% wrong', ''];
  for (const text of invalid) assert.equal(parseReplyCode(text), undefined, JSON.stringify(text));
  assert.deepEqual(parseReplyCode('550 5.7.1 100%% sure')?.lines, ['100% sure']);
});

test('milter sockets parse', () => {
  assert.deepEqual(parseMilterSocket('unix:/run/f.sock'), { kind: 'unix', path: '/run/f.sock' });
  assert.deepEqual(parseMilterSocket('local:/run/f.sock'), { kind: 'unix', path: '/run/f.sock' });
  assert.deepEqual(parseMilterSocket('/run/f.sock'), { kind: 'unix', path: '/run/f.sock' });
  assert.deepEqual(parseMilterSocket('inet:8891@127.0.0.1'), { kind: 'inet', family: 4, port: 8891, host: '127.0.0.1' });
  assert.deepEqual(parseMilterSocket('inet6:8891@[::1]'), { kind: 'inet', family: 6, port: 8891, host: '::1' });
  for (const bad of ['inet:8891', 'inet:0@h', 'inet:99999@h', 'inet:1@', 'unix:relative', 'tcp:1@h']) {
    assert.throws(() => parseMilterSocket(bad), Error, bad);
  }
});

test('milter timeouts parse', () => {
  assert.deepEqual(parseMilterTimeouts(''), DEFAULT_TIMEOUTS);
  assert.deepEqual(parseMilterTimeouts('C:2s;E:1m'), { ...DEFAULT_TIMEOUTS, connect: 2000, eom: 60_000 });
  assert.equal(parseMilterTimeouts('R:30').read, 30_000);
  assert.throws(() => parseMilterTimeouts('X:1s'));
});

test('X line equates parse', () => {
  const def = parseMilterDefinition({ name: 'dkim', equates: 'S=inet:8891@127.0.0.1, F=R, T=S:1s;R:2s' });
  assert.deepEqual(def.socket, { kind: 'inet', family: 4, port: 8891, host: '127.0.0.1' });
  assert.equal(def.onFailure, 'reject');
  assert.equal(def.timeouts.send, 1000);
  assert.equal(def.timeouts.read, 2000);
  assert.equal(parseMilterDefinition({ name: 'a', equates: 'S=unix:/s, F=RT' }).onFailure, 'tempfail');
  assert.equal(parseMilterDefinition({ name: 'a', equates: 'S=unix:/s, F=4' }).onFailure, 'shutdown');
  assert.equal(parseMilterDefinition({ name: 'a', equates: 'S=unix:/s' }).onFailure, 'ignore');
  assert.equal(parseMilterDefinition({ name: 'a', equates: 'F=R' }).socketError, 'missing S= socket');
  assert.match(parseMilterDefinition({ name: 'a', equates: 'S=bogus:x' }).socketError ?? '', /unknown socket type/);
});

test('daemon InputMailFilters option parses', () => {
  assert.deepEqual(parseDaemonSpec('Port=25, InputMailFilters=a;b', 0).inputMailFilters, ['a', 'b']);
  assert.deepEqual(parseDaemonSpec('Port=25, I=', 0).inputMailFilters, []);
  assert.equal(parseDaemonSpec('Port=25', 0).inputMailFilters, undefined);
});
