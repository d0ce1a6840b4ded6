// One mail transaction: MAIL ... end of DATA (RFC 5321 3.3).

export interface TransactionRecipient {
  address: string;
  notify?: string[];
  orcpt?: string;
}

export interface Transaction {
  /** Queue id, assigned at MAIL so that log lines of the transaction share it. */
  id: string;
  sender: string;
  /** SIZE= from MAIL, for the early size check. */
  declaredSize?: number;
  bodyType?: '7BIT' | '8BITMIME';
  ret?: 'FULL' | 'HDRS';
  envid?: string;
  recipients: TransactionRecipient[];
  /** Quarantine reason set by a checkpoint during the transaction. */
  quarantine?: string;
  /** A checkpoint chose DISCARD: accept, but deliver to nobody. */
  discard?: boolean;
}
