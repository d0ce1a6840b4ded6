// Crash-safety torture: many SMTP clients send messages while the daemon is
// killed with SIGKILL and restarted again and again. Afterwards every message
// that got "250 ... Message accepted" must have reached the next hop (a sink)
// at least once, byte for byte, and the queue must hold no item or stray file.
// Used by test/hostile/torture.test.ts (short) and scripts/torture.js (long).

import { isJournalName } from '../../src/queue/journal';
import { journalOpenIds } from '../helpers/journal';
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import { startDnsServer } from '../helpers/dns-server';
import { startSink, type SinkMessage } from '../helpers/sink';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { freePortOn, sleep } from '../helpers/process';
import { mxZone } from '../helpers/e2e-setup';

export interface TortureOptions {
  messages: number;
  kills: number;
  /** Concurrent client connections. */
  clients?: number;
  /** Random source for sizes and kill moments; the default is Math.random. */
  random?: () => number;
  log?: (line: string) => void;
}

export interface TortureResult {
  attempted: number;
  accepted: number;
  kills: number;
  delivered: number;
  duplicates: number;
  /** Accepted messages that never reached the sink. */
  lost: string[];
  /** Sink messages whose body does not match the checksum in their header. */
  corrupted: string[];
  /** Control and temporary files left in the queue folder after the final queue run. */
  leftInQueue: string[];
  /**
   * Data files without a control file and temporary control files (tf), from
   * sessions and commits cut off by a kill. They are no queue item; queue
   * recovery removes a tf after a minute and a lone df after an hour.
   */
  leftoverFiles: number;
  /** Log lines about damaged or set-aside queue items. */
  damagedLog: string[];
  seconds: number;
}

/** Reads SMTP replies from one socket; each wait is bounded. */
class ReplyReader {
  private buffer = '';
  private closed = false;
  private wake?: () => void;

  constructor(socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffer += d.toString('latin1');
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  /** Returns the last line of the next complete reply, or undefined on close or timeout. */
  async next(timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(\d{3}) [^\r\n]*\r\n/m.exec(this.buffer);
      if (m) {
        const line = m[0].slice(0, -2);
        this.buffer = this.buffer.slice(m.index + m[0].length);
        return line;
      }
      const left = deadline - Date.now();
      if (this.closed || left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

function makeBody(tag: string, random: () => number): string {
  const lines: string[] = [`torture message ${tag}`];
  const count = 1 + Math.floor(random() * 60);
  for (let i = 0; i < count; i++) {
    // Some lines start with a dot, so dot-stuffing is exercised through the crashes.
    const prefix = random() < 0.1 ? '.' : '';
    lines.push(prefix + crypto.randomBytes(1 + Math.floor(random() * 50)).toString('base64'));
  }
  return lines.join('\r\n') + '\r\n';
}

function sha(text: string): string {
  return crypto.createHash('sha256').update(text, 'latin1').digest('hex');
}

/** Sends one message; returns the queue id from a 250 reply to the final dot, or undefined. */
async function sendOne(port: number, tag: string, body: string): Promise<string | undefined> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const reader = new ReplyReader(socket);
  try {
    const greeting = await reader.next(10_000);
    if (!greeting?.startsWith('220')) return undefined;
    const steps: Array<[string, string]> = [
      ['EHLO torture.example\r\n', '250'],
      ['MAIL FROM:<torture@posthorn.test>\r\n', '250'],
      ['RCPT TO:<sink@remote.example>\r\n', '250'],
      ['DATA\r\n', '354'],
    ];
    for (const [command, want] of steps) {
      socket.write(command);
      const r = await reader.next(10_000);
      if (!r?.startsWith(want)) return undefined;
    }
    const stuffed = body.replace(/^\./gm, '..');
    socket.write(`Subject: torture ${tag}\r\nX-Torture-Id: ${tag}\r\nX-Torture-Sum: ${sha(body)}\r\n\r\n${stuffed}.\r\n`);
    const final = await reader.next(20_000);
    const m = final && /^250 2\.0\.0 (\w+) Message accepted/.exec(final);
    socket.end('QUIT\r\n');
    return m ? m[1] : undefined;
  } catch {
    return undefined;
  } finally {
    setTimeout(() => socket.destroy(), 1000).unref();
  }
}

function checkSinkMessage(m: SinkMessage): { tag?: string; ok: boolean } {
  const text = m.data.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  const head = text.slice(0, split);
  const body = text.slice(split + 4);
  const tag = /^X-Torture-Id: (\S+)\r?$/m.exec(head)?.[1];
  const sum = /^X-Torture-Sum: (\S+)\r?$/m.exec(head)?.[1];
  return { tag, ok: split >= 0 && tag !== undefined && sum === sha(body) };
}

/** After the final queue run a df or tf can only be a leftover of a kill (see leftoverFiles). */
function isLeftover(name: string): boolean {
  return name.startsWith('df') || name.startsWith('tf');
}

export async function runTorture(opts: TortureOptions): Promise<TortureResult> {
  const random = opts.random ?? Math.random;
  const log = opts.log ?? (() => undefined);
  const clients = opts.clients ?? 8;
  const started = Date.now();

  const mailerPort = await freePortOn(['127.0.0.2']);
  const sink = await startSink({ host: '127.0.0.2', port: mailerPort });
  const dns = await startDnsServer({ zones: mxZone('remote.example', [[10, 'mx1.remote.example', '127.0.0.2']]) });
  // -q1s: every start runs the whole queue, so items left by a kill go out after the restart.
  const ph = await startPosthorn({
    mc: baseMc({ dnsPort: dns.port, mailerPort }),
    args: ['-q1s', '-O', 'RefuseLA=0', '-O', 'QueueLA=0'],
  });

  const accepted = new Map<string, string>();
  let attempted = 0;
  let next = 0;
  let kills = 0;
  let restarting: Promise<void> | undefined;

  const killAt = Array.from({ length: opts.kills }, (_, i) =>
    Math.floor(((i + 1) * opts.messages) / (opts.kills + 1) + (random() - 0.5) * (opts.messages / (opts.kills + 1)) * 0.5),
  ).sort((a, b) => a - b);

  const worker = async (): Promise<void> => {
    while (next < opts.messages) {
      const index = next++;
      if (restarting) await restarting;
      if (kills < killAt.length && index >= killAt[kills]) {
        kills++;
        // The kill lands while other clients are in the middle of their sessions.
        const delay = Math.floor(random() * 30);
        restarting = (async () => {
          await sleep(delay);
          await ph.kill('SIGKILL');
          log(`kill ${kills} after ${index} messages started`);
          await ph.restart();
          restarting = undefined;
        })();
      }
      const tag = `m${index}-${crypto.randomBytes(4).toString('hex')}`;
      const body = makeBody(tag, random);
      attempted++;
      const id = await sendOne(ph.port, tag, body);
      if (id) accepted.set(tag, id);
    }
  };

  try {
    await Promise.all(Array.from({ length: clients }, worker));
    if (restarting) await restarting;

    // Drain the queue: the daemon's own runs plus explicit ones, bounded.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const delivered = new Set(sink.messages.map((m) => checkSinkMessage(m).tag));
      const missing = [...accepted.keys()].filter((t) => !delivered.has(t));
      const queued = [...ph.queueFiles().filter((f) => !isLeftover(f) && !isJournalName(f)), ...journalOpenIds(ph.queueDir)];
      if ((missing.length === 0 && queued.length === 0) || Date.now() > deadline) break;
      log(`draining: ${missing.length} not delivered, queue holds ${queued.join(' ')}`);
      await ph.run(['-q']);
      await sleep(500);
    }

    const seen = new Map<string, number>();
    const corrupted: string[] = [];
    for (const m of sink.messages) {
      const check = checkSinkMessage(m);
      if (!check.ok) corrupted.push(check.tag ?? m.data.toString('latin1').slice(0, 80));
      if (check.tag) seen.set(check.tag, (seen.get(check.tag) ?? 0) + 1);
    }
    const damagedLog = ph.logs().split('\n').filter((l) => /damaged|unparseable|renamed to Qf|cannot read/.test(l));
    return {
      attempted,
      accepted: accepted.size,
      kills,
      delivered: seen.size,
      duplicates: [...seen.values()].reduce((a, n) => a + n - 1, 0),
      lost: [...accepted.entries()].filter(([tag]) => !seen.has(tag)).map(([tag, id]) => `${tag} (${id})`),
      corrupted,
      // The running daemon's journal file stays; an open entry in any journal is an item left.
      leftInQueue: [...ph.queueFiles().filter((f) => !isLeftover(f) && !isJournalName(f)), ...journalOpenIds(ph.queueDir).map((id) => `journal entry ${id}`)],
      leftoverFiles: ph.queueFiles().filter(isLeftover).length,
      damagedLog,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await ph.stop();
    await sink.close();
    await dns.close();
  }
}
