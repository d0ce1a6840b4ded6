// The worker thread of collectSortKeys(): fills the slots of its share of a
// deep queue's items in the shared arrays of the SortKeys (from the cache or
// the head of each control file), then posts how many heads it read.
// Positions are `offset` plus the index in `ids`.

import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { checkOrReadHead, SortKeys, type SortKeyBuffers } from './sort-keys';

interface Job {
  dir: string;
  prefix: string;
  ids: string[];
  offset: number;
  /** Keep each read file's stat for the sort key cache. */
  withStat: boolean;
  buffers: SortKeyBuffers;
}

const job = workerData as Job;
// The arrays cover the whole queue; this worker fills the positions from `offset` on.
const keys = new SortKeys(job.ids, { buffers: job.buffers });
const buf = Buffer.allocUnsafe(4096);
let read = 0;
for (let j = 0; j < job.ids.length; j++) {
  if (checkOrReadHead(path.join(job.dir, job.prefix + job.ids[j]), buf, keys, job.offset + j, job.withStat)) read++;
}
parentPort?.postMessage(read);
