// ETRN (RFC 1985) and VERB, with the replies and log lines of sendmail 8.17.
// ONEX is not here, because sendmail 8.17 dropped it and replies
// "500 5.5.1 Command unrecognized", as Posthorn does for any unknown verb.
//
// ETRN forms, as sendmail reads them:
//   ETRN host          runs the items with a recipient address containing "@host"
//   ETRN @domain       the same match without the "@", so subdomains match too
//   ETRN #queuegroup   runs a whole queue group; Posthorn's one queue is the
//                      group sendmail calls "mqueue"
// The run ignores retry times, like -qR, and the reply does not wait for it.
// sendmail forks a run for each ETRN; here runs go one at a time, and ETRNs
// that come during a run share the next one (see etrn-runs.ts).

import { reply } from '../smtp/reply';
import { echoableCommandLine } from '../smtp/command';
import type { QueueSelector } from '../cli/args';
import type { Session } from './session';
import { srvFeature } from './srv-features';
import { etrnRuns } from './etrn-runs';
import { slowDown } from './smtp-attack';
import { verbOffered } from './expn';

/** The name of sendmail's default queue group, the only one Posthorn has. */
const DEFAULT_QUEUE_GROUP = 'mqueue';

/**
 * Returns whether the session offers ETRN: a delivery runner exists, and
 * neither PrivacyOptions=noetrn nor the daemon's M=E modifier turned it off.
 * A Srv_Features: letter E or e overrides both, as in sendmail.
 */
export function etrnOffered(session: Session): boolean {
  if (session.ctx.runQueue === undefined) return false;

  const feature = srvFeature(session, 'e');
  if (feature !== undefined) return feature;

  const modifiers = session.options.daemonModifiers ?? '';
  // PrivacyOptions=goaway leaves ETRN on, as in sendmail 8.17 (see GOAWAY_WORDS).
  return !session.ctx.config.privacyOptions.has('noetrn') && !modifiers.includes('E');
}

/**
 * Returns the ETRN parameter as sendmail takes it from the command line:
 * blanks after the verb are skipped, trailing blanks are kept.
 */
function etrnParameter(line: string): string {
  return line.replace(/^\s*\S+\s*/, '');
}

/** sendmail refuses ETRN in -bs mode unless root runs it, so queue contents do not leak. */
function unprivilegedStdin(session: Session): boolean {
  // NOTE: sendmail also lets the TrustedUser run ETRN under -bs; Posthorn only lets root.
  return session.options.daemonName === 'stdin' && process.getuid?.() !== 0;
}

export async function handleEtrn(session: Session, _arg: string, line: string): Promise<void> {
  session.didWork = true;
  const client = session.macros.get('_') ?? '';

  if (!etrnOffered(session) || unprivilegedStdin(session)) {
    session.send(reply(502, '5.7.0', 'Sorry, we do not allow this operation'));
    session.log.info(`${client}: ${echoableCommandLine(line)} [rejected]`, 6);
    return;
  }

  const parameter = etrnParameter(line);
  if (parameter === '') {
    session.send(reply(500, '5.5.2', 'Parameter required'));
    return;
  }

  // sendmail counts an ETRN only here, after the checks above (smtp-attack.ts).
  if (!(await slowDown(session, 'etrn', 'ETRN'))) return;

  // NOTE: sendmail runs the check_etrn ruleset here; Posthorn does not.

  // The reply shows the parameter as the log does, so a parameter of 203 or
  // more bytes is shortened there too, where sendmail echoes it whole.
  const echoed = echoableCommandLine(parameter);
  session.log.info(`${client}: ETRN ${echoed}`, 6);

  if (parameter.startsWith('#')) {
    runQueueGroup(session, echoed);
    return;
  }

  const match = parameter.startsWith('@') ? parameter.slice(1) : `@${parameter}`;
  startQueueRun(session, echoed, [{ kind: 'R', negate: false, value: match }]);
  session.send(reply(250, '2.0.0', `Queuing for node ${echoed} started`));
}

/** ETRN #group: queue group names are compared without regard to case, as in sendmail. */
function runQueueGroup(session: Session, parameter: string): void {
  const group = parameter.slice(1);
  if (group.toLowerCase() !== DEFAULT_QUEUE_GROUP) {
    session.send(reply(459, '4.5.4', `Queue ${group} unknown`));
    return;
  }
  startQueueRun(session, parameter, []);
  session.send(reply(250, '2.0.0', `Queuing for queue group ${group} started`));
}

/**
 * Asks for a forced queue run over the items the selectors match, or over
 * all items without selectors. Runs go one at a time, and requests made
 * during a run share the next one (etrn-runs.ts). Its end is logged at
 * LogLevel 10 (a Posthorn line).
 */
function startQueueRun(session: Session, parameter: string, selectors: QueueSelector[]): void {
  etrnRuns(session.ctx).request(parameter, selectors);
}

/**
 * Handles VERB. sendmail offers it only with EXPN, because verbose delivery
 * shows what EXPN shows, and counts it with NOOP. After it, the session's
 * messages are delivered before the reply to DATA, as with
 * DeliveryMode=interactive, and the delivery shows as 050 lines.
 * NOTE: the 050 lines come when the attempt is over, where sendmail writes
 * each as it happens.
 */
export async function handleVerb(session: Session): Promise<void> {
  if (!verbOffered(session)) {
    session.send(reply(502, '5.7.0', 'Verbose unavailable'));
    return;
  }
  if (!(await slowDown(session, 'noop', 'VERB'))) return;
  session.verbose = true;
  session.send(reply(250, '2.0.0', 'Verbose mode'));
}
