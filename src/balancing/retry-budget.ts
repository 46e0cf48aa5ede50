/**
 * How many retries the gateway may add to the load (Finagle's retry budget): over the last `windowMs`, retries may be
 * at most `ratio` of the calls plus `minPerSecond` per second (so a quiet gateway can still retry). When a replica
 * fails many calls at once, retrying every one of them elsewhere would double the load on the replicas that are
 * left, just when they have least room: past the budget a call fails with what its replica did instead. Counted in
 * one-second buckets: two increments per call at most, nothing that grows.
 */

export interface RetryBudgetSettings {
  /** Retries allowed per call made, over the window (0.2: at most 20% extra). */
  readonly ratio: number
  /** Retries allowed per second whatever the calls. */
  readonly minPerSecond: number
  readonly windowMs: number
}

export const DEFAULT_RETRY_BUDGET: RetryBudgetSettings = Object.freeze({ ratio: 0.2, minPerSecond: 10, windowMs: 10_000 })

export class RetryBudget {
  readonly #calls: number[]
  readonly #retries: number[]
  #second = 0

  constructor (private readonly settings: RetryBudgetSettings = DEFAULT_RETRY_BUDGET, private readonly now: () => number = Date.now) {
    const buckets = Math.max(1, Math.ceil(settings.windowMs / 1000))
    this.#calls = new Array<number>(buckets).fill(0)
    this.#retries = new Array<number>(buckets).fill(0)
  }

  /** A call was made (not a retry). */
  called (): void {
    this.#calls[this.#bucket()]++
  }

  /** Whether a retry may go; if so it is counted. */
  tryRetry (): boolean {
    if (!this.allows()) return false
    this.spend()
    return true
  }

  /** Whether a retry may go now (nothing counted: see `spend`). */
  allows (): boolean {
    this.#bucket()
    let calls = 0
    let retries = 0
    for (let i = 0; i < this.#calls.length; i++) {
      calls += this.#calls[i] as number
      retries += this.#retries[i] as number
    }
    const allowed = this.settings.ratio * calls + this.settings.minPerSecond * (this.settings.windowMs / 1000)
    return retries + 1 <= allowed
  }

  /** A retry went. */
  spend (): void {
    this.#retries[this.#bucket()]++
  }

  /** The current one-second bucket, clearing the ones the clock passed over since the last call. */
  #bucket (): number {
    const second = Math.floor(this.now() / 1000)
    const n = this.#calls.length
    if (second !== this.#second) {
      const passed = Math.min(n, second - this.#second)
      for (let k = 1; k <= passed; k++) {
        const i = ((this.#second + k) % n + n) % n
        this.#calls[i] = 0
        this.#retries[i] = 0
      }
      this.#second = second
    }
    return ((second % n) + n) % n
  }
}
