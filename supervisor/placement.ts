// Placement by rendezvous (highest-random-weight) hashing: every supervisor computes the same
// owner for a (stage, pair) from the same member list, with no coordination, and a member joining
// or leaving moves only the keys it wins or held (about 1/n of them).
import { createHash } from "node:crypto";

function weight(member: string, key: string): bigint {
  const h = createHash("sha256").update(member).update("\u0000").update(key).digest();
  return h.readBigUInt64BE(0);
}

/** The owner of `key` among `members`, or null when there are none. Ties (practically impossible) go to the smaller name. */
export function rendezvousOwner(key: string, members: readonly string[]): string | null {
  let best: string | null = null;
  let bestW = -1n;
  for (const m of members) {
    const w = weight(m, key);
    if (w > bestW || (w === bestW && best !== null && m < best)) {
      best = m;
      bestW = w;
    }
  }
  return best;
}
