// The program or socket that the local mailer delivers through:
//   FEATURE(`local_lmtp' [, `path' [, `argv']])  LMTP over the program's stdin and
//       stdout; path defaults to LOCAL_MAILER_PATH or /usr/libexec/mail.local,
//       argv to LOCAL_MAILER_ARGS or "mail.local -l". A path of [IPC] makes
//       argv the socket: "FILE /path" or "TCP host port".
//   define(`confLOCAL_MAILER', `cyrusv2') with MAILER(`cyrusv2')  LMTP to
//       CYRUSV2_MAILER_ARGS (default "FILE /var/run/cyrus/socket/lmtp").
//   otherwise  Posthorn's built-in mbox mailer (MailboxDirectory).

import type { Config } from '../config/types';
import { findFeature } from './feature-maps';
import { parseIpcArgs, type IpcTarget } from './lmtp';
import { cfLocalLmtp } from './cf-mailer';

export type LocalMailer =
  | { kind: 'mbox' }
  | { kind: 'lmtp-program'; path: string; argv: string[] }
  | { kind: 'lmtp-ipc'; name: string; target: IpcTarget };

const DEFAULT_LOCAL_PATH = '/usr/libexec/mail.local';
const DEFAULT_LOCAL_ARGS = 'mail.local -l';
const DEFAULT_CYRUSV2_ARGS = 'FILE /var/run/cyrus/socket/lmtp';

function variable(config: Config, name: string): string | undefined {
  const value = config.mcVariables?.get(name);
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** Returns the IPC target of a mailer defined by MAILER() whose A= names a socket, e.g. cyrusv2. */
export function ipcMailer(config: Config, name: string, host = 'localhost'): LocalMailer | undefined {
  const lower = name.toLowerCase();
  if (lower === 'cyrusv2') {
    const args = variable(config, 'CYRUSV2_MAILER_ARGS') ?? DEFAULT_CYRUSV2_ARGS;
    const target = parseIpcArgs(args, host);
    return target === undefined ? undefined : { kind: 'lmtp-ipc', name: 'cyrusv2', target };
  }
  return undefined;
}

export function localMailer(config: Config): LocalMailer {
  const configured = variable(config, 'confLOCAL_MAILER');
  if (configured !== undefined && configured !== 'local') {
    const ipc = ipcMailer(config, configured);
    if (ipc !== undefined) return ipc;
  }
  const feature = findFeature(config, 'local_lmtp');
  const fromCf = feature === undefined ? cfLocalLmtp(config) : undefined;
  if (fromCf !== undefined) {
    const target = fromCf.path === '[IPC]' ? parseIpcArgs(fromCf.args) : undefined;
    if (target !== undefined) return { kind: 'lmtp-ipc', name: 'local', target };
    return { kind: 'lmtp-program', path: fromCf.path, argv: fromCf.args.split(/\s+/) };
  }
  if (feature === undefined) return { kind: 'mbox' };
  const path = (feature.args[0] ?? '').trim() || variable(config, 'LOCAL_MAILER_PATH') || DEFAULT_LOCAL_PATH;
  const args = (feature.args[1] ?? '').trim() || variable(config, 'LOCAL_MAILER_ARGS') || DEFAULT_LOCAL_ARGS;
  if (path === '[IPC]') {
    const target = parseIpcArgs(args);
    if (target !== undefined) return { kind: 'lmtp-ipc', name: 'local', target };
  }
  return { kind: 'lmtp-program', path, argv: args.split(/\s+/) };
}
