// Writes a small LMTP server program for tests: it speaks LMTP (RFC 2033) on
// stdin and stdout, as mail.local -l does, appends each accepted message to
// <dir>/<user>.mail, and replies to the users listed in LMTP_FAIL or in the file
// <dir>/fail-users with "452 4.2.2 Mailbox full" after DATA (or with
// LMTP_FAIL_REPLY). <dir> is LMTP_DIR.

import * as fs from 'node:fs';
import * as path from 'node:path';

const SOURCE = `
const fs = require('fs');
const path = require('path');
const dir = process.env.LMTP_DIR;
let failFile = '';
try { failFile = fs.readFileSync(path.join(dir, 'fail-users'), 'utf8'); } catch {}
const fail = new Set((process.env.LMTP_FAIL || '').split(',').concat(failFile.split(/\\s+/)).filter(Boolean));
const failReply = process.env.LMTP_FAIL_REPLY || '452 4.2.2 Mailbox full';
fs.appendFileSync(path.join(dir, 'argv.log'), JSON.stringify(process.argv.slice(1)) + '\\n');
let buffer = '';
let inData = false;
let data = [];
let rcpts = [];
let from = '';
const out = (line) => process.stdout.write(line + '\\r\\n');
out('220 test-lmtp LMTP ready');
process.stdin.setEncoding('latin1');
process.stdin.on('data', (chunk) => {
  buffer += chunk;
  let i;
  while ((i = buffer.indexOf('\\n')) >= 0) {
    const line = buffer.slice(0, i).replace(/\\r$/, '');
    buffer = buffer.slice(i + 1);
    handle(line);
  }
});
process.stdin.on('end', () => process.exit(0));
function handle(line) {
  if (inData) {
    if (line === '.') {
      inData = false;
      for (const r of rcpts) {
        const user = r.replace(/@.*/, '');
        if (fail.has(user)) { out(failReply.replace('%u', r)); continue; }
        fs.appendFileSync(path.join(dir, user + '.mail'), 'MAIL FROM ' + from + '\\n' + data.join('\\n') + '\\n');
        out('250 2.1.5 <' + r + '> delivered');
      }
      rcpts = []; data = [];
      return;
    }
    data.push(line.startsWith('..') ? line.slice(1) : line);
    return;
  }
  const verb = line.slice(0, 4).toUpperCase();
  if (verb === 'LHLO') { out('250-test-lmtp'); out('250-PIPELINING'); out('250 ENHANCEDSTATUSCODES'); }
  else if (verb === 'MAIL') { from = line.replace(/^MAIL FROM:/i, ''); out('250 2.1.0 OK'); }
  else if (verb === 'RCPT') { rcpts.push(line.replace(/^RCPT TO:<([^>]*)>.*$/i, '$1')); out('250 2.1.5 OK'); }
  else if (verb === 'DATA') { inData = true; out('354 go ahead'); }
  else if (verb === 'QUIT') { out('221 2.0.0 bye'); process.exit(0); }
  else if (verb === 'RSET') { rcpts = []; out('250 2.0.0 OK'); }
  else out('500 5.5.1 unknown command');
}
`;

/** Writes the server into `dir` as an executable script and returns its path. */
export function writeLmtpServer(dir: string): string {
  const file = path.join(dir, 'test-lmtp');
  fs.writeFileSync(file, `#!${process.execPath}\n${SOURCE}`, { mode: 0o755 });
  return file;
}

/** Returns the messages a user received, split at the "MAIL FROM" lines the server writes. */
export function receivedBy(dir: string, user: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, `${user}.mail`), 'latin1');
  } catch {
    return [];
  }
  return text.split(/^(?=MAIL FROM )/m).filter((m) => m !== '');
}
