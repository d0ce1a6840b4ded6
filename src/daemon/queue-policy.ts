// Reads the options that order and filter a queue run (QueueSortOrder,
// MinQueueAge, MaxQueueRunSize, QueueFactor, QueueLA) from the configuration.

import type { Config } from '../config/types';
import { defaultQueueLA, parseQueueSortOrder, type QueueRunPolicy } from '../queue/sort';

function numberOption(config: Config, name: string, fallback: number): number {
  const value = config.options.get(name);
  return typeof value === 'number' ? value : fallback;
}

/** Builds the queue run policy of `config`; throws on an invalid QueueSortOrder. */
export function queueRunPolicy(config: Config): QueueRunPolicy {
  return {
    order: parseQueueSortOrder(config.queueSortOrder ?? 'priority'),
    minQueueAgeMs: config.minQueueAge ?? 0,
    maxRunSize: numberOption(config, 'MaxQueueRunSize', 0),
    queueFactor: numberOption(config, 'QueueFactor', 600000),
    queueLA: numberOption(config, 'QueueLA', defaultQueueLA()),
  };
}
