import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseControlFile, QueueFileError, serializeControlFile } from '../../src/queue/qf';
import { QueueItem, QueueRecipient } from '../../src/queue/types';
import { sampleItem } from './helpers';

const ID = 'k5KCE4Kb012345';

const SAMPLE_TEXT = [
  'V8',
  'T1150805644',
  'K0',
  'N0',
  'P31234',
  'Xsize=1234',
  'B8BITMIME',
  'Fbdn',
  '$rESMTP',
  '$_client.example [127.0.0.1]',
  '${client_addr}127.0.0.1',
  'S<alice@example.org>',
  'ZQQ314159',
  'MDeferred: Connection refused by mx.example.com.',
  'Xstate=deferred',
  'Xdsn=4.4.1',
  'Xhost=mx.example.com',
  'Qrfc822;bob@example.com',
  'RPNFD:<bob@example.com>',
  'Xstate=pending',
  'RP:<carol@example.com>',
  'H??Received: from client.example ([127.0.0.1])',
  '\tby mail.example.org; Tue, 20 Jun 2006 12:14:04 GMT',
  'H??Subject: hello',
  '.',
  '',
].join('\n');

test('control file of sample item', () => {
  assert.equal(serializeControlFile(sampleItem(ID)), SAMPLE_TEXT);
});

test('control file parses sample text', () => {
  assert.deepEqual(parseControlFile(SAMPLE_TEXT, ID), sampleItem(ID));
});

test('control file writes null sender as <>', () => {
  const item = { ...sampleItem(ID), sender: '' };
  const text = serializeControlFile(item);
  assert.ok(text.includes('\nS<>\n'));
  assert.equal(parseControlFile(text, ID).sender, '');
});

test('control file reads S line without angle brackets', () => {
  const text = SAMPLE_TEXT.replace('S<alice@example.org>', 'SMAILER-DAEMON');
  assert.equal(parseControlFile(text, ID).sender, 'MAILER-DAEMON');
});

test('control file escapes CR and LF in fields', () => {
  const item = sampleItem(ID);
  item.sender = 'a@b\r\nRP:<victim@example.com>';
  item.statusMessage = 'line one\nH??Bcc: x';
  item.headers = ['Subject: a\nRP:<x@y>', 'X-Folded: one\r\n two\r\n\tthree'];
  const text = serializeControlFile(item);

  const lines = text.split('\n');
  assert.equal(lines.filter((l) => l.startsWith('R')).length, 2);
  assert.equal(lines.filter((l) => l.startsWith('H')).length, 2);
  assert.ok(lines.includes('S<a@b\\r\\nRP:<victim@example.com>>'));
  assert.ok(lines.includes(' two'));
  assert.ok(lines.includes('\tthree'));
  assert.deepEqual(parseControlFile(text, ID), item);
});

test('control file keeps NOTIFY=NEVER', () => {
  const item = sampleItem(ID);
  item.recipients[1].notify = ['NEVER'];
  const text = serializeControlFile(item);
  assert.ok(text.includes('\nRPN:<carol@example.com>\n'));
  assert.deepEqual(parseControlFile(text, ID).recipients[1].notify, ['NEVER']);
});

test('control file keeps sent and bounced recipients', () => {
  const item = sampleItem(ID);
  item.recipients[0].state = 'sent';
  item.recipients[1] = { address: 'dave@example.net', state: 'bounced', dsnCode: '5.1.1' };
  assert.deepEqual(parseControlFile(serializeControlFile(item), ID), item);
});

test('control file rejects values it cannot store', () => {
  assert.throws(() => serializeControlFile({ ...sampleItem(ID), created: NaN }), RangeError);
  assert.throws(() => serializeControlFile({ ...sampleItem(ID), bodySize: -1 }), RangeError);
});

test('truncated control file never parses', () => {
  const bytes = Buffer.from(serializeControlFile(oddItem()), 'utf8');
  for (let end = 0; end < bytes.length; end++) {
    const text = bytes.subarray(0, end).toString('utf8');
    assert.throws(() => parseControlFile(text, ID), QueueFileError, `cut at byte ${end}`);
  }
  assert.deepEqual(parseControlFile(bytes.toString('utf8'), ID), oddItem());
});

function expectDamage(text: string, line: number, reason: RegExp): void {
  assert.throws(
    () => parseControlFile(text, ID),
    (err: unknown) => err instanceof QueueFileError && err.line === line && reason.test(err.reason),
  );
}

test('damaged control file reports line', () => {
  expectDamage(SAMPLE_TEXT.replace('V8', 'V7'), 1, /expected "V8"/);
  expectDamage(SAMPLE_TEXT.replace('T1150805644', 'T11508x5644'), 2, /invalid number/);
  expectDamage(SAMPLE_TEXT.replace('T1150805644\n', ''), 24, /no T line/);
  expectDamage(SAMPLE_TEXT.replace('S<alice@example.org>\n', ''), 12, /unrecognized line "ZQQ/);
  expectDamage(SAMPLE_TEXT.split('S<alice')[0] + '.\n', 12, /no S line/);
  expectDamage(SAMPLE_TEXT + 'Rextra\n', 26, /after the "\." line/);
  expectDamage(SAMPLE_TEXT.replace('B8BITMIME', 'B9BIT'), 7, /invalid body type/);
  expectDamage(SAMPLE_TEXT.replace('K0', 'Wfoo'), 3, /unrecognized line/);
  expectDamage(SAMPLE_TEXT.replace('Xstate=pending', 'Xstate=lost'), 20, /invalid recipient state/);
  expectDamage(SAMPLE_TEXT.replace('ZQQ314159', 'ZQQ\\q'), 13, /invalid backslash escape/);
  expectDamage(SAMPLE_TEXT.replace('RP:<carol@example.com>\n', ''), 21, /without an R line/);
  expectDamage(SAMPLE_TEXT.replace('K0', ' K0'), 3, /outside a header/);
});

// Text with the characters most likely to break a line-based format.
const oddChar = fc.oneof(
  fc.constantFrom('\r', '\n', '\r\n', '\\', '\\n', '<', '>', ':', '?', '{', '}', '$', ' ', '\t'),
  fc.constantFrom('.', '\0', '\ud800', '\udc00', '\u00e9', '\u00ff', '\u20ac', '\u{1f4ec}'),
  fc.integer({ min: 0, max: 255 }).map((code) => String.fromCharCode(code)),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
);
const oddText = fc.string({ unit: oddChar, maxLength: 24 });


const foldedHeader = fc
  .tuple(oddText, fc.array(fc.tuple(fc.constantFrom(' ', '\t', '  '), oddText), { maxLength: 3 }))
  .map(([first, folds]) => first + folds.map(([space, text]) => `\r\n${space}${text}`).join(''));

const notify = fc.oneof(
  fc.constant(['NEVER']).map((words) => [...words]),
  fc.shuffledSubarray(['SUCCESS', 'FAILURE', 'DELAY'], { minLength: 1 }),
);

const recipient: fc.Arbitrary<QueueRecipient> = fc.record(
  {
    address: oddText,
    orcpt: oddText,
    notify,
    state: fc.constantFrom('pending', 'sent', 'deferred', 'bounced'),
    status: oddText,
    dsnCode: oddText,
    diagnostic: oddText,
    remoteHost: oddText,
    finalRcpt: oddText,
  },
  { requiredKeys: ['address', 'state'] },
).map((rcpt) => ({ ...rcpt }));

/** Macro names as Posthorn keeps them: one character, or a long name in braces. */
const macroName = fc.oneof(
  fc.string({ minLength: 1, maxLength: 1 }).filter((c) => /^[^\s{\\]$/.test(c)),
  oddText.filter((text) => text.length > 1 && !/[{}]/.test(text)).map((text) => `{${text}}`),
);

const item: fc.Arbitrary<QueueItem> = fc
  .record(
    {
      created: fc.integer({ min: 0, max: 2 ** 40 }),
      lastAttempt: fc.integer({ min: 0, max: 2 ** 40 }),
      attempts: fc.nat(),
      priority: fc.integer({ min: -(2 ** 45), max: 2 ** 45 }),
      bodyType: fc.constantFrom('7BIT' as const, '8BITMIME' as const),
      quarantine: oddText,
      statusMessage: oddText,
      flagLetters: fc.subarray(['w', 'r', '8', 'b', 's']),
      ret: fc.constantFrom('FULL' as const, 'HDRS' as const),
      macros: fc.uniqueArray(fc.tuple(macroName, oddText), { selector: (m) => m[0], maxLength: 5 }),
      sender: oddText,
      envid: oddText,
      auth: oddText,
      recipients: fc.array(recipient, { maxLength: 4 }),
      headers: fc.array(foldedHeader, { maxLength: 4 }),
      bodySize: fc.nat(),
    },
    {
      requiredKeys: [
        'created',
        'lastAttempt',
        'attempts',
        'priority',
        'flagLetters',
        'macros',
        'sender',
        'recipients',
        'headers',
        'bodySize',
      ],
    },
  )
  .map(({ flagLetters, macros, ...rest }) => {
    let flags = flagLetters.join('');
    if (rest.ret !== undefined) flags += 'd';
    if (rest.ret === 'HDRS') flags += 'n';
    return { id: ID, ...rest, flags, macros: new Map(macros) };
  });

test('control file round-trips random items', () => {
  fc.assert(
    fc.property(item, (generated) => {
      const text = serializeControlFile(generated);
      assert.deepEqual(parseControlFile(text, ID), generated);
    }),
    { numRuns: 500 },
  );
});

test('control file lines never start a new record', () => {
  fc.assert(
    fc.property(item, (generated) => {
      const lines = serializeControlFile(generated).split('\n');
      const rLines = lines.filter((l) => l.startsWith('R'));
      const hLines = lines.filter((l) => l.startsWith('H'));
      assert.equal(rLines.length, generated.recipients.length);
      assert.equal(hLines.length, generated.headers.length);
      assert.equal(lines.filter((l) => l === '.').length, 1);
    }),
    { numRuns: 300 },
  );
});

function oddItem(): QueueItem {
  const item = sampleItem(ID);
  item.quarantine = 'caf\u00e9 \\ \u20ac';
  item.headers.push('X-Odd: \u00e9\r\n\t\\n\r\nnot a fold');
  return item;
}

