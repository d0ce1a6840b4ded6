// The per-precedence forms of Timeout.queuewarn and Timeout.queuereturn
// (sendmail's timeout classes): a message whose Precedence header ranks above
// 0 (special-delivery) uses the .urgent form, below 0 (list, bulk, junk) the
// .non-urgent form, a delivery status notification (null sender) the .dsn
// form, and every other message the .normal form. A form that is not set
// falls back to the plain option.

import { headerValue } from '../server/headers';
import { precedenceClass } from '../queue/priority';
import type { Config } from '../config/types';
import type { QueueItem } from '../queue/types';

export type TimeoutClass = 'normal' | 'urgent' | 'non-urgent' | 'dsn';

/** Returns the timeout class of a queued message. */
export function timeoutClassOf(item: Pick<QueueItem, 'sender' | 'headers'>): TimeoutClass {
  if (item.sender === '') return 'dsn';
  const klass = precedenceClass(headerValue(item.headers, 'precedence'));
  if (klass > 0) return 'urgent';
  if (klass < 0) return 'non-urgent';
  return 'normal';
}

/**
 * Looks up Timeout.<kind>.<class> for `item`, then Timeout.<kind>; undefined
 * when neither is set.
 */
export function classTimeout(
  config: Config,
  kind: 'queuewarn' | 'queuereturn',
  item: Pick<QueueItem, 'sender' | 'headers'> | undefined,
): number | undefined {
  if (item !== undefined) {
    const value = config.timeouts.get(`${kind}.${timeoutClassOf(item)}`);
    if (value !== undefined) return value;
  }
  return config.timeouts.get(kind);
}
