// Shared builders for the delivery tests: a Config with only what delivery
// reads, a queue item, and a logger that records its lines.

import type { Config } from '../../src/config/types';
import { Logger, LogSink, Severity } from '../../src/log/logger';
import type { QueueItem, QueueRecipient } from '../../src/queue/types';

/**
 * Builds a Config for delivery tests. Fields that delivery never reads may be
 * added to Config by other parts, hence the cast.
 */
export function makeConfig(overrides: Partial<Config> = {}): Config {
  const config = {
    options: new Map(),
    origins: new Map(),
    hostName: 'posthorn.test',
    localDomains: new Set(['posthorn.test', 'localhost']),
    relayDomains: new Set(),
    queueDirectory: '/nonexistent',
    mailboxDirectory: '/nonexistent',
    nameServers: [],
    superSafe: 'true',
    deliveryMode: 'background',
    maxMessageSize: 0,
    maxRecipientsPerMessage: 0,
    maxHeadersLength: 0,
    maxLineLength: 2048,
    privacyOptions: new Set(),
    timeouts: new Map(),
    daemons: [],
    features: [],
    mailers: [],
    macros: new Map(),
    logFile: 'stderr',
    logLevel: 9,
    pidFile: '',
    queueSortOrder: 'priority',
    minQueueAge: 0,
    sourceFile: 'test',
    classes: new Map(),
    mailFilters: [],
    notices: [],
    ...overrides,
  };
  return config as Config;
}

export function recipient(address: string, extra: Partial<QueueRecipient> = {}): QueueRecipient {
  return { address, state: 'pending', ...extra };
}

export function makeItem(id: string, recipients: QueueRecipient[], extra: Partial<QueueItem> = {}): QueueItem {
  return {
    id,
    created: Math.floor(Date.now() / 1000),
    lastAttempt: 0,
    attempts: 0,
    priority: 30000,
    flags: '',
    macros: new Map([['_', 'client.origin.test [127.0.0.1]']]),
    sender: 'alice@origin.test',
    recipients,
    headers: ['From: alice@origin.test', 'To: bob@dest.test', 'Subject: greetings'],
    bodySize: 0,
    ...extra,
  };
}

export class MemorySink implements LogSink {
  readonly lines: string[] = [];

  write(_severity: Severity, line: string): void {
    this.lines.push(line);
  }

  close(): void {}
}

export function memoryLogger(): { logger: Logger; sink: MemorySink } {
  const sink = new MemorySink();
  return { logger: new Logger([sink], 9), sink };
}
