import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../../src/config/load';
import { makeTempDir } from './helpers';

const CF = [
  '# sendmail.cf written for the Posthorn tests',
  'V10/Berkeley',
  'Djmx.example.org',
  'DSrelay.example.net',
  'D{MTAHost}[127.0.0.1]',
  'Cw example.org',
  'Cwmail.example.org  www.example.org',
  'CRpartner.example',
  'O QueueDirectory = /var/spool/posthorn',
  'O   MaxMessageSize=1000000',
  'OL12',
  'Os p',
  'O DaemonPortOptions=Port=2525, Addr=127.0.0.1, Name=MTA-test, M=Ea',
  'O DaemonPortOptions=Family=inet6, Addr=::1, Port=2526',
  'O InputMailFilters=dkim, av',
  'Xdkim, S=inet:8891@127.0.0.1, F=T',
  'Xav, S=local:/run/av.sock,',
  '\tT=C:30s;S:20s',
  'Mesmtp,\t\tP=[IPC], F=mDFMuXa, S=EnvFromSMTP/HdrFromSMTP, R=EnvToSMTP, E=\\r\\n, L=990,',
  '\t\tT=DNS/RFC822/SMTP,',
  '\t\tA=TCP $h 2526',
  'Mrelay,\t\tP=[IPC], F=mDFMuXa8, A=TCP $h',
  'Scheck_rcpt',
  'R$*\t\t$: $1',
  'Kaccess hash -T<TMPF> /etc/mail/access',
  'H?D?Date: $a',
  'Pbulk=-60',
  'Troot',
  'O Timeout.queuewarn=2h',
  '',
].join('\n');

test('cf options, macros and classes', () => {
  const tmp = makeTempDir();
  try {
    const file = tmp.write('sendmail.cf', CF);
    const cfg = loadConfig({ file });
    assert.equal(cfg.sourceFile, file);
    assert.equal(cfg.hostName, 'mx.example.org');
    assert.equal(cfg.smartHost, 'relay.example.net');
    assert.equal(cfg.macros.get('MTAHost'), '[127.0.0.1]');
    assert.equal(cfg.queueDirectory, '/var/spool/posthorn');
    assert.equal(cfg.origins.get('QueueDirectory'), `${file}:9`);
    assert.equal(cfg.maxMessageSize, 1000000);
    assert.equal(cfg.logLevel, 12);
    assert.equal(cfg.superSafe, 'postmilter');
    assert.equal(cfg.timeouts.get('queuewarn'), 2 * 3600_000);
    for (const name of ['example.org', 'mail.example.org', 'www.example.org', 'mx.example.org', 'localhost']) {
      assert.ok(cfg.localDomains.has(name), name);
    }
    assert.deepEqual([...cfg.relayDomains], ['partner.example']);
  } finally {
    tmp.cleanup();
  }
});

test('cf daemons, filters and mailers', () => {
  const tmp = makeTempDir();
  try {
    const cfg = loadConfig({ file: tmp.write('sendmail.cf', CF) });
    assert.deepEqual(cfg.daemons, [
      { name: 'MTA-test', addr: '127.0.0.1', port: 2525, family: 'inet', modifiers: 'Ea', listen: 1024 },
      { name: 'Daemon1', addr: '::1', port: 2526, family: 'inet6', modifiers: '', listen: 1024 },
    ]);
    assert.deepEqual(cfg.options.get('InputMailFilters'), ['dkim', 'av']);
    assert.deepEqual(cfg.mailFilters.map((x) => [x.name, x.equates, x.line]), [
      ['dkim', 'S=inet:8891@127.0.0.1, F=T', 16],
      ['av', 'S=local:/run/av.sock, T=C:30s;S:20s', 17],
    ]);
    assert.deepEqual(cfg.mailers, [{ name: 'esmtp', port: 2526 }, { name: 'relay' }]);
  } finally {
    tmp.cleanup();
  }
});

test('cf class file with -o', () => {
  const tmp = makeTempDir();
  try {
    const names = tmp.write('local-host-names', '# our names\nexample.com\n  example.net  # second\n');
    const file = tmp.write('sendmail.cf', `Fw${names}\nFR-o ${tmp.dir}/missing-file\n`);
    const cfg = loadConfig({ file });
    assert.ok(cfg.localDomains.has('example.com'));
    assert.ok(cfg.localDomains.has('example.net'));

    const strict = tmp.write('strict.cf', `Fw${tmp.dir}/missing-file\n`);
    assert.throws(() => loadConfig({ file: strict }), /strict\.cf:1: cannot open class file/);
  } finally {
    tmp.cleanup();
  }
});

test('cf unknown option names file and line', () => {
  const tmp = makeTempDir();
  try {
    const file = tmp.write('bad.cf', '# header\nO QueueDirectory=/q\nO NoSuchThing=1\n');
    assert.throws(() => loadConfig({ file }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, `${file}:3: unknown option name NoSuchThing`);
      assert.equal(err.file, file);
      assert.equal(err.line, 3);
      assert.equal(err.word, 'NoSuchThing');
      return true;
    });
  } finally {
    tmp.cleanup();
  }
});

test('cf unknown line kind is an error', () => {
  const tmp = makeTempDir();
  try {
    const file = tmp.write('bad.cf', 'O LogLevel=9\nZsomething\n');
    assert.throws(() => loadConfig({ file }), { message: `${file}:2: unknown configuration line "Zsomething"` });
  } finally {
    tmp.cleanup();
  }
});

test('cf filter listed without X line', () => {
  const tmp = makeTempDir();
  try {
    const file = tmp.write('bad.cf', 'Xone, S=inet:1@127.0.0.1\nO InputMailFilters=one,two\n');
    assert.throws(() => loadConfig({ file }), { message: `${file}:2: InputFilter two not defined` });
  } finally {
    tmp.cleanup();
  }
});

test('cf bad DaemonPortOptions', () => {
  const tmp = makeTempDir();
  try {
    const cases: Array<[string, RegExp]> = [
      ['Port=smtpx', /service "smtpx" unknown/],
      ['Family=inet, Addr=::1', /not an IPv4 address/],
      ['Family=local', /unsupported address family local/],
      ['Bogus=1', /DaemonPortOptions parameter "Bogus" unknown/],
    ];
    for (const [spec, expected] of cases) {
      const file = tmp.write('d.cf', `O DaemonPortOptions=${spec}\n`);
      assert.throws(() => loadConfig({ file }), expected, spec);
    }
  } finally {
    tmp.cleanup();
  }
});
