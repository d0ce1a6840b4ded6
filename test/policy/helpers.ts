// An in-memory access map and a log collector for the policy unit tests.

import { AccessMap } from '../../src/policy/access';
import { Logger } from '../../src/log/logger';

export function accessFrom(lines: Record<string, string>): AccessMap {
  const entries = new Map(Object.entries(lines).map(([k, v]) => [k.toLowerCase(), v]));
  return new AccessMap({ type: 'text', path: '', get: (k) => entries.get(k.toLowerCase()), refresh: () => undefined });
}

export function collectingLogger(level = 9): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = new Logger([{ write: (severity, line) => lines.push(`${severity}: ${line}`), close: () => undefined }], level);
  return { logger, lines };
}
