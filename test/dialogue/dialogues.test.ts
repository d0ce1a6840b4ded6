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
    daemon = startPosthorn({ mc, args: ['-O', 'DeliveryMode=queueonly', ...args] });
    daemons.set(key, daemon);
  }
  return daemon;
}

after(async () => {
  for (const d of daemons.values()) await (await d).stop();
});

for (const file of files) {
  test(`dialogue ${file.replace(/\.dlg$/, '')}`, async () => {
    const dialogue = parseDialogue(fs.readFileSync(path.join(dir, file), 'latin1'));
    const daemon = await daemonFor(dialogue);
    await playDialogue(dialogue, daemon.addr, daemon.port);
  });
}
