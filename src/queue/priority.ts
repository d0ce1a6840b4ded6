// Message priority as sendmail computes it: smaller values are delivered
// sooner. A message starts at
//   size - class * ClassFactor + recipients * RecipientFactor
// and every queue run that defers it adds RetryFactor.

export interface PriorityFactors {
  /** ClassFactor (sendmail option `z`), default 1800. */
  classFactor?: number;
  /** RecipientFactor (option `y`), default 30000. */
  recipientFactor?: number;
  /** RetryFactor (option `Z`), default 90000. */
  retryFactor?: number;
}

export const DEFAULT_CLASS_FACTOR = 1800;
export const DEFAULT_RECIPIENT_FACTOR = 30000;
export const DEFAULT_RETRY_FACTOR = 90000;

/** The default precedence classes of sendmail.cf (its P lines). */
export const DEFAULT_PRECEDENCE_CLASSES: ReadonlyMap<string, number> = new Map([
  ['first-class', 0],
  ['special-delivery', 100],
  ['list', -30],
  ['bulk', -60],
  ['junk', -100],
]);

/** Returns the priority (P line) of a new message of `size` bytes. */
export function initialPriority(
  size: number,
  nrcpts: number,
  precedenceClass = 0,
  factors: PriorityFactors = {},
): number {
  const classFactor = factors.classFactor ?? DEFAULT_CLASS_FACTOR;
  const recipientFactor = factors.recipientFactor ?? DEFAULT_RECIPIENT_FACTOR;
  return size - precedenceClass * classFactor + nrcpts * recipientFactor;
}

/** Returns the priority after one more deferred queue run. */
export function retryPriority(priority: number, factors: PriorityFactors = {}): number {
  return priority + (factors.retryFactor ?? DEFAULT_RETRY_FACTOR);
}

/**
 * Returns the class of a Precedence: header value, compared without case and
 * surrounding whitespace; a missing or unknown value is class 0.
 */
export function precedenceClass(
  headerValue: string | undefined,
  classes: ReadonlyMap<string, number> = DEFAULT_PRECEDENCE_CLASSES,
): number {
  if (headerValue === undefined) return 0;
  return classes.get(headerValue.trim().toLowerCase()) ?? 0;
}
