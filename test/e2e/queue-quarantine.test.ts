// A queue of several hundred items built through the daemon, then listed,
// selected, quarantined, released and run through the command line.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startDnsServer, type DnsRecord } from '../helpers/dns-server';
import { startSink } from '../helpers/sink';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { freePortOn } from '../helpers/process';
import { mxZone } from '../helpers/e2e-setup';
import { fillQueue, type QueuedMessage } from '../helpers/queue-fill';

/** A busy test machine must not make the daemon refuse connections or hold back queue runs. */
const NO_LOAD_LIMITS = ["define(`confREFUSE_LA', `100000')", "define(`confQUEUE_LA', `100000')"];

const ITEMS = 300;
const SENDERS = ['ann@a.example', 'ben@b.example', 'cat@c.example'];
const DOMAINS = ['d0.remote.example', 'd1.remote.example', 'd2.remote.example'];

function messages(): QueuedMessage[] {
  return Array.from({ length: ITEMS }, (_, i) => ({
    from: SENDERS[i % SENDERS.length],
    to: [`r${i}@${DOMAINS[i % DOMAINS.length]}`],
    subject: `item ${i}`,
    // Sizes that do not follow submission order, so priority order differs from it.
    body: 'x'.repeat(((i * 7919) % ITEMS) * 20),
  }));
}

interface MailqEntryLines {
  id: string;
  status: string;
  size: number;
  sender: string;
  quarantine?: string;
  recipients: string[];
}

/**
 * Parses non-verbose mailq output, checking every line against sendmail's
 * layout; throws on any line that fits none of them.
 */
function parseMailq(text: string, queueDir: string): { count: number; entries: MailqEntryLines[]; total: number } {
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', 'output must end with a newline');
  const header = /^\t\t(.+) \((\d+) requests?(?:, only \d+ printed)?\)$/.exec(lines[0] ?? '');
  assert.ok(header, `bad header line: ${JSON.stringify(lines[0])}`);
  assert.equal(header[1], queueDir);
  assert.equal(lines[1], '-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------');

  const entries: MailqEntryLines[] = [];
  let total = -1;
  for (const line of lines.slice(2)) {
    const job = /^([0-9A-Za-z]{14})([ *X?-])([ \d]{8}) ((?:Sun|Mon|Tue|Wed|Thu|Fri|Sat) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d) (<.*>)$/.exec(line);
    if (job) {
      entries.push({ id: job[1], status: job[2], size: Number(job[3]), sender: job[5], recipients: [] });
      continue;
    }
    const quarantine = /^ {5}QUARANTINE: (.*)$/.exec(line);
    if (quarantine) {
      entries[entries.length - 1].quarantine = quarantine[1];
      continue;
    }
    const rcpt = /^\t{5} (<.*>)$/.exec(line);
    if (rcpt) {
      entries[entries.length - 1].recipients.push(rcpt[1]);
      continue;
    }
    if (/^ {4}[ A-Z0-9]{10}(?: {3}\(.*\))?$/.test(line)) continue;
    const totalLine = /^\t\tTotal requests: (\d+)$/.exec(line);
    if (totalLine) {
      total = Number(totalLine[1]);
      continue;
    }
    assert.fail(`line in no mailq layout: ${JSON.stringify(line)}`);
  }
  return { count: Number(header[2]), entries, total };
}

async function mailq(ph: Posthorn, args: string[] = []): Promise<string> {
  const result = await ph.run(['-bp', ...args]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout;
}

function zones(): Record<string, DnsRecord[]> {
  const all: Record<string, DnsRecord[]> = {};
  for (const domain of DOMAINS) Object.assign(all, mxZone(domain, [[10, `mx.${domain}`, '127.0.0.2']]));
  return all;
}

test('deep queue quarantined and released', async (t) => {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const dns = await startDnsServer({ zones: zones() });
  t.after(() => dns.close());
  const ph = await startPosthorn({
    mc: baseMc({ dnsPort: dns.port, mailerPort, extra: NO_LOAD_LIMITS }),
    args: ['-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => ph.stop());

  const ids = await fillQueue(ph.port, messages());
  assert.equal(new Set(ids).size, ITEMS);

  // The whole queue, in priority order (the default QueueSortOrder).
  const all = parseMailq(await mailq(ph), ph.queueDir);
  assert.equal(all.count, ITEMS);
  assert.equal(all.total, ITEMS);
  assert.equal(all.entries.length, ITEMS);
  assert.deepEqual(new Set(all.entries.map((e) => e.id)), new Set(ids));
  const sizes = all.entries.map((e) => e.size);
  assert.deepEqual(sizes, [...sizes].sort((a, b) => a - b), 'priority order means ascending size here');
  for (const e of all.entries) assert.equal(e.recipients.length, 1);

  // Selections by sender, recipient and id; negation.
  const bySender = parseMailq(await mailq(ph, ['-qSben@']), ph.queueDir);
  assert.equal(bySender.count, ITEMS / 3);
  assert.ok(bySender.entries.every((e) => e.sender === '<ben@b.example>'));
  const notSender = parseMailq(await mailq(ph, ['-q!Sben@']), ph.queueDir);
  assert.equal(notSender.count, (2 * ITEMS) / 3);
  const byRcpt = parseMailq(await mailq(ph, ['-qRD1.REMOTE']), ph.queueDir);
  assert.equal(byRcpt.count, ITEMS / 3, 'recipient match ignores case');
  const byId = parseMailq(await mailq(ph, [`-qI${ids[7]}`]), ph.queueDir);
  assert.deepEqual(byId.entries.map((e) => e.id), [ids[7]]);

  // Quarantine every item from ben with -v messages and log lines.
  const q = await ph.run(['-Qheld for review', '-qSben@', '-v']);
  assert.equal(q.code, 0, q.stderr);
  const qLines = q.stdout.split('\n').filter(Boolean);
  assert.equal(qLines[0], `Processing ${ph.queueDir}:`);
  assert.equal(qLines[qLines.length - 1], `${ITEMS / 3} changes`);
  assert.equal(qLines.filter((l) => / Quarantined with "held for review"$/.test(l)).length, ITEMS / 3);
  const heldIds = ids.filter((_, i) => i % 3 === 1);
  for (const id of heldIds) {
    assert.ok(fs.existsSync(path.join(ph.queueDir, `hf${id}`)), `hf${id} missing`);
    assert.ok(!fs.existsSync(path.join(ph.queueDir, `qf${id}`)), `qf${id} still there`);
    assert.match(fs.readFileSync(path.join(ph.queueDir, `hf${id}`), 'utf8'), /^qheld for review$/m);
  }
  assert.match(ph.logs(), new RegExp(`${heldIds[0]}: quarantine=held for review`));

  // A second -Q with the same reason changes nothing.
  const again = await ph.run(['-Qheld for review', '-qQ', '-v']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /: Already quarantined with "held for review"$/m);
  assert.match(again.stdout, /^No changes$/m);

  // Normal listing leaves them out; -qQ lists only them, with the reason.
  assert.equal(parseMailq(await mailq(ph), ph.queueDir).count, (2 * ITEMS) / 3);
  const quarantined = parseMailq(await mailq(ph, ['-qQ']), ph.queueDir);
  assert.equal(quarantined.count, ITEMS / 3);
  assert.ok(quarantined.entries.every((e) => e.quarantine === 'held for review'));
  assert.equal(parseMailq(await mailq(ph, ['-qQreview']), ph.queueDir).count, ITEMS / 3);
  assert.match(await mailq(ph, ['-q!Qreview']), /is empty\n\t\tTotal requests: 0\n$/);

  // Change the reason of one quarantined item.
  const relabel = await ph.run(['-Qspam', '-qQ', `-qI${heldIds[0]}`, '-v']);
  assert.equal(relabel.code, 0, relabel.stderr);
  assert.match(relabel.stdout, new RegExp(`^${heldIds[0]}: Quarantine changed from "held for review" to "spam"$`, 'm'));
  assert.match(relabel.stdout, /^1 change$/m);

  // A queue run delivers everything but the quarantined items.
  const sink = await startSink({ host: '127.0.0.2', port: mailerPort });
  t.after(() => sink.close());
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  await sink.waitForMessages((2 * ITEMS) / 3, 60_000);
  assert.equal(sink.messages.length, (2 * ITEMS) / 3);
  assert.ok(sink.messages.every((m) => m.from !== 'ben@b.example'));
  assert.equal(ph.queueFiles().filter((f) => f.startsWith('hf')).length, ITEMS / 3);

  // Release all quarantined items, then a run delivers them.
  const release = await ph.run(['-Q', '-qQ', '-v']);
  assert.equal(release.code, 0, release.stderr);
  assert.match(release.stdout, new RegExp(`^${heldIds[0]}: Removed quarantine of "spam"$`, 'm'));
  assert.match(release.stdout, new RegExp(`^${ITEMS / 3} changes$`, 'm'));
  assert.match(ph.logs(), new RegExp(`${heldIds[1]}: unquarantine`));
  assert.equal(ph.queueFiles().filter((f) => f.startsWith('hf')).length, 0);

  const second = await ph.run(['-q']);
  assert.equal(second.code, 0, second.stderr);
  await sink.waitForMessages(ITEMS, 60_000);
  assert.equal(sink.messages.filter((m) => m.from === 'ben@b.example').length, ITEMS / 3);
  assert.match(await mailq(ph), /is empty\n/);
});

test('-qQ run delivers quarantined items', async (t) => {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const dns = await startDnsServer({ zones: zones() });
  t.after(() => dns.close());
  const ph = await startPosthorn({
    mc: baseMc({ dnsPort: dns.port, mailerPort, extra: NO_LOAD_LIMITS }),
    args: ['-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => ph.stop());
  const ids = await fillQueue(ph.port, messages().slice(0, 6));

  const q = await ph.run(['-Qhold', `-qI${ids[0]}`, `-qI${ids[1]}`]);
  assert.equal(q.code, 0, q.stderr);
  assert.equal(q.stdout, '', 'without -v nothing is printed');

  const sink = await startSink({ host: '127.0.0.2', port: mailerPort });
  t.after(() => sink.close());
  const run = await ph.run(['-qQ']);
  assert.equal(run.code, 0, run.stderr);
  await sink.waitForMessages(2, 30_000);
  assert.equal(sink.messages.length, 2);
  assert.deepEqual(ph.queueFiles().filter((f) => f.startsWith('qf')).length, 4);
});

test('-Q rejected with -bp and -qL', async (t) => {
  const ph = await startPosthorn({ mc: baseMc({ extra: NO_LOAD_LIMITS }), args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());
  const withBp = await ph.run(['-bp', '-Qx']);
  assert.equal(withBp.code, 64);
  assert.match(withBp.stderr, /Can not use -Q with -bp/);
  const withLost = await ph.run(['-qL', '-Qx']);
  assert.equal(withLost.code, 64);
  assert.match(withLost.stderr, /Can not use -Q with -qL/);
  const negatedGroup = await ph.run(['-q!G', '-Qx']);
  assert.equal(negatedGroup.code, 64);
});

test('QueueSortOrder and MaxQueueRunSize from the command line', async (t) => {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const dns = await startDnsServer({ zones: zones() });
  t.after(() => dns.close());
  const ph = await startPosthorn({
    mc: baseMc({ dnsPort: dns.port, mailerPort, extra: NO_LOAD_LIMITS }),
    args: ['-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => ph.stop());
  const ids = await fillQueue(ph.port, messages().slice(0, 40));

  const byName = parseMailq(await mailq(ph, ['-O', 'QueueSortOrder=filename']), ph.queueDir);
  assert.deepEqual(byName.entries.map((e) => e.id), [...ids].sort());

  const byHost = parseMailq(await mailq(ph, ['-O', 'QueueSortOrder=host']), ph.queueDir);
  const hosts = byHost.entries.map((e) => e.recipients[0].replace(/^<[^@]*@|>$/g, ''));
  // d0, d1 and d2.remote.example reversed: "elpmaxe.etomer.0d" < "...1d" < "...2d".
  assert.deepEqual(hosts, [...hosts].sort());
  assert.equal(new Set(hosts).size, 3);

  const byPriority = parseMailq(await mailq(ph, ['-O', 'MaxQueueRunSize=10']), ph.queueDir);
  assert.equal(byPriority.count, 40);
  assert.equal(byPriority.entries.length, 10, 'only MaxQueueRunSize entries printed');
  assert.match(await mailq(ph, ['-O', 'MaxQueueRunSize=10']), /^\t\t\S+ \(40 requests, only 10 printed\)$/m);

  const sink = await startSink({ host: '127.0.0.2', port: mailerPort });
  t.after(() => sink.close());
  const run = await ph.run(['-q', '-O', 'MaxQueueRunSize=10']);
  assert.equal(run.code, 0, run.stderr);
  await sink.waitForMessages(10, 30_000);
  const expected = byPriority.entries.map((e) => e.recipients[0].slice(1, -1)).sort();
  assert.deepEqual(sink.messages.map((m) => m.to[0]).sort(), expected, 'the 10 items of lowest priority');
  assert.equal(parseMailq(await mailq(ph), ph.queueDir).count, 30);
});

test('-Q on submission queues quarantined', async (t) => {
  const ph = await startPosthorn({ mc: baseMc({ extra: NO_LOAD_LIMITS }), args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());
  const message = 'From: carol@posthorn.test\nTo: dave@posthorn.test\nSubject: held at submission\n\nbody\n';
  const sent = await ph.run(['-Qsubmitted for review', '-f', 'carol@posthorn.test', 'dave@posthorn.test'], message);
  assert.equal(sent.code, 0, sent.stderr);

  const listing = parseMailq(await mailq(ph, ['-qQ']), ph.queueDir);
  assert.equal(listing.count, 1);
  assert.equal(listing.entries[0].quarantine, 'submitted for review');
  assert.equal(ph.queueFiles().filter((f) => f.startsWith('hf')).length, 1);
  // A queue run leaves it alone.
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(ph.mailbox('dave'), '', 'not delivered');
  assert.equal(ph.queueFiles().filter((f) => f.startsWith('hf')).length, 1);
});
