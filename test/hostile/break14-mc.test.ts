// .mc quirks where Posthorn's reader silently gave a different setting than
// m4 with sendmail 8.17's cf files. Each expected value is what
// `m4 cf.m4 file.mc` wrote into the .cf:
//
// - a second define(`confPRIVACY_FLAGS') replaces the first. Posthorn ORed
//   them, so "goaway" stayed after a later "authwarnings";
// - cf/README's idiom define(`confMILTER_MACROS_HELO',
//   confMILTER_MACROS_HELO``, {verify}'') extends the default list; Posthorn
//   kept the word "confMILTER_MACROS_HELO" as a macro name;
// - a value is scanned again when m4 copies it, so nested quotes go and
//   names defined earlier (define(`_RELAY', ...)) are replaced;
// - after include(`cf.m4'), `#` no longer starts an m4 comment (cfhead.m4
//   calls changecom()), so "# FEATURE(`nocanonify')" takes effect.
// Loops and runaway expansions must end with an error that names the line.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../../src/config/load';
import { makeTempDir } from '../config/helpers';

function load(text: string) {
  const tmp = makeTempDir();
  try {
    return loadConfig({ file: tmp.write('sendmail.mc', text) });
  } finally {
    tmp.cleanup();
  }
}

function loadError(text: string): ConfigError {
  try {
    load(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  throw new assert.AssertionError({ message: 'expected a ConfigError, but the file loaded' });
}

test('second confPRIVACY_FLAGS replaces the first', () => {
  const cfg = load("define(`confPRIVACY_FLAGS', `goaway')\ndefine(`confPRIVACY_FLAGS', `authwarnings')\n");
  assert.deepEqual(cfg.options.get('PrivacyOptions'), ['authwarnings']);
  assert.equal(cfg.privacyOptions.has('noexpn'), false);
});

test('LOCAL_CONFIG privacy lines add', () => {
  const cfg = load("define(`confPRIVACY_FLAGS', `noexpn')\nLOCAL_CONFIG\nO PrivacyOptions=novrfy\n");
  assert.deepEqual([...(cfg.options.get('PrivacyOptions') as string[])].sort(), ['noexpn', 'novrfy']);
});

test('undefine drops privacy flags', () => {
  const cfg = load("define(`confPRIVACY_FLAGS', `goaway')\nundefine(`confPRIVACY_FLAGS')\n");
  assert.deepEqual(cfg.options.get('PrivacyOptions'), ['public']);
});

test('milter macro lists extend defaults', () => {
  const cfg = load([
    "INPUT_MAIL_FILTER(`f1', `S=inet:33001@127.0.0.1')",
    "define(`confMILTER_MACROS_HELO', confMILTER_MACROS_HELO``, {verify}'')",
    "define(`confMILTER_MACROS_CONNECT', confMILTER_MACROS_CONNECT`, {client_connections}')",
    '',
  ].join('\n'));
  assert.deepEqual(cfg.options.get('Milter.macros.helo'),
    ['{tls_version}', '{cipher}', '{cipher_bits}', '{cert_subject}', '{cert_issuer}', '{verify}']);
  assert.deepEqual(cfg.options.get('Milter.macros.connect'),
    ['j', '_', '{daemon_name}', '{if_name}', '{if_addr}', '{client_connections}']);
});

test('defined names expand where used', () => {
  const cfg = load([
    "define(`_RELAY', `relay.example.test')",
    "define(`SMART_HOST', `_RELAY')",
    "define(`_LD', `other.example.test')",
    "LOCAL_DOMAIN(`_LD')",
    "define(`confDOMAIN_NAME', `mx.example.test')",
    "define(`confSMTP_LOGIN_MSG', `confDOMAIN_NAME ready `dnl' here')",
    '',
  ].join('\n'));
  assert.equal(cfg.options.get('SmartHost'), 'relay.example.test');
  assert.ok(cfg.classes.get('w')?.has('other.example.test'));
  assert.equal(cfg.options.get('SmtpGreetingMessage'), 'mx.example.test ready dnl here');
});

test('unknown cf.m4 default is an error', () => {
  const err = loadError("define(`confSMTP_LOGIN_MSG', confSMTP_LOGIN_MSG` - no UCE')\n");
  assert.equal(err.line, 1);
  assert.match(err.message, /confSMTP_LOGIN_MSG/);
  // An unquoted name that cf.m4 does not define stays a word, as in m4.
  assert.equal(load('define(confMAX_MESSAGE_SIZE, 100)\n').options.get('MaxMessageSize'), 100);
});

test('hash after cf.m4 is not a comment', () => {
  const cfg = load([
    "include(`/usr/share/sendmail/cf/m4/cf.m4')dnl",
    "# FEATURE(`nocanonify') commented out the m4 way that does not work",
    "define(`confSMTP_LOGIN_MSG', `$j # not a comment')dnl",
    '',
  ].join('\n'));
  assert.ok(cfg.features.some((f) => f.name === 'nocanonify'));
  assert.equal(cfg.options.get('SmtpGreetingMessage'), '$j # not a comment');
  // Before the include, # is an m4 comment.
  assert.equal(load("# FEATURE(`nocanonify')\n").features.length, 0);
});

test('expansion loops end with an error', () => {
  for (const mc of [
    "define(`_A', `_A')\ndefine(`confMAX_MESSAGE_SIZE', `_A')\n",
    "define(`_A', `_A')\ndefine(`confMAX_MESSAGE_SIZE', _A)\n",
    "define(`_A', `_B _B')define(`_B', `_A _A')\ndefine(`confSMTP_LOGIN_MSG', `_A')\n",
  ]) {
    const err = loadError(mc);
    assert.equal(err.line, 2);
    assert.match(err.message, /m4 expansion of _[AB] does not end/);
  }
});

// Each expansion copies the rest of the file. Without a limit, this took 90 s.
test('expansions in a 10 MB file stop', { timeout: 60_000 }, () => {
  const filler = '# filler line that m4 would copy to nowhere\n'.repeat(240_000);
  const err = loadError(`define(\`_A', \`x')dnl\ndivert(-1)\n${'_A\n'.repeat(9000)}${filler}`);
  assert.match(err.message, /m4 expansion of _A does not end or is too large/);
});

test('privacy flags default to authwarnings', () => {
  // cf.m4 writes "O PrivacyOptions=authwarnings" for an .mc without confPRIVACY_FLAGS (checked with m4).
  const cfg = load("MAILER(`smtp')\n");
  assert.deepEqual(cfg.options.get('PrivacyOptions'), ['authwarnings']);
  assert.ok(cfg.privacyOptions.has('authwarnings'));
});
