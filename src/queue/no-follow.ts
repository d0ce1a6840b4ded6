// Reads of queue files that never follow a symbolic link. Someone who can
// write to the queue folder could otherwise plant qfX or dfX as a link to any
// file the MTA may read, and mailq or a delivery would show or send it. With
// O_NOFOLLOW such a file fails with ELOOP, like an unreadable one.

import * as fs from 'node:fs';

/** open() flags for reading a queue file. */
export const READ_NO_FOLLOW = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW;

/** Reads a whole queue file with synchronous calls. */
export function readNoFollowSync(file: string): Buffer {
  const fd = fs.openSync(file, READ_NO_FOLLOW);
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a queue file as text with synchronous calls. */
export function readTextNoFollowSync(file: string): string {
  return readNoFollowSync(file).toString('utf8');
}

/** Reads a queue file as text. */
export async function readTextNoFollow(file: string): Promise<string> {
  const handle = await fs.promises.open(file, READ_NO_FOLLOW);
  try {
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/** Opens a queue file (a df) as a stream of chunks; the stream closes the file when it ends. */
export async function openReadStreamNoFollow(file: string, highWaterMark = 64 * 1024): Promise<fs.ReadStream> {
  const handle = await fs.promises.open(file, READ_NO_FOLLOW);
  return handle.createReadStream({ highWaterMark });
}
