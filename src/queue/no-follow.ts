// Reads of queue files that never follow a symbolic link and never wait.
// Someone who can write to the queue folder could otherwise plant qfX or dfX
// as a link to any file the MTA may read, and mailq or a delivery would show
// or send it; with O_NOFOLLOW such a file fails with ELOOP, like an
// unreadable one. A FIFO or device planted there would make open() or read()
// wait for ever, in the daemon on its main thread: O_NONBLOCK makes open()
// return at once, and whatever is not a regular file fails with ENOTREG.

import * as fs from 'node:fs';

/** open() flags for reading a queue file. */
export const READ_NO_FOLLOW = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/** Returns the error for a queue file that is not a regular file (a FIFO, a device, a folder). */
export function notRegularFile(file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${file}: not a regular file`), { code: 'ENOTREG' });
}

/** Opens a queue file for reading with synchronous calls; fails unless it is a regular file. */
export function openRegularSync(file: string): number {
  const fd = fs.openSync(file, READ_NO_FOLLOW);
  if (!fs.fstatSync(fd).isFile()) {
    fs.closeSync(fd);
    throw notRegularFile(file);
  }
  return fd;
}

/** Opens a queue file for reading; fails unless it is a regular file. */
export async function openRegular(file: string): Promise<fs.promises.FileHandle> {
  const handle = await fs.promises.open(file, READ_NO_FOLLOW);
  if (!(await handle.stat()).isFile()) {
    await handle.close();
    throw notRegularFile(file);
  }
  return handle;
}

/** Reads a whole queue file with synchronous calls. */
export function readNoFollowSync(file: string): Buffer {
  const fd = openRegularSync(file);
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The largest control (or lock) file read as text. A control file contains the
 * envelope and the header: a few KB, a few MB with a hundred thousand
 * recipients, 20 MB with a 20 MB header field when MaxHeadersLength is off.
 * A larger one was planted or damaged, and reading it whole could take the
 * process's memory (a JavaScript string holds at most about 512 MiB).
 */
export const MAX_TEXT_FILE_BYTES = 64 * 1024 * 1024;

/** Returns the error for a queue file read as text that is larger than MAX_TEXT_FILE_BYTES. */
function tooLarge(file: string, size: number): NodeJS.ErrnoException {
  return Object.assign(new Error(`${file}: too large (${size} bytes, more than ${MAX_TEXT_FILE_BYTES})`), { code: 'EFBIG' });
}

/** Reads a queue file whole with synchronous calls; fails with EFBIG above MAX_TEXT_FILE_BYTES. */
export function readBytesNoFollowSync(file: string): Buffer {
  const fd = openRegularSync(file);
  try {
    const size = fs.fstatSync(fd).size;
    if (size > MAX_TEXT_FILE_BYTES) throw tooLarge(file, size);
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a queue file whole; fails with EFBIG above MAX_TEXT_FILE_BYTES. */
export async function readBytesNoFollow(file: string): Promise<Buffer> {
  const handle = await openRegular(file);
  try {
    const size = (await handle.stat()).size;
    if (size > MAX_TEXT_FILE_BYTES) throw tooLarge(file, size);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** Reads a queue file as UTF-8 text; fails with EFBIG above MAX_TEXT_FILE_BYTES. */
export async function readTextNoFollow(file: string): Promise<string> {
  return (await readBytesNoFollow(file)).toString('utf8');
}

/** Opens a queue file (a df) as a stream of chunks; the stream closes the file when it ends. */
export async function openReadStreamNoFollow(file: string, highWaterMark = 64 * 1024): Promise<fs.ReadStream> {
  const handle = await openRegular(file);
  return handle.createReadStream({ highWaterMark });
}
