// One typed SMTP reply. The enhanced status code is kept apart from the text
// so that it is rendered in one place and cannot disagree with the basic code.

export interface Reply {
  /** Basic reply code, e.g. 250, 451, 550. */
  code: number;
  /** Enhanced status code (RFC 3463), e.g. "2.1.0"; omitted for 220/221/354. */
  enhanced?: string;
  /** One entry per line of a multi-line reply. */
  lines: string[];
  /** Close the connection after sending this reply. */
  close?: boolean;
}

export function reply(code: number, enhanced: string | undefined, ...lines: string[]): Reply {
  return { code, enhanced, lines: lines.length > 0 ? lines : [''] };
}

/** Renders a reply as wire text with CRLF line ends. */
export function formatReply(r: Reply): string {
  let out = '';
  for (let i = 0; i < r.lines.length; i++) {
    const sep = i === r.lines.length - 1 ? ' ' : '-';
    const enh = r.enhanced ? r.enhanced + ' ' : '';
    out += `${r.code}${sep}${enh}${r.lines[i]}\r\n`;
  }
  return out;
}

/** Whether a basic code is a temporary failure (4xx). */
export function isTemporary(code: number): boolean {
  return code >= 400 && code < 500;
}
