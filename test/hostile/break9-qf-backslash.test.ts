// Control files that sendmail 8.17 wrote for a recipient with a quoted pair in
// its local part. sendmail writes the r, R and A lines as they are, without
// escaping backslashes, so they must be read back unchanged.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseControlFile } from '../../src/queue/qf';

/** Lines of a control file from Debian's sendmail 8.17.1.9 `-odq -N failure RCPT`. */
function sendmailControlFile(recipient: string): string {
  return [
    'V8',
    'T1796438631',
    'K0',
    'N0',
    'P30017',
    'Fs',
    '${daemon_flags}c u',
    'Sx@y.example',
    'Ax@y.example',
    `rRFC822; ${recipient}`,
    `RPNF:${recipient}`,
    'H?F?From: x@y.example',
    'H??Subject: t',
    '.',
    '',
  ].join('\n');
}

test('sendmail qf with a quoted space parses', () => {
  // Written for the recipient "a\ b"@r.example.
  const recipient = '"a\\ b"@r.example';
  const item = parseControlFile(sendmailControlFile(recipient), '6B52hpOe031163');
  assert.equal(item.recipients.length, 1);
  assert.equal(item.recipients[0].address, recipient);
  assert.equal(item.recipients[0].finalRcpt, `RFC822; ${recipient}`);
});

test('sendmail qf keeps a quoted backslash', () => {
  // Written for the recipient "a\\b"@r.example, whose local part is a\b.
  const recipient = '"a\\\\b"@r.example';
  const item = parseControlFile(sendmailControlFile(recipient), '6B52hpOe031163');
  assert.equal(item.recipients[0].address, recipient);
  assert.equal(item.recipients[0].finalRcpt, `RFC822; ${recipient}`);
});
