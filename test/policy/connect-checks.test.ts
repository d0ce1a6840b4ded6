// The connect-time policy pieces: lookups, greet_pause values, ruleset texts,
// Connect: values, blocklist patterns, mtamark names and connection refusal.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReply } from '../../src/smtp/reply';
import { domainKeys, lookupHostThenAddress } from '../../src/policy/lookup';
import { greetPauseMs } from '../../src/policy/greet-pause';
import { errorReply, expandRulesetText } from '../../src/policy/ruleset-text';
import { connectValueDecision } from '../../src/policy/check-relay';
import { answerMatches, parseBlocklistFeature } from '../../src/policy/dnsbl';
import { mtamarkName, parseMtamarkFeature } from '../../src/policy/mtamark';
import { ConnectionRefusal } from '../../src/daemon/refuse-connections';
import { accessFrom, collectingLogger } from './helpers';

test('domain keys walk to the top', () => {
  assert.deepEqual(domainKeys('A.b.Example.'), ['a.b.example', 'b.example', 'example']);
  // An address literal walks its networks, as the D ruleset of sendmail's proto.m4 does.
  assert.deepEqual(domainKeys('[192.0.2.1]'), ['[192.0.2.1]', '[192.0.2]', '[192.0]', '[192]']);
  assert.deepEqual(domainKeys(''), []);
});

test('Connect lookups: name, address, bare keys', () => {
  const access = accessFrom({ 'Connect:example.net': 'REJECT', '192.0.2': 'RELAY', 'Connect:IPv6:2001:db8': 'OK' });
  assert.equal(lookupHostThenAddress(access, 'Connect', 'mx.example.net', '198.51.100.1', true)?.value, 'REJECT');
  assert.equal(lookupHostThenAddress(access, 'Connect', '', '192.0.2.55', true)?.value, 'RELAY');
  assert.equal(lookupHostThenAddress(access, 'Connect', '', '192.0.2.55', false), undefined, 'tag-only lookups skip bare keys');
  assert.equal(lookupHostThenAddress(access, 'Connect', '', '2001:db8::1', true)?.key, 'Connect:IPv6:2001:db8');
});

test('greet pause: host, prefix, default, cap', () => {
  const access = accessFrom({
    'GreetPause:friendly.example': '0',
    'GreetPause:198.51.100': '1500',
    'GreetPause:192.0.2.9': '999999',
    'GreetPause:192.0.2.10': 'soon',
  });
  assert.equal(greetPauseMs(access, ['5000'], 'mx.friendly.example', '203.0.113.1'), 0);
  assert.equal(greetPauseMs(access, ['5000'], '', '198.51.100.7'), 1500);
  assert.equal(greetPauseMs(access, ['5000'], '', '203.0.113.1'), 5000);
  assert.equal(greetPauseMs(access, ['5000'], '', '192.0.2.9'), 300_000);
  assert.equal(greetPauseMs(access, ['5000'], '', '192.0.2.10'), 0);
  assert.equal(greetPauseMs(undefined, ['700'], '', '192.0.2.10'), 700);
  assert.equal(greetPauseMs(access, [], '', '203.0.113.1'), 0);
});

test('ruleset text expands macros', () => {
  const macros = new Map([['{client_addr}', '192.0.2.1']]);
  assert.equal(expandRulesetText('"550 Rejected: " $&{client_addr} " listed at bl.example"', macros),
    '550 Rejected: 192.0.2.1 listed at bl.example');
});

test('error replies take their enhanced code', () => {
  assert.equal(formatReply(errorReply('550 Access denied', '5.7.1')), '550 5.7.1 Access denied\r\n');
  assert.equal(formatReply(errorReply('451 4.7.0 later', '4.4.3')), '451 4.7.0 later\r\n');
  assert.equal(formatReply(errorReply('go away', undefined)), '553 5.3.0 go away\r\n');
});

test('Connect values become decisions', () => {
  const reject = connectValueDecision('REJECT', false);
  assert.equal(reject.action === 'reject' && formatReply(reject.reply), '550 5.7.1 Access denied\r\n');
  const err = connectValueDecision('ERROR:4.7.1:421 closing', false);
  assert.equal(err.action === 'reject' && formatReply(err.reply), '421 4.7.1 closing\r\n');
  const plain = connectValueDecision('ERROR:"550 no thanks"', false);
  assert.equal(plain.action === 'reject' && formatReply(plain.reply), '550 5.0.0 no thanks\r\n');
  assert.deepEqual(connectValueDecision('QUARANTINE:held', false), { action: 'quarantine', reason: 'held', delayed: false });
  assert.equal(connectValueDecision('RELAY', false).action, 'relay');
  assert.equal(connectValueDecision('OK', false).action, 'ok');
  // SKIP ends a lookup without a result. It does not accept the client, so the later checks still run.
  assert.equal(connectValueDecision('SKIP', false).action, 'continue');
  assert.equal(connectValueDecision('DISCARD', true).action, 'discard');
});

test('enhdnsbl answer patterns', () => {
  assert.ok(answerMatches('127.0.0.2.', '127.0.0.2.'));
  assert.ok(!answerMatches('127.0.0.3.', '127.0.0.2.'));
  assert.ok(answerMatches('127.0.0.3.', '127.0.0.$-.'));
  assert.ok(answerMatches('127.1.2.3.', '$+'));
  const f = parseBlocklistFeature('enhdnsbl', ['bl.example', '', 't', '127.0.0.2.']);
  assert.deepEqual(f?.values, ['127.0.0.2.']);
  assert.equal(parseBlocklistFeature('dnsbl', []), undefined);
});

test('mtamark name and texts', () => {
  assert.equal(mtamarkName('_perm._smtp._srv', '192.0.2.1'), '_perm._smtp._srv.1.2.0.192.in-addr.arpa');
  assert.equal(mtamarkName('_perm._smtp._srv', '::1'), undefined);
  const f = parseMtamarkFeature(['', 't']);
  const macros = new Map([['{client_addr}', '192.0.2.1']]);
  assert.equal(expandRulesetText(f.tempText ?? '', macros), '451 Temporary lookup failure of _perm._smtp._srv.192.0.2.1');
  assert.equal(expandRulesetText(f.rejectText, macros), '550 Rejected: 192.0.2.1 not listed as MTA');
  assert.equal(parseMtamarkFeature([]).tempText, undefined);
});

test('refusal logs at RejectLogInterval', () => {
  let load = 20;
  let now = 0;
  const { logger, lines } = collectingLogger();
  const refusal = new ConnectionRefusal(
    { refuseLA: 12, maxDaemonChildren: 0, rejectLogIntervalMs: 3_600_000, loadAverage: () => load, now: () => now },
    logger,
  );
  for (let i = 0; i < 100; i++) assert.equal(refusal.refuse('MTA', 0), true);
  assert.deepEqual(lines, ['notice: rejecting connections on daemon MTA: load average: 20']);
  now = 3_600_000;
  refusal.refuse('MTA', 0);
  now = 3_700_000;
  refusal.refuse('MTA', 0);
  assert.equal(lines[1], 'err: have been rejecting connections on daemon MTA for 01:00:00');
  assert.equal(lines.length, 2);
  load = 1;
  assert.equal(refusal.refuse('MTA', 0), false);
  assert.equal(lines[2], 'info: accepting connections again for daemon MTA');
});

test('refusal at MaxDaemonChildren', () => {
  const { logger, lines } = collectingLogger();
  const refusal = new ConnectionRefusal(
    { refuseLA: 0, maxDaemonChildren: 2, rejectLogIntervalMs: 0, loadAverage: () => 99 },
    logger,
  );
  assert.equal(refusal.refuse('MTA', 1), false);
  assert.equal(refusal.refuse('MTA', 2), true);
  assert.equal(refusal.refuse('MTA', 3), true);
  assert.deepEqual(lines, ['notice: rejecting connections on daemon MTA: 2 children, max 2']);
});
