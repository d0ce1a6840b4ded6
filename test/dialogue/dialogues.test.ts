// Runs every transcript in test/dialogues/ against a real posthorn daemon.
// Transcripts with the same @option and @mc lines share one daemon.

import { test, after } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDialogue, playDialogue, type Dialogue } from '../helpers/dialogue';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { repoRoot } from '../helpers/peers';

const dir = path.join(repoRoot, 'test', 'dialogues');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.dlg')).sort();
const daemons = new Map<string, Promise<Posthorn>>();

function daemonFor(d: Dialogue): Promise<Posthorn> {
  const key = JSON.stringify([d.options, d.mcLines]);
  let daemon = daemons.get(key);
  if (!daemon) {
    const args = d.options.flatMap((o) => ['-O', o]);
    const mc = baseMc() + "define(`confPID_FILE', `@DIR@/posthorn.pid')\n" + d.mcLines.join('\n') + '\n';
    // RefuseLA=0 and QueueLA=0 turn the load checks off, so that a busy test machine
    // does not refuse the connections.
    const loadOff = ['-O', 'RefuseLA=0', '-O', 'QueueLA=0'];
    daemon = startPosthorn({ mc, args: ['-O', 'DeliveryMode=queueonly', ...loadOff, ...args] });
    daemons.set(key, daemon);
  }
  return daemon;
}

after(async () => {
  // A daemon that failed to start must not keep the others running, or their
  // child processes would keep this test file from exiting.
  const started = await Promise.allSettled(daemons.values());
  for (const result of started) if (result.status === 'fulfilled') await result.value.stop();
});

for (const file of files) {
  const dialogue = parseDialogue(fs.readFileSync(path.join(dir, file), 'latin1'));
  test(`dialogue ${file.replace(/\.dlg$/, '')}`, { todo: dialogue.todo }, async () => {
    const daemon = await daemonFor(dialogue);
    await playDialogue(dialogue, daemon.addr, daemon.port, 10_000, daemon.queueDir);
  });
}
