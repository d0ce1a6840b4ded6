// -bs: one SMTP session on standard input and output, as a local user. The
// client is trusted like localhost, so it may relay.

import type { Config } from '../config/types';
import { Logger, openSink } from '../log/logger';
import { createServices, serverContext } from '../daemon/services';
import { Session } from '../server/session';
import { startSessionWithMilters } from '../milter/connect';
import { streamTransport } from '../server/transport';
import { EX_OK } from './sysexits';
import * as os from 'node:os';

export async function runSmtpOnStdio(config: Config, deliver: (ids: string[]) => void): Promise<number> {
  const logger = new Logger([openSink(config.logFile)], config.logLevel);
  const services = await createServices(config, logger, { recover: false });
  const accepted: string[] = [];
  const ctx = { ...serverContext(services), onAccepted: (id: string) => accepted.push(id) };

  let user = 'root';
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry for this uid: keep the default name.
  }

  const transport = streamTransport(process.stdin, process.stdout);
  const closed = new Promise<void>((resolve) => {
    const close = transport.close;
    transport.close = () => {
      close();
      resolve();
    };
  });
  const session = new Session(ctx, transport, {
    daemonName: 'stdin',
    relayAllowed: true,
    clientText: `${user}@localhost`,
  });
  await startSessionWithMilters(session);
  await closed;

  // DeliveryMode=interactive delivered each message before its 250 (see deliverNow).
  if (config.deliveryMode === 'background') deliver(accepted);
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  return EX_OK;
}
