// The text of a filter's SMFIR_REPLYCODE ('y') reply, checked as sendmail's
// milter.c does before it is shown to the SMTP client.

import type { Reply } from '../smtp/reply';

const LINE = /^([45]\d\d)([ -])(?:(\d\.\d{1,3}\.\d{1,3}) )?(.*)$/s;

/**
 * Parses "550 5.7.1 text" or a multi-line "550-5.7.1 a\r\n550 5.7.1 b".
 * Returns undefined when the text is not a 4xx/5xx reply, when the lines
 * disagree on the code, when a line contains a control character (a bare CR
 * or LF included), or when it has a single "%". sendmail rejects a
 * single "%" because it would pass the text to a printf-style formatter.
 * The caller then uses the stage's default reply.
 */
export function parseReplyCode(text: string): Reply | undefined {
  if (/%(?!%)/.test(text.replace(/%%/g, ''))) return undefined;
  const rawLines = text.replace(/\r\n$/, '').split('\r\n');
  const lines: string[] = [];
  let code: string | undefined;
  let enhanced: string | undefined;

  for (let i = 0; i < rawLines.length; i++) {
    // A bare CR or LF would end the reply early and start another on the client's side.
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(rawLines[i])) return undefined;
    const match = LINE.exec(rawLines[i]);
    if (match === null) return undefined;
    if (code !== undefined && match[1] !== code) return undefined;
    const last = i === rawLines.length - 1;
    if ((match[2] === ' ') !== last) return undefined;
    code = match[1];
    enhanced ??= match[3];
    lines.push(match[4].replace(/%%/g, '%'));
  }
  if (code === undefined) return undefined;
  if (enhanced !== undefined && enhanced[0] !== code[0]) return undefined;

  const r: Reply = { code: Number(code), enhanced, lines };
  if (code === '421') r.close = true;
  return r;
}
