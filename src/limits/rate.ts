/**
 * The one rate algorithm every limit uses, GCRA (the generic cell rate algorithm, a token bucket kept as a single
 * number): a caller may send `burst` requests at once, and `max` per `windowMs` on average after that. Its state is
 * the theoretical arrival time (TAT) of the next request, in ms; a bucket that was never used or has refilled is
 * the same as no state at all, so state can be dropped (an LRU, a Redis key with a TTL) without changing a decision.
 * The Redis script in redis-counters.ts is this function, line for line.
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
  /** The state to keep (when refused, the state is unchanged). */
  readonly tat: number
}

/** One request at `now` against the state `tat` (undefined: none kept). */
export function take (tat: number | undefined, now: number, rule: RateRule): Step {
  const interval = rule.windowMs / rule.max
  const from = tat === undefined || tat < now ? now : tat
  const next = from + interval
  const allowAt = next - rule.burst * interval
  if (allowAt > now) {
    return { decision: { allowed: false, remaining: 0, retryAfterMs: Math.ceil(allowAt - now), resetMs: Math.ceil(from - now) }, tat: from }
  }
  return { decision: { allowed: true, remaining: Math.floor((now - allowAt) / interval), retryAfterMs: 0, resetMs: Math.ceil(next - now) }, tat: next }
}
