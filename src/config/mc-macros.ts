// The sendmail m4 macros a .mc file calls (cf/README): FEATURE, MAILER,
// DAEMON_OPTIONS, the class macros, mail filters and the LOCAL_* sections.

import { ConfigError } from './errors';
import type { MacroCall } from './m4';
import type { McContext } from './mc-context';
import { ENFORCED_FEATURES, KNOWN_FEATURES } from './features';
import { addClassFromFile, portFromArgv, setMailer } from './cf';
import { optionByName } from './options';
import { ownEntry } from './own';

type MacroHandler = (call: MacroCall, ctx: McContext) => void;

/** Mailers each MAILER(`name') defines, from sendmail's cf/mailer files. */
const MAILER_FILES: Record<string, string[]> = {
  local: ['local', 'prog'],
  smtp: ['smtp', 'esmtp', 'smtp8', 'dsmtp', 'relay'],
  procmail: ['procmail'],
  uucp: ['uucp-old', 'uucp-new', 'uucp-uudom', 'uucp-dom'],
  usenet: ['usenet'],
  fax: ['fax'],
  pop: ['pop'],
  qpage: ['qpage'],
  cyrus: ['cyrus', 'cyrusbb'],
  cyrusv2: ['cyrusv2'],
  mail11: ['mail11'],
  phquery: ['ph'],
};

// Macros that add words to a class, and the class they fill.
const CLASS_MACROS: Record<string, string> = {
  LOCAL_DOMAIN: 'w',
  RELAY_DOMAIN: 'R',
  MASQUERADE_DOMAIN: 'M',
  MASQUERADE_EXCEPTION: 'N',
  EXPOSED_USER: 'E',
  LOCAL_USER: 'L',
  GENERICS_DOMAIN: 'G',
  VIRTUSER_DOMAIN: 'VirtHost',
  CANONIFY_DOMAIN: 'Canonify',
  TRUST_AUTH_MECH: 'TrustAuthMech',
  LDAPROUTE_DOMAIN: 'LDAPRoute',
};

// Macros that start a section of raw cf text (rules, options, classes).
const SECTION_MACROS = new Set([
  'LOCAL_CONFIG', 'LOCAL_RULESETS', 'LOCAL_RULE_0', 'LOCAL_RULE_1', 'LOCAL_RULE_2', 'LOCAL_RULE_3',
  'LOCAL_NET_CONFIG', 'LOCAL_SRV_FEATURES', 'LOCAL_TRY_TLS', 'LOCAL_TLS_CLIENT', 'LOCAL_TLS_SERVER',
  'LOCAL_TLS_RCPT', 'MAILER_DEFINITIONS',
]);

function argument(call: MacroCall, index: number, ctx: McContext): string {
  const value = call.args[index];
  if (value === undefined || value === '') {
    throw new ConfigError(ctx.where, call.name, `missing argument for ${call.name}`);
  }
  return value;
}

function words(text: string): string[] {
  return text.split(/[\s,]+/).filter((word) => word !== '');
}

function feature(call: MacroCall, ctx: McContext): void {
  const name = argument(call, 0, ctx);
  if (!KNOWN_FEATURES.has(name)) {
    throw new ConfigError(ctx.where, name, `unknown FEATURE ${name}`);
  }
  ctx.builder.features.push({ name, args: call.args.slice(1), file: ctx.where.file, line: ctx.where.line });
  if (!ENFORCED_FEATURES.has(name)) {
    ctx.builder.notice(ctx.where, `FEATURE(${name}) accepted but not yet enforced`);
  }
}

function mailer(call: MacroCall, ctx: McContext): void {
  const name = argument(call, 0, ctx);
  const defined = ownEntry(MAILER_FILES, name);
  if (defined === undefined) {
    throw new ConfigError(ctx.where, name, `unknown mailer ${name} in MAILER`);
  }
  for (const mailerName of defined) {
    const args = ctx.state.mailerArgs.get(mailerName);
    setMailer(ctx.builder, { name: mailerName, port: args === undefined ? undefined : portFromArgv(args) });
    ctx.state.mailersDone.add(mailerName);
  }
}

function addClass(call: MacroCall, ctx: McContext): void {
  ctx.builder.addClassWords(CLASS_MACROS[call.name], words(call.args.join(' ')));
}

// RELAY_DOMAIN_FILE(`-o /etc/mail/relay-domains') and friends.
function addClassFile(call: MacroCall, ctx: McContext): void {
  const className = CLASS_MACROS[call.name.replace(/_FILE$/, '')];
  let path = argument(call, 0, ctx).trim();
  const optional = path.startsWith('-o');
  if (optional) {
    path = path.slice(2).trim();
  }
  addClassFromFile(ctx.builder, className, path, optional, ctx.where);
}

function mailFilter(call: MacroCall, ctx: McContext): void {
  const name = argument(call, 0, ctx);
  const equates = call.args.slice(1).join(', ');
  ctx.builder.mailFilters.push({ name, equates, file: ctx.where.file, line: ctx.where.line });

  if (call.name === 'INPUT_MAIL_FILTER') {
    const current = ctx.builder.values.get('InputMailFilters');
    const list = Array.isArray(current) ? current : [];
    const def = optionByName('InputMailFilters');
    if (def !== undefined) {
      ctx.builder.setOptionDef(def, [...list, name].join(','), ctx.where);
    }
  }
}

function section(call: MacroCall, ctx: McContext): void {
  ctx.state.divert = 0;
  if (call.name !== 'LOCAL_CONFIG' && call.name !== 'MAILER_DEFINITIONS') {
    ctx.builder.notice(ctx.where, `${call.name} accepted; Posthorn does not run rewriting rules`);
  }
}

function noted(call: MacroCall, ctx: McContext): void {
  const shown = call.args.length > 0 ? `${call.name}(${call.args.join(', ')})` : call.name;
  ctx.builder.notice(ctx.where, `${shown} accepted; Posthorn does not read sendmail's m4 files for it`);
}

export const SENDMAIL_MACROS: Record<string, MacroHandler> = {
  VERSIONID: () => undefined,
  OSTYPE: noted,
  DOMAIN: noted,
  HACK: noted,
  SITECONFIG: noted,
  QUEUE_GROUP: (call, ctx) =>
    ctx.builder.notice(ctx.where, `QUEUE_GROUP(${call.args[0] ?? ''}) accepted; Posthorn has one queue`),
  LDAPROUTE_EQUIVALENT: noted,
  LDAPROUTE_EQUIVALENT_FILE: noted,
  FEATURE: feature,
  MAILER: mailer,
  DAEMON_OPTIONS: (call, ctx) => ctx.builder.setOption('DaemonPortOptions', call.args.join(', '), ctx.where),
  CLIENT_OPTIONS: (call, ctx) => ctx.builder.setOption('ClientPortOptions', call.args.join(', '), ctx.where),
  MASQUERADE_AS: (call, ctx) => ctx.builder.defineMacro('M', argument(call, 0, ctx), ctx.where),
  INPUT_MAIL_FILTER: mailFilter,
  MAIL_FILTER: mailFilter,
};

for (const name of Object.keys(CLASS_MACROS)) {
  SENDMAIL_MACROS[name] = addClass;
  SENDMAIL_MACROS[`${name}_FILE`] = addClassFile;
}
for (const name of SECTION_MACROS) {
  SENDMAIL_MACROS[name] = section;
}
