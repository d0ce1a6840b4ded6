import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../../src/config/load';
import { ENFORCED_FEATURES } from '../../src/config/features';
import { makeTempDir } from './helpers';

function loadMc(text: string, extra: Record<string, string> = {}) {
  const tmp = makeTempDir();
  try {
    for (const [name, body] of Object.entries(extra)) {
      tmp.write(name, body.replace(/@DIR@/g, tmp.dir));
    }
    const file = tmp.write('sendmail.mc', text.replace(/@DIR@/g, tmp.dir));
    return { cfg: loadConfig({ file }), file };
  } finally {
    tmp.cleanup();
  }
}

function mcError(text: string): ConfigError {
  const tmp = makeTempDir();
  try {
    const file = tmp.write('sendmail.mc', text);
    try {
      loadConfig({ file });
    } catch (err) {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.equal(err.file, file);
      return err;
    }
    throw new assert.AssertionError({ message: 'no error thrown' });
  } finally {
    tmp.cleanup();
  }
}

// Laid out like the sendmail.mc that Debian's sendmail package installs.
const DEBIAN_STYLE = `divert(-1)dnl
#-----------------------------------------------------------------
# Test configuration laid out the Debian way.  Comments in this
# section are discarded by m4, even ones that say define(\`x') or
# contain an apostrophe like this one's.
#-----------------------------------------------------------------
divert(0)dnl
#
# This comment is copied into the generated sendmail.cf.
#
define(\`_USE_ETC_MAIL_')dnl
include(\`/usr/share/sendmail/cf/m4/cf.m4')dnl
VERSIONID(\`$Id: sendmail.mc, test 1 $')
OSTYPE(\`debian')dnl
DOMAIN(\`debian-mta')dnl
undefine(\`confHOST_STATUS_DIRECTORY')dnl        # set by another tool
dnl # Listen on loopback only
FEATURE(\`no_default_msa')dnl
dnl DAEMON_OPTIONS(\`Family=inet6, Name=MTA-v6, Port=smtp, Addr=::1')dnl
DAEMON_OPTIONS(\`Family=inet,  Name=MTA-v4, Port=smtp, Addr=127.0.0.1')dnl
DAEMON_OPTIONS(\`Family=inet,  Name=MSP-v4, Port=submission, M=Ea, Addr=127.0.0.1')dnl
dnl # Be strict about what clients may ask
define(\`confPRIVACY_FLAGS',dnl
\`needmailhelo,needexpnhelo,needvrfyhelo,restrictqrun,restrictexpand,nobodyreturn,authwarnings')dnl
define(\`confCONNECTION_RATE_THROTTLE', \`15')dnl
define(\`confCONNECTION_RATE_WINDOW_SIZE',\`10m')dnl
define(\`confCW_FILE', \`-o @DIR@/local-host-names')dnl
FEATURE(\`use_cw_file')dnl
FEATURE(\`access_db', , \`skip')dnl
FEATURE(\`greet_pause', \`1000')dnl 1 second
FEATURE(\`delay_checks', \`friend', \`n')dnl
define(\`confBAD_RCPT_THROTTLE',\`3')dnl
FEATURE(\`conncontrol', \`nodelay', \`terminate')dnl
FEATURE(\`ratecontrol', \`nodelay', \`terminate')dnl
dnl define(\`confCON_EXPENSIVE',\`True')dnl
include(\`@DIR@/dialup.m4')dnl
sinclude(\`@DIR@/not-there.m4')dnl
MAILER_DEFINITIONS
MAILER(\`local')dnl
MAILER(\`smtp')dnl
LOCAL_CONFIG
# raw cf lines follow
Cwextra.example
O MaxHopCount=30
`;

const DIALUP = `divert(-1)
# included file
divert(0)dnl
define(\`confCON_EXPENSIVE', \`False')dnl
`;

test('Debian-style mc parses', () => {
  const { cfg, file } = loadMc(DEBIAN_STYLE, {
    'dialup.m4': DIALUP,
    'local-host-names': 'mail.example\n# comment\nexample\n',
  });
  assert.equal(cfg.sourceFile, file);
  assert.deepEqual(cfg.daemons, [
    { name: 'MTA-v4', addr: '127.0.0.1', port: 25, family: 'inet', modifiers: '', listen: 1024 },
    { name: 'MSP-v4', addr: '127.0.0.1', port: 587, family: 'inet', modifiers: 'Ea', listen: 1024 },
  ]);
  for (const word of ['needmailhelo', 'restrictqrun', 'nobodyreturn', 'authwarnings']) {
    assert.ok(cfg.privacyOptions.has(word), word);
  }
  assert.equal(cfg.options.get('ConnectionRateThrottle'), 15);
  assert.equal(cfg.options.get('ConnectionRateWindowSize'), 600_000);
  assert.equal(cfg.options.get('BadRcptThrottle'), 3);
  assert.equal(cfg.options.get('HoldExpensive'), false);
  assert.equal(cfg.options.get('MaxHopCount'), 30);
  assert.equal(cfg.origins.get('MaxHopCount'), `${file}:44`);
  for (const name of ['mail.example', 'example', 'extra.example']) {
    assert.ok(cfg.localDomains.has(name), name);
  }
  assert.deepEqual(cfg.mailers.map((m) => m.name), ['local', 'prog', 'smtp', 'esmtp', 'smtp8', 'dsmtp', 'relay']);
});

test('Debian-style mc features and notices', () => {
  const { cfg, file } = loadMc(DEBIAN_STYLE, { 'dialup.m4': DIALUP });
  const names = cfg.features.map((f) => f.name);
  assert.deepEqual(names, ['no_default_msa', 'use_cw_file', 'access_db', 'greet_pause', 'delay_checks',
    'conncontrol', 'ratecontrol']);
  const access = cfg.features[2];
  assert.deepEqual(access.args, ['', 'skip']);
  assert.equal(access.line, 29);
  assert.deepEqual(cfg.features[3].args, ['1000']);
  assert.ok(!cfg.notices.some((n) => n.includes('FEATURE(greet_pause)')), 'greet_pause is enforced');
  assert.ok(!cfg.notices.some((n) => n.includes('FEATURE(use_cw_file)')));
  assert.ok(cfg.notices.some((n) => n.startsWith(`${file}:14: OSTYPE(debian) accepted`)));
  assert.ok(ENFORCED_FEATURES.has('nocanonify'));
});

test('mc define sets options and macros', () => {
  const { cfg } = loadMc(`divert(0)dnl
define(\`QUEUE_DIR', \`/var/spool/ph')dnl
define(\`SMART_HOST', \`[relay.example.net]')dnl
define(\`confFALLBACK_SMARTHOST', \`fallback.example.net')dnl
define(\`confDOMAIN_NAME', \`mx.example.org')dnl
define(\`confMAX_MESSAGE_SIZE', \`5000000')dnl
define(\`confSAFE_QUEUE', \`PostMilter')dnl
define(\`confDELIVERY_MODE', \`queueonly')dnl
define(\`confTO_INITIAL', \`30s')dnl
define(\`confTO_QUEUERETURN', \`3d')dnl
define(\`confMAILBOX_DIR', \`/tmp/mail')dnl
define(\`confNAME_SERVERS', \`127.0.0.1:5353, [::1]:53')dnl
define(\`confLOG_FILE', \`syslog:127.0.0.1:514')dnl
define(\`confSMTP_LOGIN_MSG', \`$j ready')dnl
MASQUERADE_AS(\`example.org')dnl
EXPOSED_USER(\`root postmaster')dnl
GENERICS_DOMAIN(\`a.example b.example')dnl
LOCAL_DOMAIN(\`example.org mail.example.org')dnl
RELAY_DOMAIN(\`partner.example')dnl
`);
  assert.equal(cfg.queueDirectory, '/var/spool/ph');
  assert.equal(cfg.smartHost, '[relay.example.net]');
  assert.equal(cfg.macros.get('S'), '[relay.example.net]');
  assert.equal(cfg.fallbackSmartHost, 'fallback.example.net');
  assert.equal(cfg.hostName, 'mx.example.org');
  assert.equal(cfg.maxMessageSize, 5000000);
  assert.equal(cfg.superSafe, 'postmilter');
  assert.equal(cfg.deliveryMode, 'queueonly');
  assert.equal(cfg.timeouts.get('initial'), 30_000);
  assert.equal(cfg.timeouts.get('queuereturn.normal'), 3 * 86400_000);
  assert.equal(cfg.mailboxDirectory, '/tmp/mail');
  assert.deepEqual(cfg.nameServers, ['127.0.0.1:5353', '[::1]:53']);
  assert.equal(cfg.logFile, 'syslog:127.0.0.1:514');
  assert.equal(cfg.options.get('SmtpGreetingMessage'), '$j ready');
  assert.equal(cfg.macros.get('M'), 'example.org');
  assert.deepEqual([...(cfg.classes.get('E') ?? [])], ['root', 'postmaster']);
  assert.deepEqual([...(cfg.classes.get('G') ?? [])], ['a.example', 'b.example']);
  assert.ok(cfg.localDomains.has('mail.example.org'));
  assert.ok(cfg.relayDomains.has('partner.example'));
});

test('mc DAEMON_OPTIONS keys', () => {
  const { cfg } = loadMc(`DAEMON_OPTIONS(\`Port=2525, Addr=127.0.0.1, Name=MTA')
DAEMON_OPTIONS(\`port=2587,addr=127.0.0.2,name=MSA,Modifiers=E a,Listen=50')
DAEMON_OPTIONS(\`Family=inet6, Addr=[::1], Port=2526, Name=MTA-v6')
DAEMON_OPTIONS(\`Name=Any, Family=inet6')
`);
  assert.deepEqual(cfg.daemons, [
    { name: 'MTA', addr: '127.0.0.1', port: 2525, family: 'inet', modifiers: '', listen: 1024 },
    { name: 'MSA', addr: '127.0.0.2', port: 2587, family: 'inet', modifiers: 'Ea', listen: 50 },
    { name: 'MTA-v6', addr: '::1', port: 2526, family: 'inet6', modifiers: '', listen: 1024 },
    { name: 'Any', addr: '::', port: 25, family: 'inet6', modifiers: '', listen: 1024 },
  ]);
});

test('mc ESMTP_MAILER_ARGS sets the mailer port', () => {
  const { cfg } = loadMc(`define(\`ESMTP_MAILER_ARGS', \`TCP $h 2526')dnl
define(\`RELAY_MAILER_ARGS', \`TCP $h 2527')dnl
MAILER(\`local')dnl
MAILER(\`smtp')dnl
define(\`SMTP_MAILER_ARGS', \`TCP $h 2528')dnl
`);
  const ports = Object.fromEntries(cfg.mailers.map((m) => [m.name, m.port]));
  assert.equal(ports.esmtp, 2526);
  assert.equal(ports.relay, 2527);
  assert.equal(ports.smtp, undefined);
  assert.ok(cfg.notices.some((n) => n.includes('SMTP_MAILER_ARGS defined after MAILER(smtp) has no effect')));
});

test('mc mail filters', () => {
  const { cfg } = loadMc(`INPUT_MAIL_FILTER(\`dkim', \`S=inet:8891@127.0.0.1, F=T')dnl
MAIL_FILTER(\`spare', \`S=local:/run/spare.sock')dnl
INPUT_MAIL_FILTER(\`av', \`S=unix:/run/av.sock, F=R, T=C:30s;E:10m')dnl
define(\`confMILTER_MACROS_CONNECT', \`j, {daemon_name}')dnl
`);
  assert.deepEqual(cfg.mailFilters.map((x) => [x.name, x.equates, x.line]), [
    ['dkim', 'S=inet:8891@127.0.0.1, F=T', 1],
    ['spare', 'S=local:/run/spare.sock', 2],
    ['av', 'S=unix:/run/av.sock, F=R, T=C:30s;E:10m', 3],
  ]);
  assert.deepEqual(cfg.options.get('InputMailFilters'), ['dkim', 'av']);
  assert.deepEqual(cfg.options.get('Milter.macros.connect'), ['j', '{daemon_name}']);
});

test('mc confINPUT_MAIL_FILTERS after the calls replaces the list', () => {
  const { cfg } = loadMc(`INPUT_MAIL_FILTER(\`a', \`S=inet:1@127.0.0.1')
INPUT_MAIL_FILTER(\`b', \`S=inet:2@127.0.0.1')
define(\`confINPUT_MAIL_FILTERS', \`b')
`);
  assert.deepEqual(cfg.options.get('InputMailFilters'), ['b']);
});

test('mc ifdef picks a branch', () => {
  const { cfg } = loadMc(`define(\`confLOG_LEVEL', \`11')
ifdef(\`confLOG_LEVEL', \`define(\`confMAX_HOP', \`40')', \`define(\`confMAX_HOP', \`50')')
ifdef(\`confNOT_SET', \`define(\`confMIN_QUEUE_AGE', \`1h')', \`define(\`confMIN_QUEUE_AGE', \`2h')')
`);
  assert.equal(cfg.options.get('MaxHopCount'), 40);
  assert.equal(cfg.minQueueAge, 2 * 3600_000);
});

// m4 removes the inner quotes too when cf.m4 copies the value into the .cf
// (sendmail 8.17's m4 files write "O SmtpGreetingMessage=$j says hello").
test('mc nested quotes lose one more level, as m4 writes them', () => {
  const { cfg } = loadMc("define(`confSMTP_LOGIN_MSG', `$j says `hello'')\n");
  assert.equal(cfg.options.get('SmtpGreetingMessage'), '$j says hello');
});

test('mc unknown option names file line and word', () => {
  const err = mcError('divert(0)dnl\nFEATURE(`use_cw_file\')dnl\n\ndefine(`confFOO\', `1\')dnl\n');
  assert.equal(err.line, 4);
  assert.equal(err.word, 'confFOO');
  assert.equal(err.message, `${err.file}:4: unknown option confFOO`);
});

test('mc unknown FEATURE is an error', () => {
  const err = mcError("VERSIONID(`x')\nFEATURE(`no_such_feature')\n");
  assert.equal(err.line, 2);
  assert.equal(err.word, 'no_such_feature');
  assert.match(err.message, /:2: unknown FEATURE no_such_feature$/);
});

test('mc unknown macro call is an error', () => {
  const err = mcError("dnl first line\nSOMETHING_ODD(`x')\n");
  assert.equal(err.line, 2);
  assert.equal(err.word, 'SOMETHING_ODD');
  assert.match(err.message, /:2: unknown macro SOMETHING_ODD$/);
});

test('mc unknown m4 variable is an error', () => {
  const err = mcError("define(`SMART_HOSTS', `x')\n");
  assert.match(err.message, /:1: unknown m4 variable SMART_HOSTS$/);
});

test('mc bad value names option', () => {
  const err = mcError("\ndefine(`confMAX_HOP', `many')\n");
  assert.equal(err.line, 2);
  assert.match(err.message, /:2: invalid value "many" for option MaxHopCount/);
});

test('mc unterminated quote and arguments', () => {
  assert.match(mcError("define(`confMAX_HOP', `5)\n").message, /:1: quote opened here is never closed/);
  assert.match(mcError("\nFEATURE(`access_db'\n").message, /:2: end of file inside the arguments of FEATURE/);
});

test('mc missing include is an error', () => {
  const err = mcError("include(`/nonexistent/posthorn/x.m4')\n");
  assert.match(err.message, /:1: cannot open included file \/nonexistent\/posthorn\/x\.m4/);
});

test('mc without extension detected by content', () => {
  const tmp = makeTempDir();
  try {
    const file = tmp.write('config', "divert(0)dnl\ndefine(`confMAX_HOP', `33')dnl\n");
    assert.equal(loadConfig({ file }).options.get('MaxHopCount'), 33);
  } finally {
    tmp.cleanup();
  }
});

test('-O wins over the mc', () => {
  const tmp = makeTempDir();
  try {
    const file = tmp.write('sendmail.mc', "define(`confMAX_HOP', `33')dnl\ndefine(`confLOG_LEVEL', `14')\n");
    const cfg = loadConfig({ file, overrides: [{ name: 'MaxHop', value: '44' }] });
    assert.equal(cfg.options.get('MaxHopCount'), 44);
    assert.equal(cfg.logLevel, 14);
    assert.equal(cfg.origins.get('LogLevel'), `${file}:2`);
  } finally {
    tmp.cleanup();
  }
});

test('mc value with a line break refused', () => {
  const macro = mcError("define(`confDOMAIN_NAME', `mx.example\r\n250 injected')\n");
  assert.match(macro.message, /macro j: invalid value, it contains a line break/);
  const option = mcError("define(`confSMTP_LOGIN_MSG', `$j ready\n554 injected')\n");
  assert.match(option.message, /SmtpGreetingMessage: invalid value, it contains a line break/);
});
