// The server side of STARTTLS: one secure context built from the options,
// re-built when its files change, and the in-place upgrade of an accepted
// socket. A context that cannot be built turns STARTTLS off (no 250-STARTTLS,
// 454 to the verb) until the files are fixed; the daemon keeps running.

import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Config } from '../config/types';
import type { Logger } from '../log/logger';
import { filesStamp, requestsClientCertificate, secureContextOptions, tlsOption, watchedFiles } from './files';
import { tlsInfoOf, type TlsInfo } from './peer';

export type ServerTlsState = 'off' | 'ready' | 'broken';

export interface ServerHandshakeOptions {
  context: tls.SecureContext;
  requestCert: boolean;
  /** Timeout.starttls in milliseconds; 0 means no limit. */
  timeoutMs: number;
}

/** A failed server handshake, with the fields of sendmail's log line. */
export class HandshakeError extends Error {
  override readonly name = 'HandshakeError';

  constructor(
    message: string,
    readonly timedOut: boolean,
    readonly errno: number,
  ) {
    super(message);
  }
}

export class ServerTls {
  private context?: tls.SecureContext;
  private stamp = '';
  private problem?: string;
  private readonly files: string[];

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
  ) {
    this.files = watchedFiles(config, 'server');
    this.refresh();
  }

  /** Whether the configuration names a server certificate at all. */
  get configured(): boolean {
    return tlsOption(this.config, 'ServerCertFile') !== undefined || tlsOption(this.config, 'ServerKeyFile') !== undefined;
  }

  /** The state after re-reading the files if any of them changed. */
  state(): ServerTlsState {
    if (!this.configured) return 'off';
    this.refresh();
    return this.context ? 'ready' : 'broken';
  }

  /** Options for one handshake, or undefined when TLS is off or broken. */
  handshakeOptions(): ServerHandshakeOptions | undefined {
    if (this.state() !== 'ready' || !this.context) return undefined;
    return {
      context: this.context,
      requestCert: requestsClientCertificate(this.config),
      timeoutMs: this.config.timeouts.get('starttls') ?? 3600_000,
    };
  }

  /** Re-builds the context when the files' stamp changed; logs why a build failed, once per change. */
  private refresh(): void {
    if (!this.configured) return;
    const stamp = filesStamp(this.files);
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    try {
      this.context = tls.createSecureContext(secureContextOptions(this.config, 'server'));
      if (this.problem !== undefined) this.logger.notice('STARTTLS=server: certificate and key usable again, STARTTLS offered');
      this.problem = undefined;
    } catch (err) {
      this.context = undefined;
      this.problem = (err as Error).message;
      this.logger.warn(`STARTTLS=server: TLS unavailable, STARTTLS not offered until the files change: ${this.problem}`, 1);
    }
  }
}

/**
 * Runs the server handshake over an accepted socket and resolves with the
 * secure socket and what it negotiated. The caller must already have stopped
 * reading from `socket`. Rejects with a HandshakeError on failure or timeout.
 */
export function acceptTls(socket: net.Socket, opts: ServerHandshakeOptions): Promise<{ socket: tls.TLSSocket; info: TlsInfo }> {
  // A tls.Server that never listens runs the handshake of the handed-over
  // socket; unlike a bare TLSSocket it also records the client certificate's
  // verification result in `authorized` and `authorizationError`.
  const server = tls.createServer({
    secureContext: opts.context,
    requestCert: opts.requestCert,
    rejectUnauthorized: false,
    handshakeTimeout: opts.timeoutMs > 0 ? opts.timeoutMs : 0x7fffffff,
  });
  return new Promise((resolve, reject) => {
    let done = false;
    const onClose = (): void => fail(new HandshakeError('connection closed during the handshake', false, 0));
    const fail = (err: HandshakeError): void => {
      if (done) return;
      done = true;
      socket.removeListener('close', onClose);
      socket.destroy();
      reject(err);
    };
    server.once('secureConnection', (secure: tls.TLSSocket) => {
      if (done) return;
      done = true;
      socket.removeListener('close', onClose);
      resolve({ socket: secure, info: tlsInfoOf(secure, opts.requestCert) });
    });
    server.once('tlsClientError', (err: NodeJS.ErrnoException) => {
      const timedOut = /timeout/i.test(err.message) || err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT';
      fail(new HandshakeError(err.message, timedOut, typeof err.errno === 'number' ? err.errno : 0));
    });
    socket.once('close', onClose);
    server.emit('connection', socket);
  });
}
