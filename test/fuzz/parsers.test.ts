// Property tests for the command and address parsers, reply rendering and the
// milter packet codec: arbitrary input never throws, and nothing from the client
// can put a line break or control byte into a reply.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseCommand } from '../../src/smtp/command';
import { parsePath, splitAddress } from '../../src/smtp/address';
import { formatReply, reply } from '../../src/smtp/reply';
import { encodePacket, nulFields, PacketDecoder, splitNulFields, MAX_DATA_SIZE } from '../../src/milter/codec';

const RUNS = { numRuns: 500 };

/** Strings over all 256 byte values, as the server sees latin1-decoded input. */
const byteString = fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 300 });

/** Strings biased towards the characters that matter to address syntax. */
const addressSoup = fc.string({
  unit: fc.constantFrom('<', '>', '@', '"', '\\', ':', ',', '%', '!', '[', ']', ' ', '\t', '=', '.', 'a', 'b', 'x', '1', '\0', '\r', '\x7f', '\xe4'),
  maxLength: 80,
});

const atom = fc.stringMatching(/^[A-Za-z0-9!#$&'*+/=?^_`{|}~-]{1,12}$/);
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
const mailbox = fc.tuple(fc.array(atom, { minLength: 1, maxLength: 3 }), fc.array(label, { minLength: 1, maxLength: 4 }))
  .map(([local, domain]) => `${local.join('.')}@${domain.join('.')}`);

test('parseCommand keeps verb and argument', () => {
  fc.assert(
    fc.property(byteString, (line) => {
      const { verb, arg } = parseCommand(line);
      assert.ok(!/[ \t]/.test(verb), `verb "${verb}" contains a blank`);
      assert.equal(verb, verb.toUpperCase());
      assert.ok(!/^[ \t]|[ \t]$/.test(arg), `arg "${arg}" has outer blanks`);
      const trimmed = line.replace(/^[ \t]+|[ \t]+$/g, '');
      assert.ok(trimmed.toUpperCase().startsWith(verb));
      if (arg !== '') assert.ok(trimmed.endsWith(arg));
    }),
    RUNS,
  );
});

test('parsePath errors are one printable line', () => {
  fc.assert(
    fc.property(fc.oneof(byteString, addressSoup), fc.constantFrom('mail' as const, 'rcpt' as const), (arg, kind) => {
      const result = parsePath(arg, kind);
      if (result.ok) return;
      assert.ok(result.code >= 500 && result.code < 600, `code ${result.code}`);
      assert.match(result.enhanced, /^5\.\d\.\d+$/);
      assert.ok(!/[\0\r\n]/.test(result.text), `reply text ${JSON.stringify(result.text)}`);
      const wire = formatReply(reply(result.code, result.enhanced, result.text));
      assert.equal(wire.split('\r\n').length, 2, `reply ${JSON.stringify(wire)}`);
    }),
    { numRuns: 2000 },
  );
});

test('parsePath round-trips plain mailboxes', () => {
  fc.assert(
    fc.property(mailbox, fc.option(fc.array(label, { minLength: 1, maxLength: 2 })), (addr, route) => {
      const path = route ? `<${route.map((h) => `@${h}.example`).join(',')}:${addr}>` : `<${addr}>`;
      const result = parsePath(path, 'rcpt');
      assert.ok(result.ok, `${path}: ${JSON.stringify(result)}`);
      assert.equal(result.address, addr);
      assert.deepEqual(result.params, []);
    }),
    RUNS,
  );
});

test('parsePath returns parameters in order', () => {
  const keyword = fc.stringMatching(/^[A-Z][A-Z0-9-]{0,8}$/);
  const value = fc.stringMatching(/^[!-<>-~]{1,10}$/);
  fc.assert(
    fc.property(mailbox, fc.array(fc.tuple(keyword, value), { maxLength: 5 }), (addr, params) => {
      const arg = `<${addr}>` + params.map(([k, v]) => ` ${k}=${v}`).join('');
      const result = parsePath(arg, 'mail');
      assert.ok(result.ok, `${arg}: ${JSON.stringify(result)}`);
      assert.deepEqual(result.params.map((p) => [p.key, p.value]), params);
    }),
    RUNS,
  );
});

test('splitAddress rebuilds the address', () => {
  fc.assert(
    fc.property(mailbox, (addr) => {
      const { local, domain } = splitAddress(addr);
      assert.equal(`${local}@${domain}`.toLowerCase(), addr.toLowerCase());
      assert.equal(domain, domain.toLowerCase());
    }),
    RUNS,
  );
  fc.assert(
    fc.property(addressSoup, (addr) => {
      const { local, domain } = splitAddress(addr);
      // Without an "@" outside quotes and brackets the whole text is the local part.
      const rebuilt = local === addr && domain === '' ? addr : `${local}@${domain}`;
      assert.equal(rebuilt.toLowerCase(), addr.toLowerCase());
    }),
    RUNS,
  );
});

test('milter codec survives any split', () => {
  const packet = fc.record({
    command: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
    data: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  });
  fc.assert(
    fc.property(fc.array(packet, { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }), (packets, cuts) => {
      const wire = Buffer.concat(packets.map((p) => encodePacket(p.command, p.data)));
      const decoder = new PacketDecoder();
      const got: Array<{ command: string; data: Buffer }> = [];
      let at = 0;
      for (let i = 0; at < wire.length; i++) {
        const size = cuts[i % cuts.length];
        got.push(...decoder.push(wire.subarray(at, at + size)));
        at += size;
      }
      assert.deepEqual(got.map((p) => [p.command, p.data.toString('hex')]), packets.map((p) => [p.command, p.data.toString('hex')]));
    }),
    RUNS,
  );
});

test('milter decoder throws only PacketError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const decoder = new PacketDecoder(100);
      try {
        for (const p of decoder.push(Buffer.from(bytes))) assert.ok(p.data.length <= 100);
      } catch (err) {
        assert.equal((err as Error).constructor.name, 'PacketError', String(err));
      }
    }),
    RUNS,
  );
  assert.throws(() => encodePacket('B', Buffer.alloc(MAX_DATA_SIZE + 1)), RangeError);
});

test('milter NUL fields round-trip', () => {
  const field = fc.string({ unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 30 });
  fc.assert(
    fc.property(fc.array(field, { maxLength: 6 }), (fields) => {
      assert.deepEqual(splitNulFields(nulFields(...fields)), fields);
    }),
    RUNS,
  );
});
