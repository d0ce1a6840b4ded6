// STARTTLS benchmark: clients connect, send EHLO, run STARTTLS and a full
// handshake (no session resumption: each connection starts without a saved
// session), send EHLO again and QUIT. Prints handshakes per second.
// `runStarttlsLoad` is also the 'starttls' workload of bench/compare.ts.
//
//   node dist/bench/tls.js [--clients 10] [--sessions 200] [--workers 2]

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { baseMc, startPosthorn } from '../test/helpers/posthorn';
import { makeTestCerts } from '../test/tls/certs';

function setting(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/**
 * Reads SMTP replies from a socket: `next()` resolves with the next whole
 * reply (lines joined by "\n"), or rejects when the socket closes first.
 */
class ReplyReader {
  private text = '';
  private replies: string[] = [];
  private waiting?: { resolve(r: string): void; reject(e: Error): void };
  private ended?: Error;
  private readonly onData = (chunk: Buffer): void => {
    this.text += chunk.toString('latin1');
    // A reply ends with a line whose fourth character is a space (or that has only the code).
    const m = /(^|\n)\d{3}(?: [^\n]*)?\r?\n/.exec(this.text);
    if (!m) return;
    const end = m.index + m[0].length;
    this.replies.push(this.text.slice(0, end).replace(/\r?\n$/, '').replace(/\r\n/g, '\n'));
    this.text = this.text.slice(end);
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.ended = new Error('connection closed');
    this.wake();
  };

  constructor(private socket: net.Socket) {
    this.attach(socket);
  }

  private attach(socket: net.Socket): void {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('close', this.onEnd);
    socket.on('error', this.onEnd);
  }

  /** Moves reading over to the secure socket after the handshake. */
  switchTo(socket: net.Socket): void {
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('close', this.onEnd);
    this.attach(socket);
  }

  /** Stops reading from the plain socket (before the handshake takes it over). */
  detach(): void {
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('close', this.onEnd);
  }

  private wake(): void {
    const w = this.waiting;
    if (!w) return;
    if (this.replies.length > 0) {
      this.waiting = undefined;
      w.resolve(this.replies.shift()!);
    } else if (this.ended) {
      this.waiting = undefined;
      w.reject(this.ended);
    }
  }

  next(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.wake();
    });
  }
}

/** Runs one session: greeting, EHLO, STARTTLS, full handshake, EHLO, QUIT. Throws on any failure. */
export async function starttlsSession(port: number, timeoutMs = 20_000): Promise<void> {
  const plain = net.connect(port, '127.0.0.1');
  // Each command goes out at once (no Nagle delay behind the TLS Finished message).
  plain.setNoDelay(true);
  let socket: net.Socket = plain;
  const timer = setTimeout(() => socket.destroy(new Error('session timed out')), timeoutMs);
  try {
    const r = new ReplyReader(plain);
    const command = (line: string): Promise<string> => {
      socket.write(line + '\r\n');
      return r.next();
    };
    const greeting = await r.next();
    if (!greeting.startsWith('220')) throw new Error(`greeting: ${greeting}`);
    const ehlo = await command('EHLO bench.posthorn.test');
    if (!/^250[ -]STARTTLS$/m.test(ehlo)) throw new Error(`STARTTLS not offered: ${ehlo}`);
    const ready = await command('STARTTLS');
    if (!ready.startsWith('220')) throw new Error(`STARTTLS failed: ${ready}`);
    r.detach();
    // No `session` option: every handshake is a full one.
    const secure = tls.connect({ socket: plain, rejectUnauthorized: false, servername: 'mx.posthorn.test' });
    socket = secure;
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    r.switchTo(secure);
    const again = await command('EHLO bench.posthorn.test');
    if (!again.startsWith('250')) throw new Error(`EHLO after STARTTLS: ${again}`);
    await command('QUIT');
  } finally {
    clearTimeout(timer);
    socket.destroy();
    plain.destroy();
  }
}

export interface StarttlsLoadResult {
  done: number;
  failed: number;
  seconds: number;
  perSecond: number;
  firstError?: string;
}

/**
 * Runs `sessions` STARTTLS sessions over `clients` concurrent clients, each
 * client one session after another. Stops starting sessions after `timeoutMs`.
 */
export async function runStarttlsLoad(opts: { port: number; clients: number; sessions: number; timeoutMs?: number }): Promise<StarttlsLoadResult> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let next = 0;
  let done = 0;
  let failed = 0;
  let firstError: string | undefined;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: opts.clients }, async () => {
      while (next < opts.sessions && Date.now() < deadline) {
        next++;
        try {
          await starttlsSession(opts.port);
          done++;
        } catch (err) {
          failed++;
          firstError ??= (err as Error).message;
        }
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { done, failed, seconds, perSecond: done / seconds, firstError };
}

async function main(): Promise<void> {
  const clients = setting('clients', 10);
  const sessions = setting('sessions', 200);
  const workers = setting('workers', 1);
  const certs = await makeTestCerts();
  const access = path.join(certs.dir, 'access');
  fs.writeFileSync(access, '');
  const ph = await startPosthorn({
    mc: baseMc({
      extra: [
        `define(\`confSERVER_CERT', \`${certs.server.cert}')`,
        `define(\`confSERVER_KEY', \`${certs.server.key}')`,
        `define(\`confCACERT', \`${certs.caCert}')`,
        "define(`confREFUSE_LA', `100000')",
        "define(`confLOG_LEVEL', `5')",
        `define(\`confWORKERS', \`${workers}')`,
      ],
    }),
  });
  try {
    const r = await runStarttlsLoad({ port: ph.port, clients, sessions });
    console.log(`STARTTLS handshakes: ${r.done} sessions (${r.failed} failed), ${clients} clients, ${workers} worker(s), ${r.seconds.toFixed(2)} s`);
    if (r.firstError) console.log(`first failure: ${r.firstError}`);
    console.log(`handshakes per second: ${r.perSecond.toFixed(1)}`);
  } finally {
    await ph.stop();
    certs.remove();
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
