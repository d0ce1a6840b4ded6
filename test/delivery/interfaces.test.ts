// Address literals of the host's own interfaces count as local, as sendmail
// adds them to class w unless DontProbeInterfaces is True or Loopback.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isOwnAddressLiteral } from '../../src/delivery/interfaces';
import { isOwnName } from '../../src/delivery/router';
import { makeConfig } from './fixtures';

function configWith(dontProbe?: string) {
  const options = new Map<string, unknown>(dontProbe === undefined ? [] : [['DontProbeInterfaces', dontProbe]]);
  return makeConfig({ options: options as ReturnType<typeof makeConfig>['options'] });
}

test('loopback literal is own by default', () => {
  const config = configWith();
  assert.equal(isOwnAddressLiteral('[127.0.0.1]', config), true);
  assert.equal(isOwnName('[127.0.0.1]', config), true);
  assert.equal(isOwnAddressLiteral('[127.0.0.2]', config), false);
  assert.equal(isOwnAddressLiteral('127.0.0.1', config), false, 'only a literal in brackets');
  assert.equal(isOwnAddressLiteral('[192.0.2.1]', config), false);
});

test('DontProbeInterfaces turns literals off', () => {
  assert.equal(isOwnAddressLiteral('[127.0.0.1]', configWith('True')), false);
  // Loopback leaves out the loopback interfaces only.
  assert.equal(isOwnAddressLiteral('[127.0.0.1]', configWith('Loopback')), false);
  assert.equal(isOwnAddressLiteral('[127.0.0.1]', configWith('False')), true);
});
