// Lookup in a plain object that ignores inherited keys, so that text such as
// `valueOf` or `constructor` from a configuration file finds nothing.

export function ownEntry<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
