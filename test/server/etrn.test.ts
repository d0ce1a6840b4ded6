// ETRN, VERB and ONEX at the SMTP level: Posthorn's replies and log lines, the
// EHLO keyword list, PrivacyOptions=noetrn and goaway, and the same commands
// against real sendmail 8.17 (`sendmail -bs` from .peers/) for comparison.

import { test } from 'node:test';
import { GOAWAY_WORDS } from '../../src/config/options-m-z';
import assert from 'node:assert/strict';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp, StepClient } from '../helpers/clients';
import { requirePeer } from '../helpers/peers';
import { startSendmail } from '../helpers/sendmail';
import { etrnOffered } from '../../src/server/etrn';
import type { Session } from '../../src/server/session';
import { quoteRe } from '../helpers/e2e-setup';
import { stdioSmtp } from './stdio-smtp';

/** Starts a daemon that only queues, with extra -O options such as PrivacyOptions=noetrn. */
async function startDaemon(t: { after(fn: () => Promise<void>): void }, options: string[] = []): Promise<Posthorn> {
  const args = ['-O', 'DeliveryMode=queueonly', '-O', 'RefuseLA=0', '-O', 'QueueLA=0'];
  for (const option of options) args.push('-O', option);
  const ph = await startPosthorn({ mc: baseMc(), args });
  t.after(() => ph.stop());
  return ph;
}

const EHLO_REPLY = [
  '250-mx.posthorn.test Hello localhost [127.0.0.1], pleased to meet you',
  '250-ENHANCEDSTATUSCODES',
  '250-PIPELINING',
  '250-EXPN',
  '250-VERB',
  '250-8BITMIME',
  '250-SIZE',
  '250-DSN',
  '250-ETRN',
  '250-DELIVERBY',
  '250 HELP',
].join('\n');

test('EHLO lists ETRN after DSN', async (t) => {
  const ph = await startDaemon(t);
  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'QUIT']);
  assert.equal(replies[1], EHLO_REPLY);
});

test('ETRN forms and their replies', async (t) => {
  const ph = await startDaemon(t);
  const replies = await rawSmtp(ph.port, [
    'ETRN before.example',
    'EHLO client.example',
    'ETRN remote.example',
    'ETRN @remote.example',
    'etrn   Mixed.Example',
    'ETRN',
    'ETRN \t',
    'ETRN #mqueue',
    'ETRN #MQUEUE',
    'ETRN #nosuch',
    'MAIL FROM:<alice@example.org>',
    'ETRN during.example',
    'RCPT TO:<bob@posthorn.test>',
    'QUIT',
  ]);
  assert.deepEqual(replies.slice(1, 2), ['250 2.0.0 Queuing for node before.example started']);
  assert.deepEqual(replies.slice(3, 11), [
    '250 2.0.0 Queuing for node remote.example started',
    '250 2.0.0 Queuing for node @remote.example started',
    '250 2.0.0 Queuing for node Mixed.Example started',
    '500 5.5.2 Parameter required',
    '500 5.5.2 Parameter required',
    '250 2.0.0 Queuing for queue group mqueue started',
    '250 2.0.0 Queuing for queue group MQUEUE started',
    '459 4.5.4 Queue nosuch unknown',
  ]);
  // ETRN inside a mail transaction leaves the transaction as it was.
  assert.equal(replies[11], '250 2.1.0 <alice@example.org>... Sender ok');
  assert.equal(replies[12], '250 2.0.0 Queuing for node during.example started');
  assert.equal(replies[13], '250 2.1.5 <bob@posthorn.test>... Recipient ok');

  for (const logged of ['before.example', 'remote.example', '@remote.example', 'Mixed.Example', '#mqueue', '#nosuch']) {
    await ph.waitForLog(new RegExp(`: localhost \\[127\\.0\\.0\\.1\\]: ETRN ${quoteRe(logged)}$`, 'm'));
  }
});

test('ETRN session logs no "did not issue" line', async (t) => {
  const ph = await startDaemon(t);
  await rawSmtp(ph.port, ['HELO client.example', 'ETRN remote.example', 'QUIT']);
  const etrn = await ph.waitForLog(/: (\S+): localhost \[127\.0\.0\.1\]: ETRN remote\.example$/m);

  // A later session that issues nothing logs the line. The ETRN session ended before it began.
  await rawSmtp(ph.port, ['HELO client.example', 'QUIT']);
  await ph.waitForLog(/did not issue MAIL\/EXPN\/VRFY\/ETRN during connection to MTA/);
  assert.doesNotMatch(ph.logs(), new RegExp(`${etrn[1]}: .*did not issue`));
});

test('VERB and ONEX replies', async (t) => {
  const ph = await startDaemon(t);
  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'VERB', 'VERB on', 'ONEX', 'QUIT']);
  assert.deepEqual(replies.slice(2, 5), ['250 2.0.0 Verbose mode', '250 2.0.0 Verbose mode', '500 5.5.1 Command unrecognized: "ONEX"']);

  // VERB goes with EXPN: noexpn or noverb turns it off.
  for (const privacy of ['noexpn', 'noverb']) {
    const closed = await startDaemon(t, [`PrivacyOptions=${privacy}`]);
    const replies = await rawSmtp(closed.port, ['EHLO client.example', 'VERB', 'QUIT']);
    assert.equal(replies[2], '502 5.7.0 Verbose unavailable', privacy);
    assert.doesNotMatch(replies[1], /250-VERB/, privacy);
  }
});

test('null server answers ONEX and ETRN', async (t) => {
  const ph = await startDaemon(t);
  const client = await StepClient.connect(ph.port);
  t.after(() => client.socket.destroy());
  assert.match(await client.reply(), /^220 /);

  // A command pipelined behind EHLO makes the session a null server.
  client.send('EHLO client.example\r\nNOOP\r\n');
  assert.match(await client.reply(), /^250-/);
  assert.equal(await client.reply(), '554 5.5.0 SMTP protocol error');
  assert.equal(await client.command('ETRN remote.example'), '550 5.0.0 Command rejected');
  assert.equal(await client.command('VERB'), '550 5.0.0 Command rejected');
  assert.equal(await client.command('ONEX'), '500 5.5.1 Command unrecognized: "ONEX"');
  assert.match(await client.command('QUIT'), /^221 /);
});

test('PrivacyOptions=noetrn refuses ETRN', async (t) => {
  const ph = await startDaemon(t, ['PrivacyOptions=noetrn']);
  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'ETRN remote.example', 'ETRN', 'QUIT']);
  assert.equal(replies[1], EHLO_REPLY.replace('250-ETRN\n', ''));
  assert.equal(replies[2], '502 5.7.0 Sorry, we do not allow this operation');
  assert.equal(replies[3], '502 5.7.0 Sorry, we do not allow this operation');
  await ph.waitForLog(/: localhost \[127\.0\.0\.1\]: ETRN remote\.example \[rejected\]$/m);
  await ph.waitForLog(/: localhost \[127\.0\.0\.1\]: ETRN \[rejected\]$/m);
});

test('PrivacyOptions=goaway keeps ETRN', async (t) => {
  const ph = await startDaemon(t, ['PrivacyOptions=goaway']);
  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'ETRN remote.example', 'VERB', 'QUIT']);
  // goaway includes noexpn and noverb.
  assert.equal(replies[1], EHLO_REPLY.replace('250-EXPN\n250-VERB\n', ''));
  assert.equal(replies[2], '250 2.0.0 Queuing for node remote.example started');
  assert.equal(replies[3], '502 5.7.0 Verbose unavailable');
});

/** Builds a session with just what etrnOffered() reads. */
function fakeSession(opts: { privacy?: string[]; modifiers?: string; runner?: boolean }): Session {
  const words = opts.privacy ?? ['public'];
  // As the configuration expands goaway.
  const privacyOptions = new Set(words.includes('goaway') ? [...words, ...GOAWAY_WORDS] : words);
  return {
    ctx: { config: { privacyOptions }, runQueue: opts.runner === false ? undefined : async () => 0 },
    options: { daemonName: 'MTA', relayAllowed: false, daemonModifiers: opts.modifiers },
  } as unknown as Session;
}

test('etrnOffered follows options and modifiers', () => {
  assert.equal(etrnOffered(fakeSession({})), true);
  assert.equal(etrnOffered(fakeSession({ privacy: ['noetrn'] })), false);
  assert.equal(etrnOffered(fakeSession({ privacy: ['goaway'] })), true);
  assert.equal(etrnOffered(fakeSession({ modifiers: 'E' })), false);
  assert.equal(etrnOffered(fakeSession({ modifiers: 'S' })), true);
  assert.equal(etrnOffered(fakeSession({ runner: false })), false);
});

// The comparison with sendmail 8.17. AUTH is left out of its EHLO reply
// because Posthorn does not implement it.

const COMPARED = [
  'EHLO client.example',
  'ETRN remote.example',
  'ETRN @remote.example',
  'ETRN',
  'ETRN #mqueue',
  'ETRN #nosuch',
  'VERB',
  'ONEX',
  'TURN',
  'MAIL FROM:<>',
  'ETRN during.example',
  'QUIT',
];

/** Replies with host names, the greeting and the keywords Posthorn does not implement taken out. */
function normalize(replies: string[]): string[] {
  return replies.map((r) =>
    r
      .replace(/^220 .*/, '220 <greeting>')
      .replace(/^250-\S+ Hello .*, pleased to meet you/, '250-<host> Hello <client>, pleased to meet you')
      .replace(/\n250-AUTH\b[^\n]*/g, '')
      .replace(/mx\.(posthorn|sendmail)\.test/g, '<host>'),
  );
}

test('replies match sendmail 8.17', async (t) => {
  const bin = requirePeer(t, 'sendmail');
  if (!bin) return;
  const sendmail = await startSendmail({ bin });
  t.after(() => sendmail.stop());

  const cases: Array<[posthorn: string[], sendmail: string]> = [
    [[], 'public'],
    [['PrivacyOptions=noexpn'], 'noexpn'],
    [['PrivacyOptions=noverb'], 'noverb'],
    [['PrivacyOptions=noetrn'], 'noetrn'],
    [['PrivacyOptions=goaway'], 'goaway'],
  ];
  for (const [posthornOptions, privacy] of cases) {
    const ph = await startDaemon(t, posthornOptions);
    const ours = normalize(await rawSmtp(ph.port, COMPARED));

    // sendmail -bs in its own UTS namespace, so that its host name is fully qualified.
    const args = ['--uts', 'sh', '-c', 'hostname mx.sendmail.test && exec "$0" "$@"', bin,
      '-C', `${sendmail.dir}/sendmail.cf`, '-bs', `-OPrivacyOptions=${privacy}`];
    const theirs = normalize(await stdioSmtp('unshare', args, COMPARED));
    assert.deepEqual(ours, theirs, `PrivacyOptions=${privacy}`);
  }
});
