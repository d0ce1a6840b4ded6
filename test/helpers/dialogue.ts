// Runs an SMTP dialogue written as a plain transcript against a live daemon.
//
// Transcript lines:
//   > TEXT        the client sends TEXT followed by CRLF
//   >> TEXT       the client sends TEXT as is; \r \n \t \0 \\ and \xHH escapes
//   >>*N TEXT     the client sends TEXT (escapes as for >>) N times in one write
//   < TEXT        the next reply line must equal TEXT exactly
//   <*N TEXT      the next N reply lines must each equal TEXT
//   <~ REGEX      the next reply line must match REGEX
//   <. PREFIX     skip reply lines until one starts with PREFIX
//   <closed       the server must close the connection
//   @pause MS     the client waits MS milliseconds before the next step
//   =df TEXT      the body file (df) of the message accepted last in this
//                 session must equal TEXT (escapes as for >>)
//   #             a comment; blank lines are ignored
// Header lines, before the first dialogue line:
//   @from ADDR    bind the client socket to ADDR (e.g. 127.0.0.9)
//   @option N=V   start the daemon with -O N=V
//   @mc LINE      add LINE to the daemon's .mc file
//   @todo REASON  a known bug: the transcript runs but is reported as a todo

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export interface DialogueStep {
  kind: 'send' | 'expect' | 'match' | 'skip' | 'closed' | 'df' | 'pause';
  text: string;
  line: number;
}

export interface Dialogue {
  from?: string;
  options: string[];
  mcLines: string[];
  steps: DialogueStep[];
  /** Why the transcript is expected to fail for now; a failure is then reported as todo. */
  todo?: string;
}

export function unescapeRaw(text: string): string {
  return text.replace(/\\(x[0-9A-Fa-f]{2}|[rnt0\\])/g, (_m, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    return { r: '\r', n: '\n', t: '\t', '0': '\0', '\\': '\\' }[e] as string;
  });
}

export function parseDialogue(source: string): Dialogue {
  const d: Dialogue = { options: [], mcLines: [], steps: [] };
  source.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    const n = index + 1;
    if (line.trim() === '' || line.startsWith('#')) return;

    if (line.startsWith('@from ')) d.from = line.slice(6).trim();
    else if (line.startsWith('@option ')) d.options.push(line.slice(8).trim());
    else if (line.startsWith('@mc ')) d.mcLines.push(line.slice(4));
    else if (line.startsWith('@todo ')) d.todo = line.slice(6).trim();
    else if (/^@pause \d+$/.test(line)) d.steps.push({ kind: 'pause', text: line.slice(7), line: n });
    else if (/^(>>|<)\*\d+ /.test(line)) {
      const [, kind, count, text] = line.match(/^(>>|<)\*(\d+) (.*)$/) as RegExpMatchArray;
      if (kind === '>>') d.steps.push({ kind: 'send', text: unescapeRaw(text).repeat(Number(count)), line: n });
      else for (let i = 0; i < Number(count); i++) d.steps.push({ kind: 'expect', text, line: n });
    }
    else if (line.startsWith('>> ')) d.steps.push({ kind: 'send', text: unescapeRaw(line.slice(3)), line: n });
    else if (line.startsWith('> ')) d.steps.push({ kind: 'send', text: line.slice(2) + '\r\n', line: n });
    else if (line === '>') d.steps.push({ kind: 'send', text: '\r\n', line: n });
    else if (line.startsWith('<~ ')) d.steps.push({ kind: 'match', text: line.slice(3), line: n });
    else if (line.startsWith('<. ')) d.steps.push({ kind: 'skip', text: line.slice(3), line: n });
    else if (line.startsWith('=df ')) d.steps.push({ kind: 'df', text: unescapeRaw(line.slice(4)), line: n });
    else if (line === '<closed') d.steps.push({ kind: 'closed', text: '', line: n });
    else if (line.startsWith('< ')) d.steps.push({ kind: 'expect', text: line.slice(2), line: n });
    else throw new Error(`transcript line ${n}: cannot parse "${line}"`);
  });
  return d;
}

/** Reads reply lines from a socket one at a time, with a bound on each wait. */
class ReplyReader {
  private buffer = '';
  private closed = false;
  private waiter?: () => void;

  constructor(socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('latin1');
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  /** Returns the next line without CRLF, or undefined when the server closed. */
  async nextLine(timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buffer.indexOf('\r\n');
      if (end >= 0) {
        const line = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        return line;
      }
      if (this.closed) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms (buffered: ${JSON.stringify(this.buffer)})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

/**
 * Plays a dialogue against host:port; throws with the transcript so far on a
 * mismatch. `queueDir` is needed by =df steps.
 */
export async function playDialogue(
  d: Dialogue,
  host: string,
  port: number,
  timeoutMs = 10_000,
  queueDir?: string,
): Promise<string> {
  const socket = net.connect({ host, port, localAddress: d.from });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const reader = new ReplyReader(socket);
  const log: string[] = [];
  let lastQueueId: string | undefined;

  const fail = (step: DialogueStep, why: string): never => {
    socket.destroy();
    throw new Error(`transcript line ${step.line}: ${why}\n--- conversation ---\n${log.join('\n')}`);
  };

  try {
    for (const step of d.steps) {
      if (step.kind === 'send') {
        log.push(`C: ${JSON.stringify(step.text)}`);
        socket.write(step.text, 'latin1');
        continue;
      }
      if (step.kind === 'pause') {
        await new Promise((resolve) => setTimeout(resolve, Number(step.text)));
        continue;
      }
      if (step.kind === 'df') {
        if (!lastQueueId || !queueDir) fail(step, 'no message was accepted before this =df step');
        const body = fs.readFileSync(path.join(queueDir as string, `df${lastQueueId}`), 'latin1');
        if (body !== step.text) fail(step, `df${lastQueueId} is ${JSON.stringify(body)}, expected ${JSON.stringify(step.text)}`);
        continue;
      }
      if (step.kind === 'closed') {
        const line = await reader.nextLine(timeoutMs);
        if (line !== undefined) fail(step, `expected the server to close, got "${line}"`);
        log.push('S: <closed>');
        continue;
      }

      let line = await reader.nextLine(timeoutMs);
      while (step.kind === 'skip' && line !== undefined && !line.startsWith(step.text)) {
        log.push(`S: ${line}`);
        line = await reader.nextLine(timeoutMs);
      }
      if (line === undefined) return fail(step, `expected "${step.text}", the server closed the connection`);
      log.push(`S: ${line}`);
      const accepted = /^250 2\.0\.0 (\w{14}) Message accepted/.exec(line);
      if (accepted) lastQueueId = accepted[1];

      if (step.kind === 'expect' && line !== step.text) fail(step, `expected "${step.text}", got "${line}"`);
      if (step.kind === 'match' && !new RegExp(step.text).test(line)) fail(step, `"${line}" does not match /${step.text}/`);
    }
  } finally {
    socket.destroy();
  }
  return log.join('\n');
}
