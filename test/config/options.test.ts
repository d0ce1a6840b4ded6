import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, parseShortOption, ConfigError } from '../../src/config/load';
import { OPTIONS } from '../../src/config/options';
import { makeTempDir } from './helpers';

function withOverrides(...pairs: Array<[string, string]>) {
  return loadConfig({ overrides: pairs.map(([name, value]) => ({ name, value })) });
}

test('option table names are unique', () => {
  const names = OPTIONS.map((def) => def.name.toLowerCase());
  assert.equal(new Set(names).size, names.length);
  const m4 = OPTIONS.flatMap((def) => (def.m4 === undefined ? [] : [def.m4]));
  assert.equal(new Set(m4).size, m4.length);
});

test('defaults without a file', () => {
  const cfg = loadConfig({});
  assert.equal(cfg.queueDirectory, '/var/spool/mqueue');
  assert.equal(cfg.mailboxDirectory, '/var/mail');
  assert.deepEqual(cfg.nameServers, []);
  assert.equal(cfg.logFile, 'stderr');
  assert.equal(cfg.logLevel, 9);
  assert.equal(cfg.pidFile, '/var/run/sendmail.pid');
  assert.equal(cfg.superSafe, 'true');
  assert.equal(cfg.deliveryMode, 'background');
  assert.equal(cfg.maxHeadersLength, 32768);
  assert.equal(cfg.maxLineLength, 2048);
  assert.equal(cfg.queueSortOrder, 'priority');
  assert.equal(cfg.smartHost, undefined);
  assert.equal(cfg.options.get('MaxHopCount'), 25);
  assert.equal(cfg.options.get('DoubleBounceAddress'), 'postmaster');
  assert.equal(cfg.options.get('SmtpGreetingMessage'), '$j Posthorn $v/$Z; $b');
  assert.equal(cfg.options.get('ConnectionRateWindowSize'), 60_000);
  assert.equal(cfg.options.get('RejectLogInterval'), 3 * 3600_000);
  assert.equal(cfg.origins.get('MaxHopCount'), 'default');
  assert.deepEqual(cfg.daemons, [
    { name: 'MTA', addr: '0.0.0.0', port: 25, family: 'inet', modifiers: '', listen: 1024 },
  ]);
  assert.ok(cfg.localDomains.has('localhost'));
  assert.ok(cfg.localDomains.has('[127.0.0.1]'));
  assert.ok(cfg.localDomains.has(cfg.hostName.toLowerCase()));
});

test('timeout defaults in milliseconds', () => {
  const cfg = loadConfig({});
  assert.equal(cfg.timeouts.get('initial'), 5 * 60_000);
  assert.equal(cfg.timeouts.get('mail'), 10 * 60_000);
  assert.equal(cfg.timeouts.get('rcpt'), 3600_000);
  assert.equal(cfg.timeouts.get('datablock'), 3600_000);
  assert.equal(cfg.timeouts.get('quit'), 2 * 60_000);
  assert.equal(cfg.timeouts.get('starttls'), 3600_000);
  assert.equal(cfg.timeouts.get('queuereturn'), 5 * 86400_000);
  assert.equal(cfg.timeouts.get('queuereturn.urgent'), 5 * 86400_000);
  assert.equal(cfg.timeouts.get('queuewarn'), 4 * 3600_000);
  assert.equal(cfg.timeouts.get('connect'), 0);
});

test('option names are case-insensitive', () => {
  const cfg = withOverrides(['maxhopcount', '30'], ['QUEUEDIRECTORY', '/tmp/q'], ['timeout.INITIAL', '7m']);
  assert.equal(cfg.options.get('MaxHopCount'), 30);
  assert.equal(cfg.queueDirectory, '/tmp/q');
  assert.equal(cfg.timeouts.get('initial'), 7 * 60_000);
});

test('unique prefix is accepted with a notice', () => {
  const cfg = withOverrides(['QueueDir', '/tmp/q2']);
  assert.equal(cfg.queueDirectory, '/tmp/q2');
  assert.ok(cfg.notices.includes('-O: Option QueueDir used as abbreviation for QueueDirectory'));
});

test('FallbackSmartHost spellings are the same option', () => {
  assert.equal(withOverrides(['FallbackSmartHost', 'fb.example']).fallbackSmartHost, 'fb.example');
  assert.equal(withOverrides(['FallBackSmartHost', 'fb2.example']).fallbackSmartHost, 'fb2.example');
});

test('ambiguous prefix is an error', () => {
  assert.throws(() => withOverrides(['Queue', 'x']), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /^-O: ambiguous option name Queue \(matches Queue\w+ and Queue\w+\)$/);
    return true;
  });
});

test('unknown option name is an error', () => {
  assert.throws(() => withOverrides(['NoSuchOption', '1']), {
    name: 'ConfigError',
    message: '-O: unknown option name NoSuchOption',
  });
  assert.throws(() => withOverrides(['Timeout.nosuch', '1']), /unknown option name Timeout.nosuch/);
});

test('wrong type names value and option', () => {
  assert.throws(() => withOverrides(['MaxHopCount', 'ten']), {
    name: 'ConfigError',
    message: '-O: invalid value "ten" for option MaxHopCount: expected a whole number',
  });
  assert.throws(() => withOverrides(['Timeout.mail', '5q']), /invalid value "5q" for option Timeout.mail/);
  assert.throws(() => withOverrides(['MaxMessageSize', '1.5']), /for option MaxMessageSize/);
});

test('booleans follow atobool', () => {
  for (const text of ['t', 'T', 'True', 'y', 'Y', 'yes', '']) {
    assert.equal(withOverrides(['IgnoreDots', text]).options.get('IgnoreDots'), true, `value "${text}"`);
  }
  for (const text of ['f', 'F', 'False', 'n', 'N', 'no']) {
    assert.equal(withOverrides(['IgnoreDots', text]).options.get('IgnoreDots'), false, `value "${text}"`);
  }
  assert.throws(() => withOverrides(['IgnoreDots', 'maybe']), /invalid value "maybe" for option IgnoreDots/);
});

test('SuperSafe parsing', () => {
  const cases: Array<[string, string]> = [
    ['True', 'true'], ['false', 'false'], ['Interactive', 'interactive'], ['i', 'interactive'],
    ['PostMilter', 'postmilter'], ['p', 'postmilter'], ['', 'true'], ['yes', 'true'], ['no', 'false'],
  ];
  for (const [text, expected] of cases) {
    assert.equal(withOverrides(['SuperSafe', text]).superSafe, expected, `value "${text}"`);
  }
  assert.throws(() => withOverrides(['SuperSafe', 'sometimes']), /invalid value "sometimes" for option SuperSafe/);
});

test('SuperSafe interactive warns outside interactive mode', () => {
  const warned = withOverrides(['SuperSafe', 'interactive']);
  assert.ok(warned.notices.some((n) => n.includes('SuperSafe=interactive should only be used')));
  const quiet = withOverrides(['SuperSafe', 'interactive'], ['DeliveryMode', 'i']);
  assert.ok(!quiet.notices.some((n) => n.includes('SuperSafe=interactive')));
});

test('DeliveryMode first letter decides', () => {
  const cases: Array<[string, string]> = [
    ['b', 'background'], ['background', 'background'], ['q', 'queueonly'], ['queueonly', 'queueonly'],
    ['i', 'interactive'], ['Interactive', 'interactive'], ['d', 'deferred'], ['deferred', 'deferred'],
    ['', 'interactive'],
  ];
  for (const [text, expected] of cases) {
    assert.equal(withOverrides(['DeliveryMode', text]).deliveryMode, expected, `value "${text}"`);
  }
  assert.throws(() => withOverrides(['DeliveryMode', 'x']), /invalid value "x" for option DeliveryMode/);
});

test('QueueSortOrder first letter and error text', () => {
  assert.equal(withOverrides(['QueueSortOrder', 'Host']).queueSortOrder, 'host');
  assert.equal(withOverrides(['QueueSortOrder', 'fname']).queueSortOrder, 'filename');
  assert.equal(withOverrides(['QueueSortOrder', 'none']).queueSortOrder, 'none');
  assert.equal(withOverrides(['QueueSortOrder', 'M']).queueSortOrder, 'modification');
  assert.throws(() => withOverrides(['QueueSortOrder', 'bogus']), {
    message: '-O: Invalid queue sort order "bogus"',
  });
});

test('PrivacyOptions words and goaway', () => {
  const cfg = withOverrides(['PrivacyOptions', 'novrfy, noexpn']);
  assert.ok(cfg.privacyOptions.has('novrfy'));
  assert.ok(cfg.privacyOptions.has('noexpn'));
  assert.ok(!cfg.privacyOptions.has('noetrn'));

  const all = withOverrides(['PrivacyOptions', 'goaway']);
  for (const word of ['needmailhelo', 'needexpnhelo', 'needvrfyhelo', 'novrfy', 'noexpn', 'noverb', 'authwarnings']) {
    assert.ok(all.privacyOptions.has(word), word);
  }
  // As in sendmail 8.17, goaway is its low 16 flags only.
  for (const word of ['noetrn', 'restrictmailq', 'restrictqrun', 'restrictexpand', 'noreceipts', 'nobodyreturn']) {
    assert.ok(!all.privacyOptions.has(word), word);
  }
  assert.throws(() => withOverrides(['PrivacyOptions', 'novrfy,bogus']), /invalid value "bogus"/);
});

test('queuereturn sets its class forms', () => {
  const cfg = withOverrides(['Timeout.queuereturn', '3'], ['Timeout.queuereturn.urgent', '1d']);
  assert.equal(cfg.timeouts.get('queuereturn'), 3 * 86400_000);
  assert.equal(cfg.timeouts.get('queuereturn.normal'), 3 * 86400_000);
  assert.equal(cfg.timeouts.get('queuereturn.non-urgent'), 3 * 86400_000);
  assert.equal(cfg.timeouts.get('queuereturn.urgent'), 86400_000);
});

test('old Timeout form sets read timeouts', () => {
  const cfg = withOverrides(['Timeout', '20m,initial=1m,queuewarn:2h']);
  assert.equal(cfg.timeouts.get('mail'), 20 * 60_000);
  assert.equal(cfg.timeouts.get('datafinal'), 20 * 60_000);
  assert.equal(cfg.timeouts.get('command'), 20 * 60_000);
  assert.equal(cfg.timeouts.get('initial'), 60_000);
  assert.equal(cfg.timeouts.get('queuewarn'), 2 * 3600_000);
  assert.equal(cfg.timeouts.get('helo'), 5 * 60_000);
});

test('sizes accept suffixes', () => {
  assert.equal(withOverrides(['MaxMessageSize', '10485760']).maxMessageSize, 10485760);
  assert.equal(withOverrides(['MaxMessageSize', '10m']).maxMessageSize, 10485760);
  assert.equal(withOverrides(['MaxMessageSize', '64k']).maxMessageSize, 65536);
});

test('parseShortOption maps letters', () => {
  assert.deepEqual(parseShortOption('s', 'i'), { name: 'SuperSafe', value: 'i' });
  assert.deepEqual(parseShortOption('d', 'q'), { name: 'DeliveryMode', value: 'q' });
  assert.equal(parseShortOption('i', '').name, 'IgnoreDots');
  assert.equal(parseShortOption('e', 'p').name, 'ErrorMode');
  assert.equal(parseShortOption('m', '').name, 'MeToo');
  assert.equal(parseShortOption('X', '12').name, 'RefuseLA');
  assert.equal(parseShortOption('x', '8').name, 'QueueLA');
  assert.equal(parseShortOption('Q', '/q').name, 'QueueDirectory');
  assert.equal(parseShortOption('L', '12').name, 'LogLevel');
  assert.equal(parseShortOption('r', '5m').name, 'Timeout');
  assert.equal(parseShortOption('A', '/a').name, 'AliasFile');
  assert.throws(() => parseShortOption('W', 'x'), /unknown option letter W/);
});

test('-O wins over the file', () => {
  const tmp = makeTempDir();
  try {
    const file = tmp.write('sendmail.cf', 'O MaxHopCount=17\nO QueueDirectory=/from/file\nO LogLevel=12\n');
    const cfg = loadConfig({ file, overrides: [{ name: 'MaxHopCount', value: '40' }] });
    assert.equal(cfg.options.get('MaxHopCount'), 40);
    assert.equal(cfg.origins.get('MaxHopCount'), '-O');
    assert.equal(cfg.queueDirectory, '/from/file');
    assert.equal(cfg.origins.get('QueueDirectory'), `${file}:2`);
    assert.equal(cfg.logLevel, 12);
  } finally {
    tmp.cleanup();
  }
});

test('-O DaemonPortOptions replaces the file daemons', () => {
  const tmp = makeTempDir();
  try {
    const file = tmp.write('sendmail.cf',
      'O DaemonPortOptions=Port=2525, Name=A\nO DaemonPortOptions=Port=2526, Name=B\n');
    assert.equal(loadConfig({ file }).daemons.length, 2);
    const cfg = loadConfig({ file, overrides: [{ name: 'DaemonPortOptions', value: 'Port=3000, Addr=127.0.0.1' }] });
    assert.deepEqual(cfg.daemons.map((d) => [d.port, d.addr]), [[3000, '127.0.0.1']]);
  } finally {
    tmp.cleanup();
  }
});

test('missing configuration file is a ConfigError', () => {
  assert.throws(() => loadConfig({ file: '/nonexistent/posthorn/sendmail.cf' }), {
    name: 'ConfigError',
    message: /^\/nonexistent\/posthorn\/sendmail\.cf: cannot read configuration file/,
  });
});

test('DeliverByMin takes a sign, other durations do not', () => {
  assert.equal(withOverrides(['DeliverByMin', '-1']).options.get('DeliverByMin'), -1000);
  assert.equal(withOverrides(['DeliverByMin', '90']).options.get('DeliverByMin'), 90_000);
  assert.throws(() => withOverrides(['Timeout.queuereturn', '-1d']), /Timeout\.queuereturn/);
});
