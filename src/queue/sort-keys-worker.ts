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
// The arrays cover the whole queue; this worker fills the positions from `offset` on.
const keys = new SortKeys(job.ids, { buffers: job.buffers });
const buf = Buffer.allocUnsafe(4096);
for (let j = 0; j < job.ids.length; j++) {
  readQueueHeadSync(path.join(job.dir, job.prefix + job.ids[j]), buf, keys, job.offset + j);
}
parentPort?.postMessage(true);
