// mailertable, virtusertable and genericstable lookups with each key form,
// %1 substitution, and masquerading.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../../src/config/types';
import type { LookupMap } from '../../src/maps/map';
import { lookupMailertable, parseMailertableValue } from '../../src/delivery/mailertable';
import { lookupVirtuser } from '../../src/delivery/virtusertable';
import { lookupGenerics, rewriteOutbound, rewriteSenderAddress } from '../../src/delivery/genericstable';
import { parseTableError } from '../../src/delivery/feature-maps';
import { routeRecipients } from '../../src/delivery/router';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeConfig, makeItem } from '../delivery/fixtures';

function memoryMap(entries: Record<string, string>): LookupMap {
  const m = new Map(Object.entries(entries).map(([k, v]) => [k.toLowerCase(), v]));
  return { type: 'text', path: 'memory', get: (k) => m.get(k.toLowerCase()), refresh: () => undefined };
}

test('mailertable exact, parent and dot keys', () => {
  const map = memoryMap({
    'example.com': 'esmtp:[mx.example.com]',
    '.example.com': 'relay:%1.gw.example.net',
    '.': 'smtp:fallback.example.org',
  });
  assert.deepEqual(lookupMailertable(map, 'example.com'), { value: 'esmtp:[mx.example.com]', key: 'example.com' });
  assert.deepEqual(lookupMailertable(map, 'a.b.example.com.'), { value: 'relay:a.b.gw.example.net', key: '.example.com' });
  assert.deepEqual(lookupMailertable(map, 'other.org'), { value: 'smtp:fallback.example.org', key: '.' });
  assert.equal(lookupMailertable(memoryMap({}), 'other.org'), undefined);
});

test('mailertable value forms', () => {
  const config = makeConfig();
  assert.deepEqual(parseMailertableValue('esmtp:[10.0.0.1]', config), { kind: 'mailer', mailer: 'esmtp', host: '[10.0.0.1]', user: undefined });
  assert.deepEqual(parseMailertableValue('cyrusv2:localhost', config), { kind: 'mailer', mailer: 'cyrusv2', host: 'localhost', user: undefined });
  assert.deepEqual(parseMailertableValue('smtp:postmaster@hub.example', config), { kind: 'mailer', mailer: 'smtp', host: 'hub.example', user: 'postmaster' });
  assert.deepEqual(parseMailertableValue('local:bob', config), { kind: 'local', user: 'bob' });
  assert.deepEqual(parseMailertableValue('local:', config), { kind: 'local' });
  assert.deepEqual(parseMailertableValue('gw.example.net', config), { kind: 'mailer', mailer: 'relay', host: 'gw.example.net' });
  assert.deepEqual(parseMailertableValue('posthorn.test', config), { kind: 'local' });
  const err = parseMailertableValue('error:5.7.1:550 Mail for this domain refused', config);
  assert.deepEqual(err, { kind: 'error', status: 'permfail', dsn: '5.7.1', reply: '550 5.7.1 Mail for this domain refused', text: 'Mail for this domain refused' });
});

test('table error keyword forms', () => {
  assert.deepEqual(parseTableError('nouser User unknown'), { kind: 'error', status: 'permfail', dsn: '5.1.1', reply: '550 5.1.1 User unknown', text: 'User unknown' });
  assert.equal(parseTableError('tempfail Try later').status, 'tempfail');
  assert.equal(parseTableError('4.3.0:451 Busy').reply, '451 4.3.0 Busy');
});

test('virtusertable lookup order', () => {
  const map = memoryMap({
    'info@v.example': 'alice',
    'bob++@v.example': 'bob-detail-%2',
    'bob+*@v.example': 'bob-any%3',
    'carol@v.example': 'carol-plain-%2',
    '+*@v.example': 'plus-%1-%2',
    '@v.example': '%1@catch.example',
  });
  const address = (local: string): string | undefined => {
    const r = lookupVirtuser(map, local, 'V.example');
    return r?.kind === 'address' ? r.address : undefined;
  };
  assert.equal(address('info'), 'alice');
  assert.equal(address('bob+news'), 'bob-detail-news');
  assert.equal(address('bob+'), 'bob-any+');
  assert.equal(address('carol+x'), 'carol-plain-x');
  assert.equal(address('dave+y'), 'plus-dave-y');
  assert.equal(address('erin'), 'erin@catch.example');
  assert.equal(lookupVirtuser(memoryMap({}), 'x', 'v.example'), undefined);
});

test('genericstable lookup order', () => {
  const map = memoryMap({
    'alice@posthorn.test': 'alice.smith@example.com',
    'bob+*@posthorn.test': 'bob.%1@example.com',
    '@posthorn.test': '%1@catch.example.com',
    carol: 'carol.jones',
  });
  assert.equal(lookupGenerics(map, 'alice', 'posthorn.test', 'mx.posthorn.test'), 'alice.smith@example.com');
  assert.equal(lookupGenerics(map, 'bob+lists', 'posthorn.test', 'mx.posthorn.test'), 'bob.lists@example.com');
  assert.equal(lookupGenerics(map, 'dave', 'posthorn.test', 'mx.posthorn.test'), 'dave@catch.example.com');
  assert.equal(lookupGenerics(map, 'carol', 'other.test', 'mx.posthorn.test'), 'carol.jones@mx.posthorn.test');
  assert.equal(lookupGenerics(memoryMap({}), 'x', 'y', 'z'), undefined);
});

function tableConfig(t: { after(fn: () => void): void }, features: Array<[string, string]>, files: Record<string, string>): Config {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tables-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = makeConfig();
  for (const [name, file] of features) {
    const args = file === '' ? [] : [`text ${path.join(dir, file)}`];
    config.features.push({ name, args, file: 'test', line: 1 });
  }
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), text);
  return config;
}

test('masquerade header and envelope', (t) => {
  const config = tableConfig(t, [['masquerade_envelope', '']], {});
  config.macros.set('M', 'example.com');
  config.classes.set('E', new Set(['root']));
  const out = rewriteOutbound('alice@posthorn.test', ['From: Alice <alice@posthorn.test>', 'To: bob@remote.example', 'Sender: root@posthorn.test'], config);
  assert.equal(out.sender, 'alice@example.com');
  assert.deepEqual(out.headers, ['From: Alice <alice@example.com>', 'To: bob@remote.example', 'Sender: root@posthorn.test']);
  assert.equal(rewriteSenderAddress('carol@elsewhere.example', config), 'carol@elsewhere.example');
  assert.equal(rewriteSenderAddress('dave', config), 'dave@example.com');
});

test('masquerade without envelope feature', (t) => {
  const config = tableConfig(t, [], {});
  config.macros.set('M', 'example.com');
  const out = rewriteOutbound('alice@posthorn.test', ['From: alice@posthorn.test'], config);
  assert.equal(out.sender, 'alice@posthorn.test');
  assert.deepEqual(out.headers, ['From: alice@example.com']);
});

test('genericstable for generics domain', (t) => {
  const config = tableConfig(t, [['genericstable', 'generics']], { generics: 'alice@posthorn.test alice.smith@example.com\n' });
  config.classes.set('G', new Set(['posthorn.test']));
  const out = rewriteOutbound('alice@posthorn.test', ['From: "Alice" <alice@posthorn.test>', 'Reply-To: alice@posthorn.test'], config);
  assert.equal(out.sender, 'alice@posthorn.test');
  assert.deepEqual(out.headers, ['From: "Alice" <alice.smith@example.com>', 'Reply-To: alice.smith@example.com']);
  assert.equal(rewriteSenderAddress('alice@other.test', config), 'alice@other.test');
});

test('router follows mailertable', (t) => {
  const config = tableConfig(t, [['mailertable', 'mailertable']], { mailertable: '.partner.example esmtp:[127.0.0.9]\n' });
  config.smartHost = 'smart.example';
  const item = makeItem('q1', [
    { address: 'a@x.partner.example', state: 'pending' },
    { address: 'b@other.example', state: 'pending' },
    { address: '|/bin/true', state: 'pending', parent: 'list@posthorn.test' },
  ]);
  const routes = routeRecipients(item, config);
  assert.deepEqual(
    routes.map((r) => [r.mailer, r.destination, r.mailertable ?? false, r.recipients.map((x) => x.address)]),
    [
      ['esmtp', '[127.0.0.9]', true, ['a@x.partner.example']],
      ['relay', 'smart.example', false, ['b@other.example']],
      ['prog', 'posthorn.test', false, ['|/bin/true']],
    ],
  );
});
