// Copies a queue file block by block through a conversion, for the line end
// conversions between Posthorn's and sendmail's data files.

import * as fs from 'node:fs';
import { openRegular } from './no-follow';
import { unlinkIfExists } from './lock';

const BLOCK_BYTES = 1024 * 1024;

/** A conversion with state: `block` takes each block in turn, and `end` returns what is left after the last one. */
export interface BlockConversion {
  block(data: Buffer): Buffer;
  end(): Buffer;
}

/**
 * Writes `convert` of `source` (a regular file, never through a symbolic link) to a new file `target` (a leftover of an
 * earlier attempt is replaced), fsyncs it, and returns its size.
 */
export async function copyConverted(source: string, target: string, convert: BlockConversion): Promise<number> {
  // A FIFO or device fails with ENOTREG, because it would otherwise read as an empty file.
  const input = await openRegular(source);
  try {
    await unlinkIfExists(target);
    const output = await fs.promises.open(target, 'wx', 0o600);
    try {
      const block = Buffer.allocUnsafe(BLOCK_BYTES);
      let size = 0;
      const write = async (out: Buffer): Promise<void> => {
        let written = 0;
        while (written < out.length) written += (await output.write(out, written, out.length - written)).bytesWritten;
        size += out.length;
      };
      for (;;) {
        const { bytesRead } = await input.read(block, 0, block.length, null);
        if (bytesRead === 0) break;
        await write(convert.block(block.subarray(0, bytesRead)));
      }
      await write(convert.end());
      await output.sync();
      return size;
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}
