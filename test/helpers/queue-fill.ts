// Builds a deep queue through the running daemon: many SMTP transactions over a
// few connections, each message accepted and committed by posthorn itself.

import { rawSmtp } from './clients';
import { makeMessage } from './e2e-setup';

export interface QueuedMessage {
  from: string;
  to: string[];
  subject: string;
  /** Body text; its length drives the priority (larger is later). */
  body: string;
  /** Extra header lines, e.g. ['Precedence: bulk']. */
  headers?: string[];
}

/** Sends every message to posthorn and returns the queue ids in the same order. */
export async function fillQueue(
  port: number,
  messages: QueuedMessage[],
  opts: { connections?: number; timeoutMs?: number } = {},
): Promise<string[]> {
  const connections = Math.max(1, Math.min(opts.connections ?? 4, messages.length));
  const ids: string[] = new Array(messages.length).fill('');
  const chunks: number[][] = Array.from({ length: connections }, () => []);
  messages.forEach((_, i) => chunks[i % connections].push(i));

  await Promise.all(
    chunks.map(async (indexes) => {
      const script = ['EHLO fill.posthorn.test'];
      const dotSteps: number[] = [];
      for (const i of indexes) {
        const m = messages[i];
        script.push(`MAIL FROM:<${m.from}>`, ...m.to.map((r) => `RCPT TO:<${r}>`), 'DATA');
        const data = makeMessage({ from: m.from, to: m.to.join(', '), subject: m.subject, body: m.body, headers: m.headers });
        script.push(data.replace(/^\./gm, '..') + '.\r\n');
        dotSteps.push(script.length);
      }
      script.push('QUIT');
      const replies = await rawSmtp(port, script, { timeoutMs: opts.timeoutMs ?? 120_000 });
      indexes.forEach((messageIndex, k) => {
        // replies[0] is the greeting, so the reply to script step n is replies[n].
        const reply = replies[dotSteps[k]] ?? '';
        const match = /^250 2\.0\.0 (\S+) Message accepted for delivery$/.exec(reply);
        if (!match) throw new Error(`message ${messageIndex} was not accepted: "${reply}"`);
        ids[messageIndex] = match[1];
      });
    }),
  );
  return ids;
}
