// The child process of the *file* mailer that writes a /file target as the
// target's user (see file-mailer.ts). Its standard input is the data file.
// The parent sends the target, the head of the message and the rules once
// over the IPC channel, and the child sends the outcome back the same way.

import * as fs from 'node:fs';

import { appendToFile, type AppendOutcome, type AppendRules } from './file-mailer';

interface Request {
  file: string;
  head: string;
  rules: AppendRules;
}

process.once('message', (raw) => {
  const req = raw as Request;
  const body = fs.createReadStream('', { fd: 0, autoClose: false });
  appendToFile(req.file, Buffer.from(req.head, 'latin1'), body, req.rules)
    .catch((err: Error): AppendOutcome => ({ status: 'tempfail', text: `I/O error: ${err.message}` }))
    .then((outcome) => process.send?.(outcome, () => process.exit(0)));
});
