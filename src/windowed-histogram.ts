/**
 * Calls, errors and a log-scale latency histogram over a sliding window: a ring of `slots` slots of `slotMs` each,
 * every slot holding its call count, its error count and one counter per latency bucket (buckets 25% apart from
 * 1 ms to about 2 minutes, so a percentile read from it is within ~12% of the truth). A slot is cleared when the
 * ring comes round to it, so recording is a logarithm and three increments, and memory is fixed per histogram
 * ((BUCKETS + 2) × 4 bytes per slot) whatever the call rate. What the balancer's percentiles (hedging,
 * /upstream/health) and /stats are computed from.
 */

const GROWTH = 1.25
const LOG_GROWTH = Math.log(GROWTH)
/** GROWTH^53 ≈ 137 s: anything slower lands in the last bucket. */
export const BUCKETS = 54
/** Per slot: calls, errors, then the buckets. */
const STRIDE = BUCKETS + 2

export interface WindowShape {
  readonly slots: number
  readonly slotMs: number
}

export interface WindowSummary {
  readonly calls: number
  readonly errors: number
  /** The quantiles asked for, in ms (0 without calls). */
  readonly quantiles: number[]
}

/** The latency bucket of `ms`: compute it once when one call is recorded in several histograms. */
export function bucketOf (ms: number): number {
  return ms <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms) / LOG_GROWTH))
}

/** What a bucket stands for: the geometric middle of its bounds (bucket 0: up to 1 ms). */
function bucketValue (bucket: number): number {
  if (bucket === 0) return 1
  return Math.round(GROWTH ** (bucket - 0.5) * 10) / 10
}

export class WindowedHistogram {
  readonly #counts: Uint32Array
  /** The slotMs period each slot holds (-1: empty). */
  readonly #periods: Float64Array

  constructor (readonly shape: WindowShape) {
    this.#counts = new Uint32Array(shape.slots * STRIDE)
    this.#periods = new Float64Array(shape.slots).fill(-1)
  }

  get windowMs (): number {
    return this.shape.slots * this.shape.slotMs
  }

  record (now: number, failed: boolean, bucket: number): void {
    const period = Math.floor(now / this.shape.slotMs)
    const slot = period % this.shape.slots
    const base = slot * STRIDE
    if (this.#periods[slot] !== period) {
      this.#counts.fill(0, base, base + STRIDE)
      this.#periods[slot] = period
    }
    const counts = this.#counts
    ;(counts[base] as number)++
    if (failed) (counts[base + 1] as number)++
    ;(counts[base + 2 + bucket] as number)++
  }

  /**
   * Calls, errors and the quantiles `qs` (ascending, 0..1) over the slots still inside the window at `now` — or over
   * the `recent` latest of them only (the current one included).
   */
  summary (now: number, qs: readonly number[], recent = this.shape.slots): WindowSummary {
    const { slots, slotMs } = this.shape
    const oldest = Math.floor(now / slotMs) - Math.min(slots, recent) + 1
    let calls = 0
    let errors = 0
    let merged: Float64Array | undefined
    for (let slot = 0; slot < slots; slot++) {
      if ((this.#periods[slot] as number) < oldest) continue
      const base = slot * STRIDE
      const slotCalls = this.#counts[base] as number
      if (slotCalls === 0) continue
      calls += slotCalls
      errors += this.#counts[base + 1] as number
      if (qs.length === 0) continue
      merged ??= new Float64Array(BUCKETS)
      for (let b = 0; b < BUCKETS; b++) merged[b] = (merged[b] as number) + (this.#counts[base + 2 + b] as number)
    }
    if (merged === undefined) return { calls, errors, quantiles: qs.map(() => 0) }
    const quantiles: number[] = []
    let bucket = 0
    let below = merged[0] as number
    for (const q of qs) {
      const rank = Math.max(1, Math.ceil(q * calls))
      while (below < rank && bucket < BUCKETS - 1) below += merged[++bucket] as number
      quantiles.push(bucketValue(bucket))
    }
    return { calls, errors, quantiles }
  }
}
