// Reads of alias files, :include: lists and .forward files. Each is opened
// without waiting and must be a regular file. A FIFO put in place of one (by
// its owner, or swapped in after the safety checks) would otherwise make the
// read wait for ever; in the daemon, every session would wait with it. The
// size is bounded too, so that a huge list cannot take the process's memory.

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
    if (st.size > MAX_LIST_FILE_BYTES) {
      throw Object.assign(new Error(`File too large (${st.size} bytes, at most ${MAX_LIST_FILE_BYTES})`), { code: 'EFBIG' });
    }
    return fs.readFileSync(fd).toString('latin1');
  } finally {
    fs.closeSync(fd);
  }
}
