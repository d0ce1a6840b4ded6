// Shared fixtures for the queue tests: a logger that keeps its lines, a
// temporary queue directory, and a sample item.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Logger, LogSink, Severity } from '../../src/log/logger';
import { QueueItem } from '../../src/queue/types';

export interface CapturedLogger {
  logger: Logger;
  lines: string[];
}

export function captureLogger(): CapturedLogger {
  const lines: string[] = [];
  const sink: LogSink = {
    write(_severity: Severity, line: string) {
      lines.push(line);
    },
    close() {},
  };
  return { logger: new Logger([sink]), lines };
}

export function makeTempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-queue-'));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export function sampleItem(id: string): QueueItem {
  return {
    id,
    created: 1150805644,
    lastAttempt: 0,
    attempts: 0,
    priority: 31234,
    bodyType: '8BITMIME',
    flags: 'bdn',
    macros: new Map([
      ['r', 'ESMTP'],
      ['_', 'client.example [127.0.0.1]'],
      ['{client_addr}', '127.0.0.1'],
    ]),
    sender: 'alice@example.org',
    envid: 'QQ314159',
    ret: 'HDRS',
    recipients: [
      {
        address: 'bob@example.com',
        orcpt: 'rfc822;bob@example.com',
        notify: ['FAILURE', 'DELAY'],
        state: 'deferred',
        status: 'Deferred: Connection refused by mx.example.com.',
        dsnCode: '4.4.1',
        remoteHost: 'mx.example.com',
      },
      { address: 'carol@example.com', state: 'pending' },
    ],
    headers: [
      'Received: from client.example ([127.0.0.1])\r\n\tby mail.example.org; Tue, 20 Jun 2006 12:14:04 GMT',
      'Subject: hello',
    ],
    bodySize: 1234,
  };
}
