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
    // In data mode `text` starts with the last bytes already seen, so that a
    // terminator split across chunks is found; it starts as CRLF because the
    // DATA line itself ended with one.
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      let out = '';
      for (;;) {
        if (inData) {
          const end = text.indexOf('\r\n.\r\n');
          if (end < 0) {
            sink.bytes += Math.max(0, text.length - 4);
            text = text.slice(-4);
            break;
          }
          sink.bytes += end;
          sink.messages++;
          out += '250 2.0.0 queued\r\n';
          text = text.slice(end + 5);
          inData = false;
          continue;
        }
        const eol = text.indexOf('\r\n');
        if (eol < 0) break;
        const line = text.slice(0, eol).toUpperCase();
        text = text.slice(eol + 2);
        if (line.startsWith('EHLO')) out += '250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE\r\n';
        else if (line.startsWith('DATA')) {
          out += '354 go ahead\r\n';
          inData = true;
          text = '\r\n' + text;
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
