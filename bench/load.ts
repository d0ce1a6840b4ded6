// The benchmark's load generator: SMTP clients that send one fixed message
// many times, over a new connection per message or over reused connections,
// and a holder that opens many sessions, says EHLO and then stays idle.

import * as net from 'node:net';

export interface LoadSettings {
  port: number;
  host?: string;
  clients: number;
  /** Messages each client sends. */
  messagesPerClient: number;
  /** Approximate body size in bytes. */
  size: number;
  /** One connection per message instead of one per client. */
  newConnections: boolean;
  /** Bound on the whole run; clients still busy then are counted as failed. */
  timeoutMs?: number;
}

export interface LoadResult {
  accepted: number;
  rejected: number;
  /** Milliseconds from the first connect to the last 250 after DATA. */
  elapsedMs: number;
}

/** Builds a message of about `size` bytes: headers, lines of text, final dot. */
export function benchMessage(size: number): Buffer {
  const line = 'The quick brown fox jumps over the lazy dog. 0123456789 abcdefghij\r\n';
  const head = 'From: bench@example.org\r\nTo: sink@remote.example\r\nSubject: bench\r\n\r\n';
  const count = Math.max(1, Math.ceil((size - head.length) / line.length));
  return Buffer.from(head + line.repeat(count) + '.\r\n', 'latin1');
}

const ENVELOPE = Buffer.from('MAIL FROM:<bench@example.org>\r\nRCPT TO:<sink@remote.example>\r\nDATA\r\n');

/**
 * One SMTP session that sends `count` messages with PIPELINING of the
 * envelope. Resolves with the number of 250 replies after DATA.
 */
function session(port: number, host: string, count: number, message: Buffer): Promise<{ ok: number; bad: number }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.setNoDelay(true);
    let buffer = '';
    // Replies seen: 1 greeting, 1 EHLO, then 4 per message (MAIL RCPT DATA dot).
    let replies = 0;
    let sent = 0;
    let ok = 0;
    let bad = 0;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      resolve({ ok, bad: bad + (count - ok - bad) });
    };
    socket.on('error', () => {
      socket.destroy();
      finish();
    });
    socket.on('close', finish);
    const nextMessage = (): void => {
      if (sent === count) {
        socket.end('QUIT\r\n');
        return;
      }
      sent++;
      socket.write(ENVELOPE);
    };
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let eol: number;
      while ((eol = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        if (line[3] === '-') continue;
        replies++;
        if (replies === 1) {
          if (!line.startsWith('220')) {
            bad = count;
            socket.destroy();
            return;
          }
          socket.write('EHLO bench.example\r\n');
        } else if (replies === 2) {
          nextMessage();
        } else {
          const step = (replies - 3) % 4; // 0 MAIL, 1 RCPT, 2 DATA, 3 end of data
          if (step === 2) {
            if (line.startsWith('354')) socket.write(message);
            else {
              bad++;
              nextMessage();
              replies++; // no reply to the message will come
            }
          } else if (step === 3) {
            if (line.startsWith('250')) ok++;
            else bad++;
            nextMessage();
          }
        }
      }
    });
  });
}

/** Runs `clients` clients at once; each sends its messages one after another. */
export async function runLoad(s: LoadSettings): Promise<LoadResult> {
  const host = s.host ?? '127.0.0.1';
  const message = benchMessage(s.size);
  const started = process.hrtime.bigint();
  let last = started;
  const client = async (): Promise<{ ok: number; bad: number }> => {
    const total = { ok: 0, bad: 0 };
    const per = s.newConnections ? 1 : s.messagesPerClient;
    for (let sent = 0; sent < s.messagesPerClient; sent += per) {
      const r = await session(s.port, host, Math.min(per, s.messagesPerClient - sent), message);
      total.ok += r.ok;
      total.bad += r.bad;
      last = process.hrtime.bigint();
    }
    return total;
  };
  const all = Promise.all(Array.from({ length: s.clients }, client));
  const timeout = new Promise<undefined>((resolve) => {
    const t = setTimeout(() => resolve(undefined), s.timeoutMs ?? 120_000);
    void all.finally(() => clearTimeout(t));
  });
  const results = await Promise.race([all, timeout]);
  const accepted = results?.reduce((a, r) => a + r.ok, 0) ?? 0;
  const expected = s.clients * s.messagesPerClient;
  return { accepted, rejected: expected - accepted, elapsedMs: Number(last - started) / 1e6 };
}

/**
 * Opens `count` sessions, `batch` at a time, and waits for each EHLO reply.
 * Returns the open sockets (the caller ends them) and how many got that far.
 */
export async function holdIdleSessions(
  port: number,
  count: number,
  opts: { host?: string; batch?: number; timeoutMs?: number } = {},
): Promise<{ sockets: net.Socket[]; ready: number }> {
  const host = opts.host ?? '127.0.0.1';
  const sockets: net.Socket[] = [];
  let ready = 0;
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const open = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = net.connect(port, host);
      sockets.push(socket);
      let buffer = '';
      let greeted = false;
      const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      socket.on('error', done);
      socket.on('close', done);
      socket.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('latin1');
        let eol: number;
        while ((eol = buffer.indexOf('\r\n')) >= 0) {
          const line = buffer.slice(0, eol);
          buffer = buffer.slice(eol + 2);
          if (line[3] === '-') continue;
          if (!greeted) {
            greeted = true;
            socket.write('EHLO bench.example\r\n');
          } else if (line.startsWith('250')) {
            ready++;
            done();
          }
        }
      });
    });
  const batch = opts.batch ?? 100;
  for (let i = 0; i < count && Date.now() < deadline; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - i) }, open));
  }
  return { sockets, ready };
}
