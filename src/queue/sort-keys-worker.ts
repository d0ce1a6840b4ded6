// The worker thread of collectSortKeys(): reads the heads of its share of a
// deep queue's control files into the shared arrays of the SortKeys, then
// posts true. Positions are `offset` plus the index in `ids`.

import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { readQueueHeadSync, SortKeys, type SortKeyBuffers } from './sort-keys';

interface Job {
  dir: string;
  prefix: string;
  ids: string[];
  offset: number;
  buffers: SortKeyBuffers;
}

const job = workerData as Job;
// Only the positions from `offset` on are this worker's; the ids before them stay empty.
const ids: string[] = new Array<string>(job.offset).fill('').concat(job.ids);
const keys = new SortKeys(ids, { buffers: job.buffers });
const buf = Buffer.allocUnsafe(4096);
for (let i = job.offset; i < ids.length; i++) readQueueHeadSync(path.join(job.dir, job.prefix + ids[i]), buf, keys, i);
parentPort?.postMessage(true);
