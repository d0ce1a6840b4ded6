// The relay decision for address literals of the host itself: with the
// interface check (ownLiteral) such a recipient is local, as sendmail's class w
// makes it, and a routing local part behind it is still a relay attempt.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRelay, type RelayPolicy } from '../../src/policy/relay';

const policy: RelayPolicy = {
  localDomains: new Set(['posthorn.test']),
  relayDomains: new Set(),
  ownLiteral: (domain) => domain === '[127.0.0.1]',
};

test('own address literal is local', () => {
  assert.equal(checkRelay(policy, 'alice@[127.0.0.1]', false).action, 'continue');
});

test('other literal is relaying', () => {
  const verdict = checkRelay(policy, 'alice@[127.0.0.2]', false);
  assert.equal(verdict.action, 'reject');
});

test('routing local part at own literal', () => {
  const verdict = checkRelay(policy, 'victim%remote.example@[127.0.0.1]', false);
  assert.equal(verdict.action, 'reject');
});

test('no ownLiteral keeps literals remote', () => {
  const verdict = checkRelay({ localDomains: policy.localDomains, relayDomains: new Set() }, 'alice@[127.0.0.1]', false);
  assert.equal(verdict.action, 'reject');
});
