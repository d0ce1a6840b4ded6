// Milter protocol constants (libmilter's mfdef.h, protocol version 6) and the
// mapping from a filter's reply letter to a decision.

/** SMFI_PROT_VERSION of sendmail 8.14 and later. */
export const MTA_VERSION = 6;

/** SMFIF_*: every modification this MTA can apply (0x1FF). */
export const Action = {
  ADDHDRS: 0x01,
  CHGBODY: 0x02,
  ADDRCPT: 0x04,
  DELRCPT: 0x08,
  CHGHDRS: 0x10,
  QUARANTINE: 0x20,
  CHGFROM: 0x40,
  ADDRCPT_PAR: 0x80,
  SETSYMLIST: 0x100,
} as const;
export const MTA_ACTIONS = 0x1ff;

/** SMFIP_*: steps the filter may skip or take without sending a reply. */
export const Protocol = {
  NOCONNECT: 0x1,
  NOHELO: 0x2,
  NOMAIL: 0x4,
  NORCPT: 0x8,
  NOBODY: 0x10,
  NOHDRS: 0x20,
  NOEOH: 0x40,
  NR_HDR: 0x80,
  NOUNKNOWN: 0x100,
  NODATA: 0x200,
  SKIP: 0x400,
  RCPT_REJ: 0x800,
  NR_CONN: 0x1000,
  NR_HELO: 0x2000,
  NR_MAIL: 0x4000,
  NR_RCPT: 0x8000,
  NR_DATA: 0x10000,
  NR_UNKN: 0x20000,
  NR_EOH: 0x40000,
  NR_BODY: 0x80000,
  HDR_LEADSPC: 0x100000,
} as const;
export const MTA_PROTOCOL = 0x1fffff;

/** A filter's decision on one command. */
export type Decision =
  | { kind: 'continue' }
  | { kind: 'accept' }
  | { kind: 'reject' }
  | { kind: 'tempfail' }
  | { kind: 'discard' }
  | { kind: 'skip' }
  | { kind: 'shutdown' }
  | { kind: 'replycode'; text: string };

/** Maps a decision reply letter to a Decision; undefined for any other letter. */
export function decisionOf(command: string, data: Buffer): Decision | undefined {
  switch (command) {
    case 'c':
      return { kind: 'continue' };
    case 'a':
      return { kind: 'accept' };
    case 'r':
      return { kind: 'reject' };
    case 't':
      return { kind: 'tempfail' };
    case 'd':
      return { kind: 'discard' };
    case 's':
      return { kind: 'skip' };
    case '4':
      return { kind: 'shutdown' };
    case 'y': {
      const end = data.indexOf(0);
      return { kind: 'replycode', text: data.toString('latin1', 0, end < 0 ? data.length : end) };
    }
    default:
      return undefined;
  }
}
