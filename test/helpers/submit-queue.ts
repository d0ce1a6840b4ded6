// A queue folder and configuration without a daemon for command-line
// submissions (-t, recipients as arguments): run() submits and returns the
// items it queued, then empties the folder for the next run.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { posthornBin } from './posthorn';
import { runCommand, type CommandResult } from './process';

/** One queued item, read back from its qf and df. */
export interface QueuedItem {
  sender: string;
  recipients: string[];
  subject: string;
  data: string;
}

export interface SubmitQueue {
  run(args: string[], input: string): Promise<CommandResult & { queued: QueuedItem[] }>;
}

const dirs: string[] = [];
let cleanupSet = false;

/** Creates the folder and its configuration; both are removed when the test process exits. */
export function submitQueue(): SubmitQueue {
  if (!cleanupSet) {
    cleanupSet = true;
    // At exit, not in a test hook: the folders of every test of the file go.
    process.once('exit', () => {
      for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
    });
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-cli-queue-'));
  dirs.push(dir);
  const queueDir = path.join(dir, 'mqueue');
  fs.mkdirSync(queueDir, { mode: 0o700 });
  const mcPath = path.join(dir, 'sendmail.mc');
  const lines = [
    `define(\`QUEUE_DIR', \`${queueDir}')`,
    `define(\`confLOG_FILE', \`${path.join(dir, 'maillog')}')`,
    "define(`confDOMAIN_NAME', `mx.posthorn.test')",
    "LOCAL_DOMAIN(`posthorn.test')",
    "MAILER(`local')",
    "MAILER(`smtp')",
  ];
  fs.writeFileSync(mcPath, lines.join('\n') + '\n');
  return {
    async run(args, input) {
      const result = await runCommand(process.execPath, [posthornBin, '-C', mcPath, ...args], { input, timeoutMs: 30_000 });
      const queued: QueuedItem[] = [];
      for (const name of fs.readdirSync(queueDir).filter((n) => n.startsWith('qf'))) {
        const qf = fs.readFileSync(path.join(queueDir, name), 'latin1');
        queued.push({
          sender: /^S(.*)$/m.exec(qf)?.[1] ?? '',
          recipients: [...qf.matchAll(/^R[^:\n]*:<(.*)>$/gm)].map((m) => m[1]).sort(),
          subject: /^H\?\?Subject: (.*)$/m.exec(qf)?.[1] ?? '',
          data: fs.readFileSync(path.join(queueDir, `df${name.slice(2)}`), 'latin1'),
        });
      }
      for (const name of fs.readdirSync(queueDir)) fs.rmSync(path.join(queueDir, name), { force: true });
      return { ...result, queued };
    },
  };
}
