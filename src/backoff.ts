/**
 * Delays for retrying a failed upstream: exponential from `min` to `max`, each spread by ±20% so that many upstreams
 * failing together (a network blip in front of 1000 servers) do not all come back in the same instant.
 */
export function backoffDelay (attempt: number, min: number, max: number, random: () => number = Math.random): number {
  const base = Math.min(max, min * 2 ** Math.min(attempt, 30))
  return Math.max(1, Math.round(base * (0.8 + 0.4 * random())))
}

/** A period spread by ±10%, for timers that repeat (health pings) across many upstreams. */
export function jittered (period: number, random: () => number = Math.random): number {
  return Math.max(1, Math.round(period * (0.9 + 0.2 * random())))
}
