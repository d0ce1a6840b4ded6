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
  'confRELAY_MAILER', 'confUUCP_MAILER', 'confRELAY_MSG', 'confRCPTREJ_MSG', 'confREJECT_MSG', 'confDEQUOTE_OPTS',
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

/**
 * Defaults of sendmail's cf/m4/cfhead.m4 for the names that .mc files extend
 * by naming them in their own value, as cf/README shows:
 * define(`confMILTER_MACROS_HELO', confMILTER_MACROS_HELO``, {verify}'').
 * They are quoted as cfhead.m4 quotes them, so that their commas stay inside
 * one argument.
 */
export const CF_M4_DEFAULTS: Record<string, string> = {
  confMILTER_MACROS_CONNECT: '`j, _, {daemon_name}, {if_name}, {if_addr}\'',
  confMILTER_MACROS_HELO: '`{tls_version}, {cipher}, {cipher_bits}, {cert_subject}, {cert_issuer}\'',
  confMILTER_MACROS_ENVFROM: '`i, {auth_type}, {auth_authen}, {auth_ssf}, {auth_author}, {mail_mailer}, {mail_host}, {mail_addr}\'',
  confMILTER_MACROS_ENVRCPT: '`{rcpt_mailer}, {rcpt_host}, {rcpt_addr}\'',
  confMILTER_MACROS_EOM: '{msg_id}',
  confPRIVACY_FLAGS: 'authwarnings',
};

/**
 * Names that sendmail's cf/m4 files define before the .mc is read
 * (cfhead.m4 and proto.m4 of 8.17). If the .mc uses such a name unquoted
 * without defining it, m4 would put in sendmail's default, which Posthorn
 * lacks. Any other undefined name stays a plain word, as in m4.
 */
export const CF_M4_PREDEFINED = new Set([
  'confALIAS_WAIT', 'confBLANK_SUB', 'confCHECK_ALIASES', 'confCON_EXPENSIVE', 'confCR_FILE', 'confCW_FILE',
  'confDELIVERY_MODE', 'confFORWARD_PATH', 'confFROM_LINE', 'confLOG_LEVEL', 'confMAILER_NAME',
  'confMCI_CACHE_SIZE', 'confMCI_CACHE_TIMEOUT', 'confMIME_FORMAT_ERRORS', 'confMIN_FREE_BLOCKS',
  'confOLD_STYLE_HEADERS', 'confOPERATORS', 'confRECEIVED_HEADER', 'confSAFE_QUEUE', 'confSEVEN_BIT_INPUT',
  'confSMTP_LOGIN_MSG', 'confTEMP_FILE_MODE', 'confTIME_ZONE', 'confTO_QUEUERETURN', 'confTO_QUEUEWARN',
  'confUSE_ERRORS_TO', 'confRELAY_MSG', 'confRCPTREJ_MSG', 'confINPUT_MAIL_FILTERS', 'ALIAS_FILE',
  'DATABASE_MAP_TYPE',
]);

/**
 * Apply define(`name', `value'). The value is kept as written for later uses
 * of the name, and scanned again (quotes removed once, defined names
 * expanded) where it sets an option, as m4 does when the .cf is written.
 * Throws ConfigError for a name sendmail's m4 files do not know.
 */
export function applyDefine(name: string, raw: string, ctx: McContext): void {
  ctx.state.defined.add(name);
  ctx.state.m4Values.set(name, raw);
  if (name.startsWith('_')) {
    return;
  }
  const value = ctx.rescan(raw);

  const alias = ownEntry(CONF_ALIASES, name);
  const def = optionByM4(name) ?? (alias !== undefined ? optionByName(alias) : undefined);
  if (def !== undefined && def.name === 'PrivacyOptions') {
    // The .cf gets one O PrivacyOptions line with the last value, and O lines
    // of LOCAL_CONFIG add to it because sendmail ORs them. Applied (and checked) at the end.
    ctx.state.privacyFlags = { value, where: ctx.where };
    return;
  }
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
  ctx.state.m4Values.delete(name);
  const def = optionByM4(name);
  if (def?.name === 'PrivacyOptions') {
    // The .cf gets no O PrivacyOptions line from the .mc. LOCAL_CONFIG lines stay.
    ctx.state.privacyFlags = undefined;
    return;
  }
  if (def !== undefined) {
    ctx.builder.values.delete(def.name);
    ctx.builder.origins.delete(def.name);
  }
}
