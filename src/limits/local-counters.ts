import { LRUCache } from 'lru-cache'
import { type Decision, type RateRule, take } from './rate.js'

/**
 * Rate-limit state in this process: one number per key (see rate.ts). Keys of callers (addresses, principals) are
 * kept in an LRU per kind, so a flood of distinct keys (a spray of addresses) costs bounded memory and pushes out
 * only keys of its own kind; a key pushed out starts again with a full bucket (the limiter errs towards admitting).
 * Gateway-wide keys (`per: "gateway"` tool limits) are as many as the config has and are never pushed out.
 */

/** Keys kept per kind; at ~100 bytes each, about 10 MB at most. */
export const DEFAULT_MAX_KEYS = 100_000

/** Which table a key lives in: the address, principal and per-caller tool buckets, or the gateway-wide ones. */
export type CounterKind = 'address' | 'principal' | 'tool' | 'gateway'

export interface Check {
  readonly kind: CounterKind
  readonly key: string
  readonly rule: RateRule
}

/** What counting a request under several checks decided: `refused` is the index of the check that refused, or -1. */
export interface Outcome {
  readonly refused: number
  /** The refusing check's decision, or the first check's when all admitted. */
  readonly decision: Decision
}

export interface Counters {
  /** Counts one request under every check, all or nothing: a refusal by one takes nothing from the others. */
  take (checks: readonly Check[]): Outcome | Promise<Outcome>
  close (): Promise<void>
}

interface Table {
  get (key: string): number | undefined
  set (key: string, value: number): unknown
  readonly size: number
}

export class LocalCounters implements Counters {
  readonly #callers: Record<Exclude<CounterKind, 'gateway'>, LRUCache<string, number>>
  readonly #gateway = new Map<string, number>()

  constructor (maxKeys = DEFAULT_MAX_KEYS) {
    this.#callers = { address: new LRUCache({ max: maxKeys }), principal: new LRUCache({ max: maxKeys }), tool: new LRUCache({ max: maxKeys }) }
  }

  take (checks: readonly Check[], now = Date.now()): Outcome {
    let first: Decision | undefined
    const tats: number[] = []
    for (let i = 0; i < checks.length; i++) {
      const check = checks[i] as Check
      const step = take(this.#table(check.kind).get(check.key), now, check.rule)
      if (!step.decision.allowed) return { refused: i, decision: step.decision }
      first ??= step.decision
      tats.push(step.tat)
    }
    for (let i = 0; i < checks.length; i++) {
      const check = checks[i] as Check
      this.#table(check.kind).set(check.key, tats[i] as number)
    }
    return { refused: -1, decision: first ?? { allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 0 } }
  }

  /** Keys held of a kind. */
  size (kind: CounterKind): number {
    return this.#table(kind).size
  }

  async close (): Promise<void> {
    for (const table of Object.values(this.#callers)) table.clear()
    this.#gateway.clear()
  }

  #table (kind: CounterKind): Table {
    return kind === 'gateway' ? this.#gateway : this.#callers[kind]
  }
}
