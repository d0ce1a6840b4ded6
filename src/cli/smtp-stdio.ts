// -bs: one SMTP session on standard input and output. A local user's session
// is trusted like localhost, so it may relay. Standard input can also be a TCP
// socket (inetd, a systemd socket unit, tcpserver). The session then belongs
// to the client at the other end, as sendmail takes it from getpeername().
// It goes through the daemon's connect phase (access map, conncontrol,
// greet_pause), its address decides relaying, and it appears in $_ and the logs.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import type { Config, DaemonSpec } from '../config/types';
import { Logger, openSink } from '../log/logger';
import { createServices, serverContext } from '../daemon/services';
import { Session } from '../server/session';
import { startSessionWithMilters } from '../milter/connect';
import { socketTransport, streamTransport } from '../server/transport';
import { clientText, createConnectPolicy, resolveClient } from '../server/connect';
import { applySrvFeatures } from '../server/srv-features';
import { isLocalhostClient } from '../policy/relay';
import type { SessionTransport } from '../server/context';
import type { TranscriptFile } from '../log/transcript';
import { EX_OK } from './sysexits';

/** The daemon that -bs stands for: its name is ${daemon_name}. */
const STDIN_DAEMON: DaemonSpec = { name: 'stdin', addr: '', port: 0, family: 'inet', modifiers: '', listen: 0 };

export async function runSmtpOnStdio(config: Config, deliver: (ids: string[]) => void, transcript?: TranscriptFile): Promise<number> {
  const logger = new Logger([openSink(config.logFile)], config.logLevel);
  const services = await createServices(config, logger, { recover: false });
  const accepted: string[] = [];
  const ctx = { ...serverContext(services), onAccepted: (id: string) => accepted.push(id) };

  const stdin = socketOnStdin();
  const socket = stdin !== undefined && isTcp(stdin) ? stdin : undefined;
  if (socket !== undefined && socket.remoteAddress === undefined) {
    // A TCP peer that is already gone (reset): no reply can reach it, and no address can be checked.
    socket.destroy();
    return EX_OK;
  }
  // Writes to a reader that went away (EPIPE) end the session instead of the process.
  process.stdout.on('error', () => undefined);
  const plain: SessionTransport = socket ? socketTransport(socket) : streamTransport(stdin ?? process.stdin, process.stdout);
  // -X: the session is recorded as the daemon records its sessions.
  const transport = transcript ? transcript.wrap(plain) : plain;
  const closed = new Promise<void>((resolve) => {
    const close = transport.close;
    transport.close = () => {
      close();
      resolve();
    };
    // A client that goes away during the connect phase closes no session.
    socket?.once('close', () => resolve());
  });
  if (socket) {
    // The connect phase of a daemon session: check_relay with the access map
    // (Connect: entries, RELAY), conncontrol, ratecontrol, dnsbl and greet_pause.
    const address = transport.remoteAddress;
    const client = await resolveClient(address, services.resolver, config.nameServers.length > 0);
    const session = new Session(ctx, transport, { daemonName: STDIN_DAEMON.name, relayAllowed: isLocalhostClient(address), clientText: clientText(address, client) });
    if (await createConnectPolicy(ctx, logger).prepare(session, socket, STDIN_DAEMON, client)) {
      applySrvFeatures(session);
      await startSessionWithMilters(session);
    }
  } else {
    const session = new Session(ctx, transport, { daemonName: STDIN_DAEMON.name, relayAllowed: true, clientText: `${userName()}@localhost` });
    await startSessionWithMilters(session);
  }
  await closed;

  // DeliveryMode=interactive delivered each message before its 250 (see deliverNow).
  if (config.deliveryMode === 'background') deliver(accepted);
  if (!socket) await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  return EX_OK;
}

/**
 * Returns standard input as a socket when it is one (TCP, a unix socket or a
 * socket pair, which is what a parent process usually gives), else undefined.
 */
function socketOnStdin(): net.Socket | undefined {
  try {
    if (!fs.fstatSync(0).isSocket()) return undefined;
  } catch {
    return undefined;
  }
  return new net.Socket({ fd: 0, readable: true, writable: true, allowHalfOpen: true });
}

/**
 * Tests whether a socket is TCP from its own address family. getsockname()
 * still returns it after the peer reset the connection, and in another
 * network namespace. A unix socket has no family.
 */
function isTcp(socket: net.Socket): boolean {
  const local = socket.address() as Partial<net.AddressInfo>;
  return typeof local === 'object' && (local.family === 'IPv4' || local.family === 'IPv6');
}

function userName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'root';
  }
}
