// Drives an SMTP server that talks on its standard input and output (sendmail
// -bs): writes one command at a time and waits for its final reply line.

import { spawn } from 'node:child_process';

/**
 * Runs `file args`, waits for the greeting, then sends each command and reads
 * its reply. Returns the greeting and every reply, each with its lines joined
 * by "\n" and without CR. Rejects after 30 s without the next reply.
 */
export function stdioSmtp(file: string, args: string[], commands: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const replies: string[] = [];
    let lines: string[] = [];
    let buffered = '';
    let next = 0;
    let stderr = '';

    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no reply after ${replies.length} replies; stderr: ${stderr}`));
    }, 30_000);

    const onLine = (line: string): void => {
      lines.push(line);
      if (!/^\d{3} /.test(line)) return;
      replies.push(lines.join('\n'));
      lines = [];
      if (next < commands.length) child.stdin.write(commands[next++] + '\r\n');
      else child.stdin.end();
    };

    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\n')) >= 0) {
        onLine(buffered.slice(0, end).replace(/\r$/, ''));
        buffered = buffered.slice(end + 1);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      resolve(replies);
    });
  });
}
