// The server side of STARTTLS: one secure context built from the options,
// re-built when its files change, and the in-place upgrade of an accepted
// socket. A context that cannot be built turns STARTTLS off (no 250-STARTTLS,
// 454 to the verb) until the files are fixed; the daemon keeps running.

import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Config } from '../config/types';
import type { Logger } from '../log/logger';
import { filesStamp, requestsClientCertificate, secureContextOptions, tlsOption, tlsServerOptions, watchedFiles } from './files';
import { tlsInfoOf, type TlsInfo } from './peer';

export type ServerTlsState = 'off' | 'ready' | 'broken';

export interface ServerHandshakeOptions {
  /**
   * A tls.Server that never listens: it runs the handshake of a handed-over
   * socket and, unlike a bare TLSSocket, records the client certificate's
   * verification result in `authorized` and `authorizationError`.
   */
  server: tls.Server;
  requestCert: boolean;
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
  /** The handshake servers by whether they ask for a client certificate, made from `serverOptions` on first use. */
  private servers = new Map<boolean, tls.Server>();
  private serverOptions?: tls.TlsOptions;
  private stamp = '';
  private problem?: string;
  private readonly files: string[];

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
  ) {
    this.files = watchedFiles(config, 'server');
    // The context is built by prepare() once the daemon listens, or at the
    // first EHLO: creating it (reading the key, OpenSSL's first set-up) is
    // the largest single cost of start-up that TLS adds.
  }

  /** Builds the context now and logs unusable files. The daemon calls it once it listens. */
  prepare(): void {
    this.refresh();
  }

  /** True when the configuration names a server certificate, or TLSSrvOptions C requests TLS without one. */
  get configured(): boolean {
    return tlsOption(this.config, 'ServerCertFile') !== undefined || tlsOption(this.config, 'ServerKeyFile') !== undefined ||
      tlsServerOptions(this.config).has('C');
  }

  /** Re-reads the files if any of them changed and returns the resulting state. */
  state(): ServerTlsState {
    if (!this.configured) return 'off';
    this.refresh();
    return this.serverOptions ? 'ready' : 'broken';
  }

  /**
   * Options for one handshake, or undefined when TLS is off or broken.
   * `requestCert` overrides TLSSrvOptions for this session (Srv_Features: V or v).
   */
  handshakeOptions(requestCert = requestsClientCertificate(this.config)): ServerHandshakeOptions | undefined {
    if (this.state() !== 'ready' || !this.serverOptions) return undefined;
    let server = this.servers.get(requestCert);
    if (!server) {
      server = tls.createServer({ ...this.serverOptions, requestCert });
      this.servers.set(requestCert, server);
    }
    return { server, requestCert };
  }

  /** Re-builds the context when the files' stamp changed; logs why a build failed, once per change. */
  private refresh(): void {
    if (!this.configured) return;
    // NOTE: a stat() of every file at each EHLO and STARTTLS: a few per cent of the CPU of a STARTTLS session.
    const stamp = filesStamp(this.files);
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    this.servers = new Map();
    try {
      const timeoutMs = this.config.timeouts.get('starttls') ?? 3600_000;
      const options: tls.TlsOptions = {
        ...secureContextOptions(this.config, 'server', (message) => this.logger.warn(message, 1)),
        rejectUnauthorized: false,
        // Timeout.starttls bounds the handshake; 0 means no limit.
        handshakeTimeout: timeoutMs > 0 ? timeoutMs : 0x7fffffff,
      };
      // Builds the context once here, so that unusable files are found before STARTTLS is offered.
      tls.createSecureContext(options);
      this.serverOptions = options;
      if (this.problem !== undefined) this.logger.notice('STARTTLS=server: certificate and key usable again, STARTTLS offered');
      this.problem = undefined;
    } catch (err) {
      this.serverOptions = undefined;
      this.problem = (err as Error).message;
      this.logger.warn(`STARTTLS=server: TLS unavailable, STARTTLS not offered until the files change: ${this.problem}`, 1);
    }
  }
}

interface PendingHandshake {
  resolve(secure: tls.TLSSocket): void;
  reject(err: NodeJS.ErrnoException): void;
}

const pendingByServer = new WeakMap<tls.Server, Map<net.Socket, PendingHandshake>>();

/**
 * Returns the pending handshakes of a shared server by socket. On first use it
 * adds the listeners that route each outcome to the handshake of its socket.
 */
function pendingHandshakes(server: tls.Server): Map<net.Socket, PendingHandshake> {
  let pending = pendingByServer.get(server);
  if (pending) return pending;
  const map = new Map<net.Socket, PendingHandshake>();
  // NOTE: `_parent` (the wrapped socket) is not a documented TLSSocket field;
  // Node 18 to 22 set it for sockets a tls.Server wraps.
  const parentOf = (secure: tls.TLSSocket): net.Socket => (secure as unknown as { _parent: net.Socket })._parent;
  server.on('secureConnection', (secure: tls.TLSSocket) => map.get(parentOf(secure))?.resolve(secure));
  server.on('tlsClientError', (err: NodeJS.ErrnoException, secure: tls.TLSSocket) => map.get(parentOf(secure))?.reject(err));
  pendingByServer.set(server, map);
  return map;
}

/**
 * Runs the server handshake over an accepted socket and resolves with the
 * secure socket and what it negotiated. The caller must already have stopped
 * reading from `socket`. Rejects with a HandshakeError on failure or timeout.
 */
export function acceptTls(socket: net.Socket, opts: ServerHandshakeOptions): Promise<{ socket: tls.TLSSocket; info: TlsInfo }> {
  const pending = pendingHandshakes(opts.server);
  return new Promise((resolve, reject) => {
    const settle = (): void => {
      pending.delete(socket);
      socket.removeListener('close', onClose);
    };
    const fail = (err: HandshakeError): void => {
      settle();
      socket.destroy();
      reject(err);
    };
    const onClose = (): void => fail(new HandshakeError('connection closed during the handshake', false, 0));
    pending.set(socket, {
      resolve: (secure) => {
        settle();
        resolve({ socket: secure, info: tlsInfoOf(secure, opts.requestCert) });
      },
      reject: (err) => {
        const timedOut = err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' || /timeout/i.test(err.message);
        fail(new HandshakeError(err.message, timedOut, typeof err.errno === 'number' ? err.errno : 0));
      },
    });
    socket.once('close', onClose);
    opts.server.emit('connection', socket);
  });
}
