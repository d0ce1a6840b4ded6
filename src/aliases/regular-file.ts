// Reads of alias files, :include: lists and .forward files. Each is opened
// without waiting and must be a regular file. Otherwise a FIFO put in place
// of one, by its owner or after the safety checks, would make the read wait
// for ever, and in the daemon every session would wait with it. The size is
// bounded too, so that a huge list cannot take the process's memory.

import * as fs from 'node:fs';

/** The largest alias file, :include: or .forward file that is read. */
export const MAX_LIST_FILE_BYTES = 64 * 1024 * 1024;

/** Reads a list file as latin1 text; fails with ENOTREG or EFBIG when it is not a regular file or too large. */
export function readListFileSync(file: string): string {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) {
      throw Object.assign(new Error('Not a regular file'), { code: 'ENOTREG' });
    }
    if (st.size > MAX_LIST_FILE_BYTES) throw tooLarge();
    // A file in /proc or /sys has size 0 whatever it contains, so the read
    // itself stops one byte past the limit.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      // The first read requests one byte more than the size, to reach the end at once.
      const length = total === 0 && st.size > 0 ? st.size + 1 : 1 << 16;
      const chunk = Buffer.allocUnsafe(Math.min(length, MAX_LIST_FILE_BYTES + 1 - total));
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > MAX_LIST_FILE_BYTES) throw tooLarge();
    }
    return Buffer.concat(chunks, total).toString('latin1');
  } finally {
    fs.closeSync(fd);
  }
}

function tooLarge(): NodeJS.ErrnoException {
  return Object.assign(new Error(`File too large (more than ${MAX_LIST_FILE_BYTES} bytes)`), { code: 'EFBIG' });
}
