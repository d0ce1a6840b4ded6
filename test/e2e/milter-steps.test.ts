// The daemon with the test milter: rejected recipients for filters that
// request them (SMFIP_RCPT_REJ), unknown commands ('U'), a changed sender
// with ESMTP arguments, per-daemon InputMailFilters, Milter.macros.* lists
// (empty ones too), the address macros and ${quarantine}.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { makeMessage } from '../helpers/e2e-setup';
import { splitNulFields, type Packet } from '../../src/milter/codec';
import { Protocol } from '../../src/milter/protocol';
import { REJECT, TestMilter, packet, replyCode, type TestMilterOptions } from '../milter/test-milter';

type T = { after(fn: () => Promise<void> | void): void };

async function startMilter(t: T, options: TestMilterOptions = {}): Promise<TestMilter> {
  const milter = await new TestMilter(options).listen();
  t.after(() => milter.close());
  return milter;
}

async function startWithMc(t: T, mc: string, args: string[] = []): Promise<Posthorn> {
  const ph = await startPosthorn({ mc, args });
  t.after(() => ph.stop());
  return ph;
}

function filterLines(filters: Array<[string, string]>): string[] {
  return filters.map(([name, equates]) => `INPUT_MAIL_FILTER(\`${name}', \`${equates}')`);
}

/** Collects the macros of each D packet for one command letter, as name → value. */
function macrosFor(packets: Packet[], letter: string): Map<string, string>[] {
  return packets
    .filter((p) => p.data[0] === letter.charCodeAt(0))
    .map((p) => {
      const fields = splitNulFields(p.data.subarray(1));
      const map = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i], fields[i + 1]);
      return map;
    });
}

const MESSAGE = makeMessage({
  from: 'carol@client.example',
  to: 'alice@posthorn.test',
  subject: 'milter steps',
  body: 'Hello through the filter.',
});

test('rejected recipient reaches RCPT_REJ filter', async (t) => {
  const asking = await startMilter(t, {
    protocol: Protocol.RCPT_REJ,
    on: { R: (data) => (data.toString('latin1').startsWith('<someone@') ? [replyCode('421 4.7.0 ignored for a rejected recipient')] : undefined) },
  });
  const plain = await startMilter(t);
  const mc = baseMc({ extra: filterLines([['asking', `S=${asking.socketSpec}`], ['plain', `S=${plain.socketSpec}`]]) });
  const ph = await startWithMc(t, mc, ['-O', 'DeliveryMode=queueonly']);
  const replies = await rawSmtp(ph.port, [
    'EHLO client.example',
    'MAIL FROM:<carol@client.example>',
    'RCPT TO:<someone@elsewhere.example>',
    'RCPT TO:<alice@posthorn.test>',
    'QUIT',
  ], { localAddress: '127.0.0.9' });
  assert.match(replies[3], /^550 5\.7\.1 <someone@elsewhere\.example>\.\.\. Relaying denied/);
  assert.match(replies[4], /^250 2\.1\.5 /);

  const askingRcpts = asking.packets('R').map((p) => splitNulFields(p.data)[0]);
  assert.deepEqual(askingRcpts, ['<someone@elsewhere.example>', '<alice@posthorn.test>']);
  const plainRcpts = plain.packets('R').map((p) => splitNulFields(p.data)[0]);
  assert.deepEqual(plainRcpts, ['<alice@posthorn.test>']);

  const [rejected, accepted] = macrosFor(asking.packets('D'), 'R');
  assert.equal(rejected.get('{rcpt_mailer}'), 'error');
  assert.equal(rejected.get('{rcpt_host}'), '5.7.1');
  assert.equal(accepted.get('{rcpt_mailer}'), 'local');
  assert.equal(accepted.get('{rcpt_addr}'), 'alice');
});

test('unknown command goes to filter', async (t) => {
  const milter = await startMilter(t, {
    on: { U: (data) => (data.toString('latin1').startsWith('BLOCKED') ? [replyCode('554 5.7.0 Not that one')] : undefined) },
  });
  const mc = baseMc({ extra: filterLines([['test', `S=${milter.socketSpec}`]]) });
  const ph = await startWithMc(t, mc);
  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'XYZZY magic', 'BLOCKED now', 'QUIT']);
  assert.equal(replies[2], '500 5.5.1 Command unrecognized: "XYZZY magic"');
  assert.equal(replies[3], '554 5.7.0 Not that one');
  assert.deepEqual(milter.packets('U').map((p) => splitNulFields(p.data)[0]), ['XYZZY magic', 'BLOCKED now']);
  await ph.waitForLog(/Milter: unknown=BLOCKED now, reject=554 5\.7\.0 Not that one/);
});

test('unknown command skipped by NOUNKNOWN', async (t) => {
  const milter = await startMilter(t, { protocol: Protocol.NOUNKNOWN, on: { U: () => [REJECT] } });
  const mc = baseMc({ extra: filterLines([['test', `S=${milter.socketSpec}`]]) });
  const ph = await startWithMc(t, mc);
  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'XYZZY', 'QUIT']);
  assert.equal(replies[2], '500 5.5.1 Command unrecognized: "XYZZY"');
  assert.equal(milter.packets('U').length, 0);
});

test('changed sender keeps ESMTP arguments', async (t) => {
  const milter = await startMilter(t, {
    on: { E: () => [packet('e', '<new@client.example>', 'RET=HDRS ENVID=env42'), packet('a')] },
  });
  const mc = baseMc({ extra: filterLines([['test', `S=${milter.socketSpec}`]]) });
  const ph = await startWithMc(t, mc, ['-O', 'DeliveryMode=queueonly']);
  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'MAIL FROM:<carol@client.example>', 'RCPT TO:<alice@posthorn.test>', 'DATA', MESSAGE + '.\r\n', 'QUIT']);
  assert.match(replies[5], /^250 2\.0\.0 /);

  const qf = ph.queueFiles().find((name) => name.startsWith('qf'));
  assert.ok(qf !== undefined, 'a qf file is queued');
  const control = fs.readFileSync(path.join(ph.queueDir, qf), 'latin1');
  assert.match(control, /^S<new@client\.example>$/m);
  assert.match(control, /^Zenv42$/m);
  assert.match(control, /^F\S*n/m, 'RET=HDRS sets the n flag');
});

test('changed sender with bad argument fails filter', async (t) => {
  const milter = await startMilter(t, { on: { E: () => [packet('e', '<new@client.example>', 'RET=BOGUS'), packet('a')] } });
  const mc = baseMc({ extra: filterLines([['test', `S=${milter.socketSpec}, F=T`]]) });
  const ph = await startWithMc(t, mc, ['-O', 'DeliveryMode=queueonly']);
  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'MAIL FROM:<carol@client.example>', 'RCPT TO:<alice@posthorn.test>', 'DATA', MESSAGE + '.\r\n', 'QUIT']);
  assert.equal(replies[5], '451 4.3.2 Please try again later');
  await ph.waitForLog(/Milter \(test\): invalid ESMTP arguments "RET=BOGUS"/);
  assert.deepEqual(ph.queueFiles(), []);
});

test('daemon InputMailFilters replaces global list', async (t) => {
  const global = await startMilter(t);
  const own = await startMilter(t);
  const extra = [
    ...filterLines([['global', `S=${global.socketSpec}`], ['own', `S=${own.socketSpec}`]]),
    "define(`confINPUT_MAIL_FILTERS', `global')",
  ];
  const mc = baseMc({ extra }).replace("Name=MTA')", "Name=MTA, InputMailFilters=own')");
  const ph = await startWithMc(t, mc);
  await rawSmtp(ph.port, ['EHLO client.example', 'QUIT']);
  assert.equal(global.packets('C').length, 0, 'the global filter is not used by this daemon');
  assert.ok(own.packets('C').length >= 1, 'the daemon filter sees the connection');
});

test('daemon InputMailFilters needs defined filter', async () => {
  const mc = baseMc().replace("Name=MTA')", "Name=MTA, InputMailFilters=nosuch')");
  await assert.rejects(startPosthorn({ mc, startTimeoutMs: 3000 }));
});

test('empty Milter.macros list sends none', async (t) => {
  const milter = await startMilter(t);
  const extra = [...filterLines([['test', `S=${milter.socketSpec}`]]), "define(`confMILTER_MACROS_CONNECT', `')"];
  const ph = await startWithMc(t, baseMc({ extra }));
  await rawSmtp(ph.port, ['EHLO client.example', 'MAIL FROM:<carol@client.example>', 'QUIT']);
  assert.equal(macrosFor(milter.packets('D'), 'C').length, 0, 'no D packet before C');
  const atMail = macrosFor(milter.packets('D'), 'M');
  assert.ok(atMail.length >= 1, 'the envfrom default list still applies');
  assert.equal(atMail[0].get('{mail_mailer}'), 'esmtp');
  assert.equal(atMail[0].get('{mail_host}'), 'client.example');
  assert.equal(atMail[0].get('{mail_addr}'), 'carol@client.example');
});

test('quarantine macro reaches later filters', async (t) => {
  const first = await startMilter(t, { on: { E: () => [packet('q', 'held by first'), packet('c')] } });
  const second = await startMilter(t);
  const extra = [
    ...filterLines([['first', `S=${first.socketSpec}`], ['second', `S=${second.socketSpec}`]]),
    "define(`confMILTER_MACROS_EOM', `{msg_id}, {quarantine}')",
  ];
  const ph = await startWithMc(t, baseMc({ extra }), ['-O', 'DeliveryMode=queueonly']);
  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'MAIL FROM:<carol@client.example>', 'RCPT TO:<alice@posthorn.test>', 'DATA', MESSAGE + '.\r\n', 'QUIT']);
  assert.match(replies[5], /^250 2\.0\.0 /);
  assert.equal(macrosFor(first.packets('D'), 'E')[0].get('{quarantine}'), undefined);
  assert.equal(macrosFor(second.packets('D'), 'E')[0].get('{quarantine}'), 'held by first');
});
