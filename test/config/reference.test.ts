import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderOptionReference } from '../../src/config/reference';
import { printConfig } from '../../src/config/print';
import { loadConfig } from '../../src/config/load';
import { OPTIONS } from '../../src/config/options';

// Compiled to dist/test/config/, three levels below the repository root.
const DOCS_FILE = path.resolve(__dirname, '../../../docs/options.md');

test('docs/options.md matches the option table', () => {
  const expected = renderOptionReference();
  const actual = fs.readFileSync(DOCS_FILE, 'utf8');
  assert.equal(actual, expected,
    'docs/options.md is out of date: regenerate it with renderOptionReference()');
});

test('reference lists every option once', () => {
  const text = renderOptionReference();
  for (const def of OPTIONS) {
    assert.ok(text.includes(`| \`${def.name}\``), def.name);
  }
  assert.match(text, /\| `QueueDirectory` \(`Q`\) \| `QUEUE_DIR` \| path \| `\/var\/spool\/mqueue` \|/);
});

test('printConfig marks non-default origins', () => {
  const cfg = loadConfig({ overrides: [{ name: 'MaxHopCount', value: '31' }] });
  const text = printConfig(cfg);
  assert.match(text, /^O MaxHopCount=31\t# from -O$/m);
  assert.match(text, /^O QueueDirectory=\/var\/spool\/mqueue$/m);
  assert.match(text, /^O Timeout\.queuereturn=5d$/m);
  assert.match(text, /^O SuperSafe=true$/m);
  assert.match(text, /^#  Name=MTA, Family=inet, Addr=0\.0\.0\.0, Port=25, M=, Listen=1024$/m);
});

test('printConfig lists features with state', () => {
  const cfg = loadConfig({});
  cfg.features.push({ name: 'ldap_routing', args: ['1000'], file: 'x.mc', line: 3 });
  cfg.features.push({ name: 'use_cw_file', args: [], file: 'x.mc', line: 4 });
  const text = printConfig(cfg);
  assert.match(text, /^#  FEATURE\(ldap_routing, 1000\)\tnot yet enforced\t# from x\.mc:3$/m);
  assert.match(text, /^#  FEATURE\(use_cw_file\)\tenforced\t# from x\.mc:4$/m);
});

test('printConfig option lines follow table order', () => {
  const lines = printConfig(loadConfig({})).split('\n').filter((l) => /^#?O /.test(l));
  const names = lines.map((l) => l.replace(/^#?O /, '').split('=')[0]);
  assert.deepEqual(names, OPTIONS.map((def) => def.name));
});
