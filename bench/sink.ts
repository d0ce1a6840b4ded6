// A minimal SMTP sink for benchmarks: accepts everything, counts messages and
// bytes, and keeps nothing. It answers pipelined commands in order.

import * as net from 'node:net';

export interface BenchSink {
  port: number;
  messages: number;
  bytes: number;
  close(): Promise<void>;
}

export function startBenchSink(host = '127.0.0.1'): Promise<BenchSink> {
  const sink: BenchSink = { port: 0, messages: 0, bytes: 0, close: async () => undefined };
  const sockets = new Set<net.Socket>();

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.write('220 sink ESMTP\r\n');

    let inData = false;
    // Command lines are short and kept as text. In data mode the body is not
    // converted or copied: only the last bytes of each chunk are kept, so that
    // a terminator split across chunks is found. `tail` starts as CRLF because
    // the DATA line itself ended with one.
    let text = '';
    let tail = Buffer.alloc(0);
    const END = Buffer.from('\r\n.\r\n');
    socket.on('data', (chunk: Buffer) => {
      let out = '';
      let input: Buffer | undefined = chunk;
      for (;;) {
        if (inData) {
          if (input === undefined) {
            input = Buffer.from(text, 'latin1');
            text = '';
          }
          const end = findEnd(tail, input, END);
          if (end === undefined) {
            sink.bytes += input.length;
            tail = Buffer.concat([tail, input.subarray(-4)]).subarray(-4);
            break;
          }
          // `end` is the index in `input` just after the terminator.
          sink.bytes += Math.max(0, end - 5);
          sink.messages++;
          out += '250 2.0.0 queued\r\n';
          text = input.subarray(end).toString('latin1');
          input = undefined;
          inData = false;
          continue;
        }
        if (input !== undefined) {
          text += input.toString('latin1');
          input = undefined;
        }
        const eol = text.indexOf('\r\n');
        if (eol < 0) break;
        const line = text.slice(0, eol).toUpperCase();
        text = text.slice(eol + 2);
        if (line.startsWith('EHLO')) out += '250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE\r\n';
        else if (line.startsWith('DATA')) {
          out += '354 go ahead\r\n';
          inData = true;
          tail = Buffer.from('\r\n');
        } else if (line.startsWith('QUIT')) {
          out += '221 bye\r\n';
          socket.end(out);
          return;
        } else out += '250 2.0.0 ok\r\n';
      }
      if (out) socket.write(out);
    });
  });

  return new Promise((resolve) => {
    server.listen(0, host, () => {
      sink.port = (server.address() as net.AddressInfo).port;
      sink.close = () =>
        new Promise((done) => {
          for (const s of sockets) s.destroy();
          server.close(() => done());
        });
      resolve(sink);
    });
  });
}

/**
 * Finds `end` in `tail` (the last bytes seen, fewer than end.length) followed
 * by `input`. Returns the index in `input` just after it, or undefined.
 */
function findEnd(tail: Buffer, input: Buffer, end: Buffer): number | undefined {
  if (tail.length > 0) {
    const joint = Buffer.concat([tail, input.subarray(0, end.length - 1)]);
    const at = joint.indexOf(end);
    if (at >= 0) return at + end.length - tail.length;
  }
  const at = input.indexOf(end);
  return at < 0 ? undefined : at + end.length;
}
