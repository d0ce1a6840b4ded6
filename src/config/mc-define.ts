// define(`NAME', `value') in .mc files: conf* options, the m4 variables of
// sendmail's cf/README (SMART_HOST, QUEUE_DIR, *_MAILER_ARGS, ...), and
// m4-internal flags (names starting with an underscore).

import { optionByM4, optionByName } from './options';
import { ConfigError } from './errors';
import type { McContext } from './mc-context';
import { ownEntry } from './own';

// conf* names that are not in the option table under that name.
const CONF_ALIASES: Record<string, string> = {
  confSMART_HOST: 'SmartHost',
  confDAEMON_OPTIONS: 'DaemonPortOptions',
  confCLIENT_OPTIONS: 'ClientPortOptions',
};

// conf* names that set a sendmail macro rather than an option.
const CONF_MACROS: Record<string, string> = {
  confDOMAIN_NAME: 'j',
  confMAILER_NAME: 'n',
  confCF_VERSION: 'Z',
  confLDAP_CLUSTER: 'sendmailMTACluster',
};

// conf* names that only shape the generated rulesets and headers.
const CONF_ACCEPTED = new Set([
  'confCW_FILE', 'confCT_FILE', 'confCR_FILE', 'confRECEIVED_HEADER', 'confFROM_HEADER',
  'confMESSAGEID_HEADER', 'confTRUSTED_USERS', 'confEBINDIR', 'confLOCAL_MAILER', 'confSMTP_MAILER',
  'confRELAY_MAILER', 'confUUCP_MAILER', 'confRELAY_MSG', 'confRCPTREJ_MSG', 'confDEQUOTE_OPTS',
]);

// Non-conf variables that set a sendmail macro.
const VARIABLE_MACROS: Record<string, string> = {
  MAIL_HUB: 'H',
  LOCAL_RELAY: 'R',
  LUSER_RELAY: 'L',
  UUCP_RELAY: 'Y',
  BITNET_RELAY: 'B',
  DECNET_RELAY: 'C',
  FAX_RELAY: 'F',
};

/** *_MAILER_ARGS variables and the mailer whose TCP port they can set. */
export const MAILER_ARGS: Record<string, string> = {
  SMTP_MAILER_ARGS: 'smtp',
  ESMTP_MAILER_ARGS: 'esmtp',
  SMTP8_MAILER_ARGS: 'smtp8',
  DSMTP_MAILER_ARGS: 'dsmtp',
  RELAY_MAILER_ARGS: 'relay',
};

// Mailer paths, flags and limits, and MAIL_SETTINGS_DIR: Posthorn runs its
// own mailers, so these are accepted and reported.
const MAILER_PREFIXES = [
  'LOCAL', 'SMTP', 'ESMTP', 'SMTP8', 'DSMTP', 'RELAY', 'PROCMAIL', 'UUCP', 'USENET', 'FAX', 'POP',
  'QPAGE', 'CYRUS', 'CYRUSV2', 'MAIL11', 'PH', 'LOCAL_SHELL',
];
const ACCEPTED_VARIABLE = new RegExp(
  `^(${MAILER_PREFIXES.join('|')})_(MAILER_)?[A-Z0-9_]+$|^MAIL_SETTINGS_DIR$|^MASQUERADE_NAME$`,
);

/** Apply define(`name', `value'). Throws ConfigError for a name sendmail's m4 files do not know. */
export function applyDefine(name: string, value: string, ctx: McContext): void {
  ctx.state.defined.add(name);

  const alias = ownEntry(CONF_ALIASES, name);
  const def = optionByM4(name) ?? (alias !== undefined ? optionByName(alias) : undefined);
  if (def !== undefined && name !== 'DAEMON_OPTIONS' && name !== 'CLIENT_OPTIONS') {
    ctx.builder.setOptionDef(def, value, ctx.where);
    return;
  }

  const macro = ownEntry(CONF_MACROS, name) ?? ownEntry(VARIABLE_MACROS, name);
  if (macro !== undefined) {
    ctx.builder.defineMacro(macro, value, ctx.where);
    return;
  }

  if (ownEntry(MAILER_ARGS, name) !== undefined) {
    defineMailerArgs(name, value, ctx);
    return;
  }
  if (name.startsWith('_')) {
    return;
  }
  if (CONF_ACCEPTED.has(name) || ACCEPTED_VARIABLE.test(name)) {
    ctx.state.variables.set(name, value);
    return;
  }

  const what = name.startsWith('conf') ? 'option' : 'm4 variable';
  throw new ConfigError(ctx.where, name, `unknown ${what} ${name}`);
}

function defineMailerArgs(name: string, value: string, ctx: McContext): void {
  const mailer = MAILER_ARGS[name] ?? name;
  ctx.state.mailerArgs.set(mailer, value);
  if (ctx.state.mailersDone.has(mailer)) {
    ctx.builder.notice(ctx.where, `${name} defined after MAILER(smtp) has no effect, as in sendmail`);
  }
}

/** Apply undefine(`name'): an option goes back to its default. */
export function applyUndefine(name: string, ctx: McContext): void {
  ctx.state.defined.delete(name);
  ctx.state.variables.delete(name);
  const def = optionByM4(name);
  if (def !== undefined) {
    ctx.builder.values.delete(def.name);
    ctx.builder.origins.delete(def.name);
  }
}
