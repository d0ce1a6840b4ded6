import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SubmissionReader } from '../../src/cli/submission-reader';

/** Reads `input` as `-t -i` does and returns the header fields and the body as text. */
function read(input: string): { headers: string[]; body: string } {
  const reader = new SubmissionReader(true, 0);
  const parts = [...reader.push(Buffer.from(input, 'latin1')), ...reader.finish()];
  return { headers: reader.headers, body: Buffer.concat(parts).toString('latin1') };
}

test('submission line ends become CRLF', () => {
  const { headers, body } = read('To: bob@remote.test\nSubject: hi\r\n\nline one\r\nline two\n');
  assert.deepEqual(headers, ['To: bob@remote.test', 'Subject: hi']);
  assert.equal(body, 'line one\r\nline two\r\n');
});

test('bare CR in body becomes a line end', () => {
  const { body } = read('To: bob@remote.test\n\nbare cr\rhere\nend\r\r\n');
  assert.equal(body, 'bare cr\r\nhere\r\nend\r\n\r\n');
  assert.equal(/\r(?!\n)/.test(body), false);
});

test('bare CR in header becomes a space', () => {
  const { headers, body } = read('To: bob@remote.test\nSubject: one\rtwo\n\nbody\n');
  assert.deepEqual(headers, ['To: bob@remote.test', 'Subject: one two']);
  assert.equal(body, 'body\r\n');
});
