// Temporary configuration files for the config tests.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Create a fresh directory under the system temp directory; `cleanup` removes it. */
export function makeTempDir(): { dir: string; write(name: string, text: string): string; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-config-'));
  return {
    dir,
    write(name, text) {
      const file = path.join(dir, name);
      fs.writeFileSync(file, text);
      return file;
    },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
