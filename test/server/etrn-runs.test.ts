// ETRN runs go one at a time: requests made during a run are merged into the
// next one, and too many hosts, or the whole queue, make it a whole-queue run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EtrnRuns } from '../../src/server/etrn-runs';
import type { ServerContext } from '../../src/server/context';
import type { QueueItem } from '../../src/queue/types';
import type { QueueSelector } from '../../src/cli/args';

/** Items by id, each with one recipient at the named host. */
const ITEMS = new Map<string, string>([
  ['id1', 'a.example'],
  ['id2', 'b.example'],
  ['id3', 'c.example'],
]);

interface Harness {
  runs: EtrnRuns;
  /** For each run so far, the ids its select() accepted. */
  selected: string[][];
  logs: string[];
  /** Lets the oldest run that is still going finish. */
  finishOne(): void;
  waitForRuns(n: number): Promise<void>;
}

function harness(): Harness {
  const selected: string[][] = [];
  const logs: string[] = [];
  const finishers: Array<() => void> = [];
  const ctx = {
    store: {
      read: async (id: string) =>
        ({ id, recipients: [{ address: `x@${ITEMS.get(id)}`, state: 'pending' }] }) as unknown as QueueItem,
    },
    logger: { info: (line: string) => logs.push(line), error: (line: string) => logs.push(line) },
    runQueue: async (select: (id: string) => Promise<boolean>) => {
      const ids: string[] = [];
      for (const id of ITEMS.keys()) if (await select(id)) ids.push(id);
      selected.push(ids);
      await new Promise<void>((resolve) => finishers.push(resolve));
      return ids.length;
    },
  } as unknown as ServerContext;
  return {
    runs: new EtrnRuns(ctx),
    selected,
    logs,
    finishOne: () => finishers.shift()?.(),
    waitForRuns: async (n) => {
      for (let i = 0; i < 200 && selected.length < n; i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(selected.length, n, `${n} run(s) started`);
    },
  };
}

const host = (name: string): QueueSelector[] => [{ kind: 'R', negate: false, value: `@${name}` }];

test('requests during a run share the next run', async () => {
  const h = harness();
  h.runs.request('a.example', host('a.example'));
  await h.waitForRuns(1);
  h.runs.request('b.example', host('b.example'));
  h.runs.request('c.example', host('c.example'));
  h.runs.request('b.example', host('b.example'));
  // Nothing new starts while the first run goes on.
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(h.selected.length, 1);
  h.finishOne();
  await h.waitForRuns(2);
  assert.deepEqual(h.selected, [['id1'], ['id2', 'id3']]);
  h.finishOne();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(h.selected.length, 2, 'no third run');
  assert.deepEqual(
    h.logs.map((l) => l.replace(/ ended.*/, '')),
    ['queue run for ETRN a.example', 'queue run for ETRN b.example', 'queue run for ETRN c.example'],
  );
});

test('the whole queue, or too many hosts, make one whole-queue run', async () => {
  const h = harness();
  h.runs.request('a.example', host('a.example'));
  await h.waitForRuns(1);
  for (let i = 0; i < 40; i++) h.runs.request(`host${i}.example`, host(`host${i}.example`));
  h.finishOne();
  await h.waitForRuns(2);
  assert.deepEqual(h.selected[1], ['id1', 'id2', 'id3'], 'past the limit, the whole queue');
  h.finishOne();

  h.runs.request('b.example', host('b.example'));
  await h.waitForRuns(3);
  h.runs.request('#mqueue', []);
  h.runs.request('c.example', host('c.example'));
  h.finishOne();
  await h.waitForRuns(4);
  assert.deepEqual(h.selected[3], ['id1', 'id2', 'id3']);
  h.finishOne();
});
