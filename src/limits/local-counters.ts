import { LRUCache } from 'lru-cache'
import { type Decision, type RateRule, take } from './rate.js'

/**
 * Rate-limit state in this process: one number per key (see rate.ts) in an LRU, so a flood of distinct keys (a
 * spray of addresses) costs bounded memory. A key pushed out by the LRU starts again with a full bucket: under such
 * a flood the limiter errs towards admitting, never towards refusing someone it has not counted.
 */

/** Keys kept; at ~100 bytes each, about 10 MB at most. */
export const DEFAULT_MAX_KEYS = 100_000

export interface Counters {
  /** Counts one request for `key` under `rule`. */
  take (key: string, rule: RateRule): Decision | Promise<Decision>
  close (): Promise<void>
}

export class LocalCounters implements Counters {
  readonly #tats: LRUCache<string, number>

  constructor (maxKeys = DEFAULT_MAX_KEYS) {
    this.#tats = new LRUCache({ max: maxKeys })
  }

  take (key: string, rule: RateRule, now = Date.now()): Decision {
    const step = take(this.#tats.get(key), now, rule)
    if (step.decision.allowed) this.#tats.set(key, step.tat)
    return step.decision
  }

  get size (): number {
    return this.#tats.size
  }

  async close (): Promise<void> {
    this.#tats.clear()
  }
}
