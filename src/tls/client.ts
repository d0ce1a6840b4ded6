// The client side of STARTTLS for deliveries: the secure context from
// ClientCertFile, ClientKeyFile, CACertFile, CACertPath and CRLFile, the
// handshake over an open SMTP connection, and the rulesets try_tls,
// tls_server and tls_rcpt fed by the access map.

import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Config } from '../config/types';
import type { Logger } from '../log/logger';
import type { Reply } from '../smtp/reply';
import type { AccessMap } from '../policy/access';
import { tlsRcpt, tlsServer, tryTls, lookupHost, type TlsFacts } from '../policy/tls-rulesets';
import { tlsAccessMap } from './access';
import { filesStamp, secureContextOptions, watchedFiles } from './files';
import { tlsInfoOf, type TlsInfo } from './peer';

export class ClientTls {
  private context?: tls.SecureContext;
  private stamp = '';
  private readonly files: string[];

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
  ) {
    this.files = watchedFiles(config, 'client');
  }

  /** Timeout.starttls: bound on the reply to STARTTLS and on the handshake. */
  get timeoutMs(): number {
    return this.config.timeouts.get('starttls') ?? 3600_000;
  }

  private get access(): AccessMap | undefined {
    return tlsAccessMap(this.config, (message) => this.logger.error(message));
  }

  /**
 * Returns the secure context, re-built when the files changed. Returns
 * undefined when they are unusable, so STARTTLS is not tried.
 */
  secureContext(): tls.SecureContext | undefined {
    const stamp = filesStamp(this.files);
    if (stamp !== this.stamp) {
      this.stamp = stamp;
      try {
        this.context = tls.createSecureContext(secureContextOptions(this.config, 'client'));
      } catch (err) {
        this.context = undefined;
        this.logger.warn(`STARTTLS=client: TLS unavailable, delivering without STARTTLS until the files change: ${(err as Error).message}`, 1);
      }
    }
    return this.context;
  }

  /** try_tls: returns whether to use STARTTLS with this server (false when its Try_TLS: entry is NO). */
  tryTls(serverName: string, serverAddr: string): boolean {
    return tryTls(this.access, serverName, serverAddr);
  }

  /** tls_server: the reply that stops delivery to this server, or undefined. */
  tlsServer(serverName: string, serverAddr: string, facts: TlsFacts): Reply | undefined {
    return tlsServer(this.access, serverName, serverAddr, facts);
  }

  /** Whether TLS_Srv: names a requirement for this server, so that it must not be used in clear text. */
  serverRequirement(serverName: string, serverAddr: string): string | undefined {
    return lookupHost(this.access, 'TLS_Srv', serverName, serverAddr)?.value;
  }

  /** tls_rcpt: the reply that keeps this recipient from being sent over this connection, or undefined. */
  tlsRcpt(recipient: string, facts: TlsFacts): Reply | undefined {
    return tlsRcpt(this.access, recipient, facts);
  }

  /** Runs the client handshake over an open connection whose STARTTLS got 220. */
  handshake(socket: net.Socket, context: tls.SecureContext, serverName: string): Promise<{ socket: tls.TLSSocket; info: TlsInfo }> {
    return new Promise((resolve, reject) => {
      const secure = tls.connect({
        socket,
        secureContext: context,
        servername: net.isIP(serverName) === 0 && serverName !== '' ? serverName : undefined,
        rejectUnauthorized: false,
        // ${verify} reports the chain check only; a name check is the CN extension of TLS_Srv:.
        checkServerIdentity: () => undefined,
      });
      const timer = setTimeout(() => {
        secure.destroy();
        reject(new Error('handshake timed out'));
      }, this.timeoutMs);
      secure.once('secureConnect', () => {
        clearTimeout(timer);
        secure.removeAllListeners('error');
        resolve({ socket: secure, info: tlsInfoOf(secure, true) });
      });
      secure.once('error', (err) => {
        clearTimeout(timer);
        secure.destroy();
        reject(err);
      });
      secure.once('close', () => {
        clearTimeout(timer);
        reject(new Error('connection closed during the handshake'));
      });
    });
  }
}

const clients = new WeakMap<Config, ClientTls>();

/** Returns the ClientTls of a configuration, creating it on first use. */
export function clientTlsFor(config: Config, logger: Logger): ClientTls {
  let client = clients.get(config);
  if (!client) {
    client = new ClientTls(config, logger);
    clients.set(config, client);
  }
  return client;
}
