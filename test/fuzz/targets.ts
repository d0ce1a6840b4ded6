// Fuzz targets for scripts/fuzz.js: each one checks a parser against arbitrary
// input and throws on a finding. The npm test suite runs the same properties
// with small counts (parsers.test.ts, queue-data.test.ts, config/fuzz.test.ts).

import fc from 'fast-check';
import { parseCommand } from '../../src/smtp/command';
import { parsePath } from '../../src/smtp/address';
import { DataReader } from '../../src/smtp/datareader';
import { LineReader } from '../../src/smtp/linereader';
import { checkMailParams, checkRcptParams } from '../../src/smtp/params';
import { parseControlFile, QueueFileError } from '../../src/queue/qf';
import { PacketDecoder, PacketError } from '../../src/milter/codec';
import { ConfigBuilder } from '../../src/config/builder';
import { readMc } from '../../src/config/mc';
import { readCf } from '../../src/config/cf';
import { ConfigError } from '../../src/config/errors';

export interface FuzzTarget {
  name: string;
  // fast-check's property type is generic; the runner only needs fc.check().
  property: fc.IPropertyWithHooks<unknown[]>;
}

const byteString = (max: number) =>
  fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: max });

function only(errorClass: new (...args: never[]) => Error, step: () => void): void {
  try {
    step();
  } catch (err) {
    if (!(err instanceof errorClass)) throw err;
  }
}

const CONFIG_FRAGMENTS = ['`', "'", '(', ')', ',', '\n', 'dnl', 'define', 'FEATURE', 'DAEMON_OPTIONS', 'MAILER',
  'INPUT_MAIL_FILTER', 'O ', 'D', 'C', 'F', 'M', 'K', 'S', 'R', '$', '{', '}', 'Port=', 'Timeout.', 'include', '=', 'x'];
const configText = fc.oneof(byteString(300), fc.array(fc.constantFrom(...CONFIG_FRAGMENTS), { maxLength: 80 }).map((p) => p.join('')));

export const TARGETS: FuzzTarget[] = [
  {
    name: 'command parser',
    property: fc.property(byteString(600), (line) => {
      const { verb } = parseCommand(line);
      if (/[ \t]/.test(verb)) throw new Error(`verb with a blank: ${JSON.stringify(verb)}`);
    }),
  },
  {
    name: 'address parser',
    property: fc.property(byteString(400), fc.boolean(), (arg, mail) => {
      const r = parsePath(arg, mail ? 'mail' : 'rcpt');
      if (!r.ok && /[\0\r\n]/.test(r.text)) throw new Error(`control byte in reply ${JSON.stringify(r.text)}`);
      if (r.ok && /[\r\n]/.test(r.address)) throw new Error(`line break in address ${JSON.stringify(r.address)}`);
    }),
  },
  {
    name: 'ESMTP parameters',
    property: fc.property(fc.array(fc.tuple(fc.constantFrom('SIZE', 'BODY', 'RET', 'ENVID', 'NOTIFY', 'ORCPT', 'X'), fc.option(byteString(30))), { maxLength: 6 }), (words) => {
      const params = words.map(([key, value]) => ({ key, value: value ?? undefined }));
      for (const result of [checkMailParams(params, { maxMessageSize: 1000, dsn: true }), checkRcptParams(params, { dsn: true })]) {
        if (!result.ok && /[\0\r\n]/.test(result.text)) throw new Error(`control byte in reply ${JSON.stringify(result.text)}`);
      }
    }),
  },
  {
    name: 'line reader',
    property: fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }), (chunks) => {
      const reader = new LineReader({ maxLineLength: 64 });
      for (const c of chunks) {
        reader.push(Buffer.from(c));
        for (let r = reader.next(); r !== undefined; r = reader.next()) {
          if (r.kind === 'line' && r.text.length > 65) throw new Error(`line of ${r.text.length} bytes passed the limit`);
        }
      }
    }),
  },
  {
    name: 'DATA reader end of data',
    property: fc.property(fc.array(fc.constantFrom('\r', '\n', '.', 'a', '\r\n', '\n.\n', '\r.\r', '\n.\r\n', '\r\n.\n', '.\r\n', '\0'), { maxLength: 60 }), (tokens) => {
      const wire = tokens.join('') + '\r\n.\r\nNEXT';
      const end = ('\r\n' + wire).indexOf('\r\n.\r\n');
      const reader = new DataReader({ maxMessageSize: 0, maxHeadersLength: 0 });
      const last = reader.push(Buffer.from(wire, 'latin1')).find((e) => e.kind === 'end');
      if (!last || last.kind !== 'end') throw new Error('no end of data');
      if (last.rest.toString('latin1') !== wire.slice(end + 3)) throw new Error(`ended at the wrong place: ${JSON.stringify(wire)}`);
    }),
  },
  {
    name: 'queue control file reader',
    property: fc.property(byteString(500), (text) => only(QueueFileError, () => parseControlFile(text, '6B4GqLnl017681'))),
  },
  {
    name: 'milter packet decoder',
    property: fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => only(PacketError, () => new PacketDecoder(200).push(Buffer.from(bytes)))),
  },
  {
    name: '.mc reader',
    property: fc.property(configText, (text) => only(ConfigError, () => readMc(text, 'fuzz.mc', new ConfigBuilder()))),
  },
  {
    name: '.cf reader',
    property: fc.property(configText, (text) => only(ConfigError, () => readCf(text, 'fuzz.cf', new ConfigBuilder()))),
  },
];
