// The end-of-message phase with one filter: headers (L), end of headers (N),
// body chunks (B) read back from the data file, end of body (E), then the
// modification replies and the final decision.

import * as fs from 'node:fs';
import { MAX_DATA_SIZE, nulFields, splitNulFields, type Packet } from './codec';
import { MilterError } from './connection';
import type { Filter } from './filter';
import { isHeaderName, type MessageEditor } from './message-editor';
import { Action, decisionOf, Protocol, type Decision } from './protocol';
import { openRegular } from '../queue/no-follow';

/**
 * Runs headers, body and end of message through one filter and applies its
 * modifications to `editor`. Protocol failures throw MilterError.
 */
export async function runEndOfMessage(
  filter: Filter,
  editor: MessageEditor,
  macros: Map<string, string>,
  log: (text: string) => void,
): Promise<Decision> {
  const early = await sendHeaders(filter, editor, macros);
  if (early !== undefined) return early;

  const bodyDecision = await sendBody(filter, editor.dataPath);
  if (bodyDecision !== undefined) return bodyDecision;

  await filter.sendMacros('eom', macros);
  await filter.sendPacket('E');
  return readEndOfMessageReplies(filter, editor, log);
}

/** Sends L for every header filters see, then N; returns a decision that ends the message early. */
async function sendHeaders(filter: Filter, editor: MessageEditor, macros: Map<string, string>): Promise<Decision | undefined> {
  if (!filter.wants(Protocol.NOHDRS)) {
    const keepSpace = filter.wants(Protocol.HDR_LEADSPC);
    for (const [name, rawValue] of editor.userHeaders()) {
      // sendmail keeps folds as LF in memory and sends them that way.
      let value = rawValue.replace(/\r\n/g, '\n');
      if (!keepSpace && value.startsWith(' ')) value = value.slice(1);
      await filter.sendPacket('L', nulFields(name, value));
      if (filter.wants(Protocol.NR_HDR)) continue;
      const decision = await readDecision(filter, 'L');
      if (decision.kind !== 'continue') return decision;
    }
  }
  if (!filter.wants(Protocol.NOEOH)) {
    await filter.sendMacros('eoh', macros);
    await filter.sendPacket('N');
    if (!filter.wants(Protocol.NR_EOH)) {
      const decision = await readDecision(filter, 'N');
      if (decision.kind !== 'continue') return decision;
    }
  }
  return undefined;
}

/** Sends the data file in chunks of at most 65535 bytes; 's' (skip) ends the body early. */
async function sendBody(filter: Filter, dataPath: string): Promise<Decision | undefined> {
  if (filter.wants(Protocol.NOBODY)) return undefined;
  const handle = await openRegular(dataPath);
  try {
    const buffer = Buffer.alloc(MAX_DATA_SIZE);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, MAX_DATA_SIZE, null);
      if (bytesRead === 0) return undefined;
      await filter.sendPacket('B', Buffer.from(buffer.subarray(0, bytesRead)));
      if (filter.wants(Protocol.NR_BODY)) continue;
      const decision = await readDecision(filter, 'B', filter.wants(Protocol.SKIP));
      if (decision.kind === 'skip') return undefined;
      if (decision.kind !== 'continue') return decision;
    }
  } finally {
    await handle.close();
  }
}

async function readDecision(filter: Filter, letter: string, skipAllowed = false): Promise<Decision> {
  for (;;) {
    const packet = await filter.readPacket(filter.def.timeouts.read);
    if (packet.command === 'p') continue;
    const decision = decisionOf(packet.command, packet.data);
    if (decision === undefined || (decision.kind === 'skip' && !skipAllowed)) {
      throw new MilterError(`invalid response '${packet.command}' to command '${letter}'`);
    }
    return decision;
  }
}

/**
 * Reads modification replies until the final decision. The E= timeout runs
 * from the end of the body; a progress reply ('p') restarts it.
 */
async function readEndOfMessageReplies(
  filter: Filter,
  editor: MessageEditor,
  log: (text: string) => void,
): Promise<Decision> {
  const limit = filter.def.timeouts.eom;
  let deadline = Date.now() + limit;
  for (;;) {
    const remaining = limit > 0 ? Math.max(1, deadline - Date.now()) : 0;
    const packet = await filter.readPacket(remaining);
    if (packet.command === 'p') {
      deadline = Date.now() + limit;
      continue;
    }
    const decision = decisionOf(packet.command, packet.data);
    if (decision !== undefined) {
      if (decision.kind === 'skip') throw new MilterError("invalid response 's' to command 'E'");
      return decision;
    }
    applyModification(filter, editor, packet, log);
  }
}

const REQUIRED_ACTION: Record<string, number> = {
  h: Action.ADDHDRS,
  i: Action.ADDHDRS,
  m: Action.CHGHDRS,
  '+': Action.ADDRCPT,
  '2': Action.ADDRCPT_PAR,
  '-': Action.DELRCPT,
  b: Action.CHGBODY,
  e: Action.CHGFROM,
  q: Action.QUARANTINE,
};

/**
 * Applies one modification reply. As in sendmail, a change the filter did not
 * ask for in the negotiation is applied with a warning, except a body change,
 * which fails the filter.
 */
function applyModification(filter: Filter, editor: MessageEditor, packet: Packet, log: (text: string) => void): void {
  const required = REQUIRED_ACTION[packet.command];
  if (required === undefined) {
    throw new MilterError(`invalid response '${packet.command}' to command 'E'`);
  }
  if ((filter.actions & required) === 0) {
    if (packet.command === 'b') throw new MilterError('body replacement not negotiated');
    log(`Milter (${filter.name}): ${packet.command} modification not negotiated, applied anyway`);
  }

  const fields = splitNulFields(packet.command === 'i' || packet.command === 'm' ? packet.data.subarray(4) : packet.data);
  const headerValue = (value: string): string => (filter.wants(Protocol.HDR_LEADSPC) ? value : ` ${value}`);
  if ('him'.includes(packet.command) && fields.length >= 2 && !isHeaderName(fields[0])) {
    // As sendmail does with a malformed header change: the change is logged and left out.
    log(`Milter (${filter.name}): invalid header name "${fields[0].replace(/[^\x20-\x7e]/g, '?').slice(0, 80)}" in '${packet.command}' reply, ignored`);
    return;
  }
  switch (packet.command) {
    case 'h':
      requireFields(fields, 2, packet.command);
      editor.addHeader(fields[0], headerValue(fields[1]));
      return;
    case 'i':
      requireIndex(packet);
      requireFields(fields, 2, packet.command);
      editor.insertHeader(packet.data.readUInt32BE(0), fields[0], headerValue(fields[1]));
      return;
    case 'm':
      requireIndex(packet);
      requireFields(fields, 2, packet.command);
      editor.changeHeader(packet.data.readUInt32BE(0), fields[0], fields[1] === '' ? '' : headerValue(fields[1]));
      return;
    case '+':
      requireFields(fields, 1, packet.command);
      editor.addRecipient(fields[0]);
      return;
    case '2':
      requireFields(fields, 1, packet.command);
      editor.addRecipient(fields[0], (fields[1] ?? '').split(' ').filter((arg) => arg !== ''));
      return;
    case '-':
      requireFields(fields, 1, packet.command);
      editor.deleteRecipient(fields[0]);
      return;
    case 'e':
      requireFields(fields, 1, packet.command);
      try {
        editor.changeSender(fields[0], (fields[1] ?? '').split(' ').filter((arg) => arg !== ''));
      } catch (err) {
        throw new MilterError((err as Error).message);
      }
      return;
    case 'q':
      requireFields(fields, 1, packet.command);
      editor.quarantine(fields[0]);
      log(`milter=${filter.name}, quarantine=${fields[0]}`);
      return;
    case 'b':
      editor.appendBody(packet.data);
      return;
  }
}

function requireFields(fields: string[], count: number, letter: string): void {
  if (fields.length < count) throw new MilterError(`malformed '${letter}' reply: ${fields.length} of ${count} fields`);
}

function requireIndex(packet: Packet): void {
  if (packet.data.length < 4) throw new MilterError(`malformed '${packet.command}' reply: no index`);
}
