// The local and prog mailers as a .cf file defines them on their M lines:
//   Mlocal, P=/usr/lib/sm.bin/mail.local, F=lsDFMAw5:/|@qSPfhn9z, ..., A=mail.local -l
//     with the z flag (LMTP) the program, or the [IPC] socket in A=, speaks
//     LMTP; without it the built-in mbox mailer stays in use.
//   Mprog, P=/usr/lib/sm.bin/smrsh, F=lsDFMoqeu9, ..., A=smrsh -c $u
//     runs |program targets with $u replaced by the command.

import type { Config, MailerSpec } from '../config/types';

export function cfMailer(config: Config, name: string): MailerSpec | undefined {
  const spec = config.mailers.find((m) => m.name === name);
  return spec?.path === undefined || spec.path === '' ? undefined : spec;
}

/** P= and A= of an Mlocal line with the z (LMTP) flag; undefined otherwise. */
export function cfLocalLmtp(config: Config): { path: string; args: string } | undefined {
  const spec = cfMailer(config, 'local');
  if (spec === undefined || !(spec.flags ?? '').includes('z')) return undefined;
  // NOTE: an Mlocal line without the z flag keeps the built-in mbox mailer.
  return { path: spec.path!, args: spec.argv ?? 'mail.local -l' };
}

/**
 * Returns the file and argv that run a |program command: P= and A= of the
 * Mprog line with $u replaced by the command, else /bin/sh -c command.
 */
export function progCommand(config: Config | undefined, command: string): { file: string; argv: string[] } {
  const spec = config === undefined ? undefined : cfMailer(config, 'prog');
  if (spec === undefined) return { file: '/bin/sh', argv: ['sh', '-c', command] };
  const words = (spec.argv ?? 'sh -c $u').trim().split(/\s+/);
  const argv = words.map((w) => (w === '$u' ? command : w));
  return { file: spec.path!, argv };
}
