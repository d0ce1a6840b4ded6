// DaemonPortOptions values (`Port=2525, Addr=127.0.0.1, Name=MTA, M=Ea`), as
// written in `O DaemonPortOptions=` lines and DAEMON_OPTIONS(...) in .mc files.

import * as net from 'node:net';
import type { DaemonSpec } from './types';
import { ownEntry } from './own';

/** Service names sendmail configurations commonly use in Port=. */
const SERVICES: Record<string, number> = { smtp: 25, submission: 587, smtps: 465, lmtp: 24 };

export const DEFAULT_LISTEN_BACKLOG = 1024;

/**
 * Parse one DaemonPortOptions value. Keys are read by their first letter,
 * in either case, as sendmail does. `index` numbers unnamed daemons
 * (`Daemon0`, `Daemon1`, ...). Throws an Error naming the bad part.
 */
export function parseDaemonSpec(spec: string, index: number): DaemonSpec {
  const daemon: DaemonSpec = {
    name: `Daemon${index}`,
    addr: '',
    port: 25,
    family: 'inet',
    modifiers: '',
    listen: DEFAULT_LISTEN_BACKLOG,
  };

  for (const part of spec.split(',')) {
    const field = part.trim();
    if (field === '') {
      continue;
    }
    const eq = field.indexOf('=');
    if (eq < 0) {
      throw new Error(`missing value in DaemonPortOptions parameter "${field}"`);
    }
    applyField(daemon, field.slice(0, eq).trim(), field.slice(eq + 1).trim());
  }

  if (daemon.addr === '') {
    daemon.addr = daemon.family === 'inet6' ? '::' : '0.0.0.0';
  }
  checkAddress(daemon);
  return daemon;
}

function applyField(daemon: DaemonSpec, key: string, value: string): void {
  switch (key.charAt(0).toUpperCase()) {
    case 'A':
      daemon.addr = value.replace(/^\[(.*)\]$/, '$1');
      return;
    case 'F':
      daemon.family = parseFamily(value);
      return;
    case 'L':
      daemon.listen = parseCount(key, value);
      return;
    case 'M':
      daemon.modifiers = value.replace(/[\s,]/g, '');
      return;
    case 'N':
      daemon.name = value;
      return;
    case 'P':
      daemon.port = parsePort(value);
      return;
    case 'I':
      // InputMailFilters: names separated by semicolons, because commas end the field.
      daemon.inputMailFilters = value.split(';').map((name) => name.trim()).filter((name) => name !== '');
      return;
    case 'R':
    case 'S':
      // Socket buffer sizes (R, S) are accepted and not used.
      return;
    default:
      throw new Error(`DaemonPortOptions parameter "${key}" unknown`);
  }
}

function parseFamily(value: string): 'inet' | 'inet6' {
  const lower = value.toLowerCase();
  if (lower === 'inet' || lower === 'inet6') {
    return lower;
  }
  throw new Error(`unsupported address family ${value} in Family= (use inet or inet6)`);
}

function parsePort(value: string): number {
  const known = ownEntry(SERVICES, value.toLowerCase());
  if (known !== undefined) {
    return known;
  }
  if (!/^\d+$/.test(value) || Number(value) > 65535) {
    throw new Error(`service "${value}" unknown in Port=`);
  }
  return Number(value);
}

function parseCount(key: string, value: string): number {
  if (!/^\d+$/.test(value)) {
    throw new Error(`invalid number "${value}" in ${key}=`);
  }
  return Number(value);
}

function checkAddress(daemon: DaemonSpec): void {
  const version = net.isIP(daemon.addr);
  if (version === 0) {
    // NOTE: sendmail also accepts a host name in Addr= and resolves it; Posthorn does not.
    throw new Error(`invalid address "${daemon.addr}" in Addr= (use a numeric IPv4 or IPv6 address)`);
  }
  if (daemon.family === 'inet' && version !== 4) {
    throw new Error(`address ${daemon.addr} in Addr= is not an IPv4 address (Family=inet)`);
  }
  if (daemon.family === 'inet6' && version !== 6) {
    throw new Error(`address ${daemon.addr} in Addr= is not an IPv6 address (Family=inet6)`);
  }
}
