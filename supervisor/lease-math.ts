// Lease expiry judged by the observer's own clock: a lease is expired when its KV revision has not
// changed for a TTL since this process first saw that revision. No wall clocks are compared across
// machines, so clock skew cannot make two processes believe they both own a key; only clock *rate*
// matters, and the holder stops itself well before a TTL has passed without a successful renewal.

export type ObservedLease = { revision: number; seenAt: number };

export function leaseExpired(o: ObservedLease, now: number, ttlMs: number): boolean {
  return now - o.seenAt >= ttlMs;
}

/** The holder must stop running once this long has passed since its last successful renewal. */
export function holderDeadline(lastRenewOk: number, ttlMs: number, renewMs: number): number {
  // Half a renew interval of margin: the observer's clock starts after our write lands, ours before.
  return lastRenewOk + ttlMs - Math.max(renewMs / 2, ttlMs / 10);
}
