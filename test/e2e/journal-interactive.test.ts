// DeliveryMode=interactive with the commit journal: the delivery runs before
// the 250. With SuperSafe=True the message goes through the journal and, when
// deferred, is queued as df and qf by the time of the 250. With
// SuperSafe=Interactive the files are synced only if the message is still
// queued after the delivery, and the journal is not used.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { quoteRe, sendToRemote, startNextHopDown } from '../helpers/e2e-setup';
import { journalOpenIds } from '../helpers/journal';
import { waitFor } from '../helpers/process';

for (const superSafe of ['True', 'Interactive']) {
  test(`DeliveryMode=interactive, SuperSafe=${superSafe}`, { timeout: 55_000 }, async (t) => {
    const hop = await startNextHopDown(t, { args: ['-O', 'DeliveryMode=interactive', '-O', `SuperSafe=${superSafe}`] });
    const { ph } = hop;
    const deferred = await sendToRemote(ph.port, 'deferred first');
    // The delivery ran before the 250: the item is queued, unlocked, and not in a journal.
    assert.match(ph.logs(), new RegExp(`${quoteRe(deferred)}: to=<bob@remote\\.example>, .*stat=Deferred`));
    assert.ok(fs.existsSync(path.join(ph.queueDir, `qf${deferred}`)), ph.queueFiles().join(' '));
    assert.ok(fs.existsSync(path.join(ph.queueDir, `df${deferred}`)));
    await waitFor('the lock released', () => !fs.existsSync(path.join(ph.queueDir, `lf${deferred}`)), 5_000);
    assert.deepEqual(journalOpenIds(ph.queueDir), []);

    const sink = await hop.startSink();
    const sent = await sendToRemote(ph.port, 'sent at once');
    // Delivered before the 250.
    assert.equal(sink.messages.length, 1);
    assert.match(ph.logs(), new RegExp(`${quoteRe(sent)}: to=<bob@remote\\.example>, .*stat=Sent`));
    await waitFor('the delivered item gone', () => !ph.queueFiles().some((n) => n.endsWith(sent)), 5_000);
    const journals = fs.readdirSync(ph.queueDir).filter((n) => n.startsWith('.jr.'));
    if (superSafe === 'Interactive') assert.deepEqual(journals, [], 'SuperSafe=Interactive used the journal');
    else assert.equal(journals.length, 1, 'SuperSafe=True did not use the journal');

    const run = await ph.run(['-q']);
    assert.equal(run.code, 0, run.stderr);
    await sink.waitForMessages(2, 10_000);
    await ph.kill('SIGKILL');
    assert.deepEqual(ph.queueFiles().filter((n) => !n.startsWith('.')), []);
    assert.deepEqual(journalOpenIds(ph.queueDir), []);
    assert.equal(sink.messages.length, 2);
  });
}
