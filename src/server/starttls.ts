// The STARTTLS verb on the server side (RFC 3207) with sendmail's replies:
// the in-place TLS upgrade, the reset of all session state, the TLS macros,
// the STARTTLS=server log line, tls_client after the handshake, and
// relaying by a verified client certificate (CertIssuer:, CertSubject:).

import { reply } from '../smtp/reply';
import type { Session } from './session';
import { HandshakeError, type ServerHandshakeOptions } from '../tls/server';
import { srvFeature } from './srv-features';
import { setTlsMacros, tlsLogFields } from '../tls/peer';
import { tlsAccessMap } from '../tls/access';
import { resetHeloCount } from './smtp-attack';
import { relayByCertificate, tlsClientRequirement, tlsConnection, tlsFactsFromMacros } from '../policy/tls-rulesets';

/** Daemon modifier that turns STARTTLS off for a listener (DAEMON_OPTIONS `M=S`). */
const NO_TLS_MODIFIER = 'S';

/** Daemon modifier for smtps: TLS from the first byte, before the greeting (DAEMON_OPTIONS `M=s`). */
const SMTPS_MODIFIER = 's';

/**
 * Whether the session may use STARTTLS at all: a TLS-capable transport, a
 * configured certificate, no M=S, and no `S` in Srv_Features:.
 */
function tlsPossible(session: Session): boolean {
  const modifiers = session.options.daemonModifiers ?? '';
  return session.ctx.tls !== undefined && session.transport.startTls !== undefined && !modifiers.includes(NO_TLS_MODIFIER) &&
    srvFeature(session, 's') !== false;
}

/** Whether this session's listener is an smtps port (`M=s`). */
export function isSmtpsSession(session: Session): boolean {
  return (session.options.daemonModifiers ?? '').includes(SMTPS_MODIFIER);
}

/** Whether to ask this client for a certificate: Srv_Features: V or v, else TLSSrvOptions. */
function requestCertFor(session: Session): boolean | undefined {
  return srvFeature(session, 'v');
}

/** Whether EHLO offers 250-STARTTLS: possible, usable right now, and not already active. */
export function starttlsOffered(session: Session): boolean {
  if (session.tls || !tlsPossible(session)) return false;
  return session.ctx.tls!.state() === 'ready';
}

export async function handleStarttls(session: Session, arg: string): Promise<void> {
  if (arg.trim() !== '') {
    session.send(reply(501, '5.5.2', 'Syntax error (no parameters allowed)'));
    return;
  }
  if (session.tls) {
    session.send(reply(454, '4.3.3', 'TLS not available after start'));
    return;
  }
  const serverTls = session.ctx.tls;
  // handshakeOptions() below checks the files, so only `configured` (state() 'off') is tested here.
  if (!tlsPossible(session) || !serverTls || !serverTls.configured) {
    session.send(reply(503, '5.5.0', 'TLS not available'));
    return;
  }
  const options = serverTls.handshakeOptions(requestCertFor(session));
  if (!options) {
    session.log.notice(`STARTTLS=server, relay=${session.macros.get('_')}, TLS unavailable: certificate or key not usable`, 6);
    session.send(reply(454, '4.7.0', 'TLS not available due to temporary reason'));
    return;
  }
  if (session.transaction) {
    session.send(reply(503, '5.5.0', 'TLS not permitted during a mail transaction'));
    return;
  }

  session.send(reply(220, '2.0.0', 'Ready to start TLS'));
  session.flush();
  const relay = session.macros.get('_') ?? '';
  const dropped = session.discardPendingInput();
  if (dropped > 0) {
    session.log.notice(`STARTTLS=server, relay=${relay}, discarded ${dropped} bytes sent after STARTTLS before the handshake`, 5);
  }
  await runHandshake(session, options);
}

/**
 * Runs the TLS handshake of an smtps session before its greeting. Returns
 * false when the connection was closed: TLS is not usable or the handshake
 * failed. greet_pause does not apply to such sessions.
 */
export async function startSmtps(session: Session): Promise<boolean> {
  const serverTls = session.ctx.tls;
  const options = session.transport.startTls ? serverTls?.handshakeOptions(requestCertFor(session)) : undefined;
  if (!options) {
    session.log.notice(`STARTTLS=server, relay=${session.macros.get('_') ?? ''}, smtps connection closed: TLS not available`, 6);
    session.close();
    return false;
  }
  return runHandshake(session, options);
}

/**
 * Runs the server handshake and, when it succeeds, resets the session and
 * sets the TLS macros, logs STARTTLS=server and runs tls_client. A failed
 * handshake closes the connection without a reply; returns false then.
 */
async function runHandshake(session: Session, options: ServerHandshakeOptions): Promise<boolean> {
  const relay = session.macros.get('_') ?? '';
  let info;
  try {
    info = await session.transport.startTls!(options);
  } catch (err) {
    const e = err instanceof HandshakeError ? err : new HandshakeError((err as Error).message, false, 0);
    session.log.notice(
      `STARTTLS=server, error: accept failed=-1, SSL_error=1, timedout=${e.timedOut ? 1 : 0}, errno=${e.errno}`,
      6,
    );
    session.log.notice(`STARTTLS=server, relay=${relay}: ${e.message}`, 6);
    // sendmail drops the connection without a reply after a failed handshake.
    await session.abortTransaction();
    session.close();
    return false;
  }

  resetAfterHandshake(session);
  session.tls = info;
  setTlsMacros(session.macros, info);
  session.log.info(`STARTTLS=server, ${tlsLogFields(relay, info)}`, 9);
  session.log.info(
    `STARTTLS=server, cert-subject=${info.certSubject}, cert-issuer=${info.certIssuer}, verifymsg=${info.verifyMessage}`,
    12,
  );
  applyClientPolicy(session);
  return true;
}

/** Forgets everything the client said before the handshake (RFC 3207 section 4.2). */
function resetAfterHandshake(session: Session): void {
  void session.abortTransaction();
  resetHeloCount(session);
  session.heloName = undefined;
  session.esmtp = false;
  session.state = 'greeted';
  for (const name of ['s', 'i', '{mail_addr}', '{rcpt_addr}']) session.macros.delete(name);
  session.macros.set('r', 'SMTP');
}

/**
 * Runs tls_client with `${verify} $| STARTTLS`: a TLS_Clt: requirement the
 * connection does not meet turns the session into a null server with that
 * reply. Then checks CertIssuer:/CertSubject: for relaying.
 */
function applyClientPolicy(session: Session): void {
  const access = tlsAccessMap(session.ctx.config, (message) => session.log.error(message));
  const clientName = session.macros.get('{client_name}') ?? '';
  const facts = tlsFactsFromMacros(session.macros, clientName);
  const hit = tlsClientRequirement(access, clientName, session.transport.remoteAddress);
  const failure = hit ? tlsConnection(facts, hit.value) : undefined;
  if (failure) {
    session.nullServerReply = failure;
    session.log.notice(
      `ruleset=tls_client, arg1=${facts.verify}, relay=${session.macros.get('_')}, reject=${failure.code} ${failure.enhanced} ${failure.lines[0]}`,
      4,
    );
    return;
  }
  if (relayByCertificate(access, facts)) session.relayAllowed = true;
}
