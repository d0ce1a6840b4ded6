import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigBuilder } from '../../src/config/builder';
import { readMc } from '../../src/config/mc';
import { readCf } from '../../src/config/cf';
import { ConfigError } from '../../src/config/errors';
import { loadConfig } from '../../src/config/load';

// Pieces that steer random text into the readers' interesting paths.
const FRAGMENTS = [
  '`', "'", '(', ')', ',', '\n', ' ', 'dnl', '#', 'define', 'divert', 'FEATURE', 'DAEMON_OPTIONS',
  'MAILER', 'INPUT_MAIL_FILTER', 'LOCAL_CONFIG', 'ifdef', 'undefine', 'confMAX_HOP', 'confFOO',
  'use_cw_file', 'O ', 'D', 'C', 'F', 'M', 'X', 'Port=', 'Addr=', '=', '$', '{', '}', 'Timeout.', 'smtp',
  'include', '-1', '0', '1h', 'x',
];

const garbage = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.array(fc.constantFrom(...FRAGMENTS), { maxLength: 60 }).map((parts) => parts.join('')),
);

function onlyConfigErrors(step: () => void): void {
  try {
    step();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `threw ${String(err)}`);
  }
}

test('random mc text throws only ConfigError', () => {
  fc.assert(
    fc.property(garbage, (text) => {
      onlyConfigErrors(() => readMc(text, 'fuzz.mc', new ConfigBuilder()));
    }),
    { numRuns: 2000 },
  );
});

test('random cf text throws only ConfigError', () => {
  fc.assert(
    fc.property(garbage, (text) => {
      onlyConfigErrors(() => readCf(text, 'fuzz.cf', new ConfigBuilder()));
    }),
    { numRuns: 2000 },
  );
});

test('random -O settings throw only ConfigError', () => {
  const name = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('Timeout.', 'Milter.macros.', 'Q', 'Super'));
  fc.assert(
    fc.property(name, fc.string({ maxLength: 40 }), (optionName, value) => {
      onlyConfigErrors(() => loadConfig({ overrides: [{ name: optionName, value }] }));
    }),
    { numRuns: 2000 },
  );
});
