// The in-memory form of a queue item. The control file (qf) stores the envelope,
// the recipients with their states, macros and headers; the data file (df) stores
// the body exactly as received after dot-unstuffing, with CRLF line ends.

export type RecipientState = 'pending' | 'sent' | 'deferred' | 'bounced';

export interface QueueRecipient {
  /** The forward path without angle brackets, e.g. "bob@example.com". */
  address: string;
  /** DSN ORCPT parameter, e.g. "rfc822;bob@example.com". */
  orcpt?: string;
  /** The final recipient sendmail keeps for DSNs (its r line), kept as written. */
  finalRcpt?: string;
  /** DSN NOTIFY words in upper case: SUCCESS, FAILURE, DELAY or NEVER. */
  notify?: string[];
  state: RecipientState;
  /** Last status text, e.g. "Deferred: Connection refused by mx.example.". */
  status?: string;
  /** Enhanced status code of the last attempt, e.g. "4.4.1". */
  dsnCode?: string;
  /** The remote host's reply text for DSNs ("Diagnostic-Code: smtp; ..."). */
  diagnostic?: string;
  /** Host that took or refused the recipient, for logs and DSNs. */
  remoteHost?: string;
  /**
   * The recipient whose alias, :include: or .forward expansion produced this
   * one (Xparent line). Expanded recipients are final and never expanded again.
   */
  parent?: string;
  /** Controlling user of a |program or /file target: whose .forward or :include: named it (Xctladdr line). */
  ctladdr?: string;
  /** Envelope sender for this recipient from an owner- alias (Xowner line). */
  owner?: string;
}

export interface QueueItem {
  id: string;
  /** Creation time, seconds since the epoch (T line). */
  created: number;
  /** Last delivery attempt, seconds since the epoch (K line); 0 if none. */
  lastAttempt: number;
  /** Number of delivery attempts so far (N line). */
  attempts: number;
  /** Priority (P line): smaller runs sooner. */
  priority: number;
  bodyType?: '7BIT' | '8BITMIME';
  /** Quarantine reason (q line); the file is then named hf<id>. */
  quarantine?: string;
  /** Status message shown by mailq (M line). */
  statusMessage?: string;
  /** F line flags: w warning sent, b delete Bcc, d RET given, n RET=HDRS. */
  flags: string;
  /** Persistent macros ($ lines), e.g. "r" -> "ESMTP", "_" -> relay text. */
  macros: Map<string, string>;
  /** Envelope sender without angle brackets; "" for the null sender <>. */
  sender: string;
  /** DSN ENVID (Z line). */
  envid?: string;
  /** The AUTH= parameter of MAIL (A line), kept as sendmail wrote it. */
  auth?: string;
  /** DSN RET parameter. */
  ret?: 'FULL' | 'HDRS';
  /** DELIVERBY request from BY= (! line), counted from `created`. */
  deliverBy?: { seconds: number; mode: 'R' | 'N'; trace: boolean };
  recipients: QueueRecipient[];
  /** Header lines without the trailing CRLF; a folded header keeps its folds. */
  headers: string[];
  /** Size of the data file in bytes. */
  bodySize: number;
  /**
   * Read from a control file that sendmail wrote (never written back): its df
   * has LF line ends until the first delivery converts it (sendmail-queue.ts).
   */
  fromSendmail?: boolean;
}
