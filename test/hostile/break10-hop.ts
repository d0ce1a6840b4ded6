// A scriptable next hop for the break10 tests: an SMTP or LMTP server on
// loopback whose replies a test chooses per command, so that it can send
// replies out of order, with wrong codes, or close at a chosen point. It
// records every message whose data it received in full.

import * as net from 'node:net';
import assert from 'node:assert/strict';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';

export interface HopMessage {
  /** RCPT TO addresses of the transaction, without angle brackets. */
  recipients: string[];
  /** The message data after 354, without the final dot line. */
  data: string;
}

export interface HopSession {
  socket: net.Socket;
  /** Number of this connection, from 1. */
  number: number;
  recipients: string[];
  write(text: string): void;
  /** Takes the lines that follow as message data, up to the final dot. */
  startData(): void;
}

export interface HopScript {
  /** The greeting line(s) with CRLF; default "220 hop.test ESMTP". */
  greeting?: string;
  /** The whole EHLO (or LHLO) reply with CRLF. */
  ehlo?: string;
  /**
   * Handles a command before the default does. Returns true when it wrote
   * the reply itself (or chose to write none).
   */
  command?: (verb: string, line: string, session: HopSession) => boolean;
  /** Writes the reply (or replies, for LMTP) after the final dot; default "250 2.0.0 queued". */
  dot?: (session: HopSession, message: HopMessage) => void;
  /** Listening address and port; default 127.0.0.1 and a free port. */
  host?: string;
  port?: number;
}

export interface Hop {
  port: number;
  messages: HopMessage[];
  connections: number;
  close(): Promise<void>;
}

const DEFAULT_EHLO = '250-hop.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100000000\r\n';

function defaultReply(verb: string, session: HopSession, startData: () => void): void {
  if (verb === 'EHLO' || verb === 'LHLO' || verb === 'HELO') return;
  if (verb === 'DATA') {
    session.write('354 go ahead\r\n');
    startData();
    return;
  }
  if (verb === 'QUIT') {
    session.socket.end('221 2.0.0 bye\r\n');
    return;
  }
  session.write('250 2.0.0 ok\r\n');
}

/** Starts a next hop on 127.0.0.1 with a free port. */
export function startHop(script: HopScript): Promise<Hop> {
  const messages: HopMessage[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    connections += 1;
    let buffered = '';
    let inData = false;
    let data = '';
    const startData = (): void => {
      inData = true;
      data = '';
    };
    const session: HopSession = {
      socket,
      number: connections,
      recipients: [],
      write: (text) => {
        if (!socket.destroyed && socket.writable) socket.write(text, 'latin1');
      },
      startData,
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      for (;;) {
        const end = buffered.indexOf('\r\n');
        if (end < 0) return;
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (inData) {
          if (line !== '.') {
            data += line + '\r\n';
            continue;
          }
          inData = false;
          const message = { recipients: [...session.recipients], data };
          messages.push(message);
          session.recipients = [];
          if (script.dot) script.dot(session, message);
          else session.write('250 2.0.0 queued\r\n');
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'RCPT') session.recipients.push(line.replace(/^RCPT TO:<([^>]*)>.*$/i, '$1'));
        if (verb === 'RSET' || verb === 'MAIL') session.recipients = [];
        if (verb === 'EHLO' || verb === 'LHLO') session.write(script.ehlo ?? DEFAULT_EHLO);
        if (verb === 'HELO') session.write('250 hop.test\r\n');
        if (script.command?.(verb, line, session)) continue;
        defaultReply(verb, session, startData);
      }
    });
    session.write(script.greeting ?? '220 hop.test ESMTP\r\n');
  });
  return new Promise((resolve) => {
    server.listen(script.port ?? 0, script.host ?? '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        messages,
        get connections() {
          return connections;
        },
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/**
 * Starts a hop with `script` and a posthorn daemon that sends it mail: through
 * SMART_HOST, or as its local LMTP server with `lmtp`. `extra` adds .mc lines,
 * e.g. shorter timeouts. Both are stopped after the test.
 */
export async function daemonWithHop(
  t: { after(fn: () => Promise<void>): void },
  script: HopScript,
  opts: { lmtp?: boolean; extra?: string[] } = {},
): Promise<{ hop: Hop; ph: Posthorn }> {
  const hop = await startHop(script);
  const route = opts.lmtp
    ? [`FEATURE(\`local_lmtp', \`[IPC]', \`TCP 127.0.0.1 ${hop.port}')`]
    : ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${hop.port}')`];
  const ph = await startPosthorn({ mc: baseMc({ extra: [...route, ...(opts.extra ?? [])] }) });
  t.after(async () => {
    await ph.stop();
    await hop.close();
  });
  return { hop, ph };
}

/**
 * Sends one message from a local sender to `recipients` over SMTP and checks
 * that it was accepted. The sender is local, so that a bounce never looks up
 * a remote domain through the machine's own resolver.
 */
export async function submitTo(ph: Posthorn, recipients: string[], subject: string): Promise<void> {
  const replies = await rawSmtp(ph.port, [
    'EHLO client.posthorn.test',
    'MAIL FROM:<snd@posthorn.test>',
    ...recipients.map((r) => `RCPT TO:<${r}>`),
    'DATA',
    `Subject: ${subject}\r\n\r\nBody line.\r\n.`,
    'QUIT',
  ]);
  assert.match(replies[replies.length - 2] ?? '', /^250 /, `submission replies: ${replies.join(' | ')}`);
}
