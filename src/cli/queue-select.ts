// Queue selection as sendmail's -qI, -qR, -qS and -qQ do it: selectors of one
// letter are OR-ed, different letters AND-ed; "!" negates. Queue ids and
// quarantine reasons match case-sensitively, addresses case-insensitively.

import type { QueueItem } from '../queue/types';
import type { QueueSelector } from './args';

function matchOne(selector: QueueSelector, id: string, item: QueueItem | undefined): boolean {
  let hit: boolean;
  switch (selector.kind) {
    case 'I':
      hit = id.includes(selector.value);
      break;
    case 'R': {
      const needle = selector.value.toLowerCase();
      hit = item?.recipients.some((r) => r.address.toLowerCase().includes(needle)) ?? false;
      break;
    }
    case 'S':
      hit = item?.sender.toLowerCase().includes(selector.value.toLowerCase()) ?? false;
      break;
    case 'Q':
      hit = item?.quarantine !== undefined && item.quarantine.includes(selector.value);
      break;
  }
  return selector.negate ? !hit : hit;
}

/** Whether an item passes every selector group. */
export function matchesSelectors(selectors: readonly QueueSelector[], id: string, item?: QueueItem): boolean {
  const groups = new Map<string, QueueSelector[]>();
  for (const s of selectors) groups.set(s.kind, [...(groups.get(s.kind) ?? []), s]);

  for (const group of groups.values()) {
    if (!group.some((s) => matchOne(s, id, item))) return false;
  }
  return true;
}

/** Whether the selectors need the control file (anything but -qI). */
export function needsItem(selectors: readonly QueueSelector[]): boolean {
  return selectors.some((s) => s.kind !== 'I');
}
