/**
 * The one rate algorithm every limit uses, GCRA (the generic cell rate algorithm, a token bucket kept as a single
 * number): a caller may send `burst` requests at once, and `max` per `windowMs` on average after that. Its state is
 * the theoretical arrival time (TAT) of the next request, in ms; a bucket that was never used or has refilled is
 * the same as no state at all, so state can be dropped (an LRU, a Redis key with a TTL) without changing a decision.
 * The arithmetic is done on the bucket's debt (TAT − now, at most burst × interval). The TAT itself is a timestamp
 * (~1.8e12 ms), which holds ms to about 1.2e-4: storing it rounds, and the rounding adds up over a burst, so
 * comparisons allow that much (TOLERANCE per request of the burst, a millionth of a 250 ms interval) — otherwise
 * `max: 6, windowMs: 1000` would admit 5 at once. The Redis script in redis-counters.ts computes the same, step for step.
 */

export interface RateRule {
  readonly max: number
  readonly windowMs: number
  /** Requests that may come at once; max when not configured. */
  readonly burst: number
}

export interface Decision {
  readonly allowed: boolean
  /** Requests that could still be sent right now. */
  readonly remaining: number
  /** When refused: ms until one more request will be allowed (0 when allowed). */
  readonly retryAfterMs: number
  /** ms until the whole burst is available again. */
  readonly resetMs: number
}

export interface Step {
  readonly decision: Decision
  /** The state to keep when the request is admitted. */
  readonly tat: number
}

/** Rounding a timestamp to a double loses up to this much (ms) each time a request is admitted: half an ulp of 2^41, and more. */
export const TOLERANCE = 2.5e-4

/** One request at `now` against the state `tat` (undefined: none kept). */
export function take (tat: number | undefined, now: number, rule: RateRule): Step {
  const interval = rule.windowMs / rule.max
  const debt = tat === undefined || tat <= now ? 0 : tat - now
  const after = debt + interval
  const capacity = rule.burst * interval
  // Never more than half an interval: at rates past thousands a millisecond the timestamps cannot tell requests apart.
  const slack = Math.min(rule.burst * TOLERANCE, interval / 2)
  if (after > capacity + slack) {
    return { decision: { allowed: false, remaining: 0, retryAfterMs: Math.ceil(after - capacity), resetMs: Math.ceil(debt) }, tat: now + debt }
  }
  return {
    decision: { allowed: true, remaining: Math.floor((capacity - after + slack) / interval), retryAfterMs: 0, resetMs: Math.ceil(after) },
    tat: now + after
  }
}
