// One mail transaction: MAIL ... end of DATA (RFC 5321 3.3).

import type { DeliverBy } from '../smtp/deliver-by';

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
  /** BY= from MAIL (RFC 2852). */
  deliverBy?: DeliverBy;
  recipients: TransactionRecipient[];
  /** Quarantine reason set by a checkpoint during the transaction. */
  quarantine?: string;
  /** A checkpoint chose DISCARD: accept, but deliver to nobody. */
  discard?: boolean;
}
