/**
 * Percentiles of each upstream's recent call latency, for /upstream/health and for hedging. Each upstream has a
 * log-scale histogram (buckets 25% apart, from 1 ms to about 2 minutes: a percentile is within ~12% of the truth)
 * per slot of SLOT_MS, SLOTS slots in a ring making the window; a slot is cleared when the ring comes round to it.
 * Recording is a logarithm and an increment; memory is fixed per upstream (SLOTS × BUCKETS counters, ~1.3 kB), so it
 * costs the same at a thousand upstreams as at one, whatever the call rate.
 */

const GROWTH = 1.25
const LOG_GROWTH = Math.log(GROWTH)
/** GROWTH^53 ≈ 137 s: anything slower lands in the last bucket. */
const BUCKETS = 54
const SLOTS = 6
const SLOT_MS = 10_000
export const LATENCY_WINDOW_MS = SLOTS * SLOT_MS
/**
 * A percentile asked for often (hedging, per call) is reused for up to this long, unless the calls recorded since
 * grew by a tenth of those it was computed from (early on, when every call changes it, it is computed each time).
 */
const QUANTILE_REUSE_MS = 1000

export interface LatencyPercentiles {
  readonly p50Ms: number
  readonly p95Ms: number
  readonly p99Ms: number
  readonly samples: number
  readonly windowMs: number
}

class Histogram {
  readonly counts = new Uint32Array(SLOTS * BUCKETS)
  /** The SLOT_MS period each slot holds (-1: empty). */
  readonly periods = new Float64Array(SLOTS).fill(-1)
  /** Calls recorded since it was created. */
  recorded = 0
  cachedAt = -Infinity
  cachedRecorded = 0
  cachedQ = -1
  cachedMs = 0
  cachedSamples = 0
}

export class LatencyWindows {
  readonly #histograms = new Map<string, Histogram>()

  constructor (private readonly now: () => number = Date.now) {}

  record (id: string, ms: number): void {
    let histogram = this.#histograms.get(id)
    if (histogram === undefined) this.#histograms.set(id, histogram = new Histogram())
    const period = Math.floor(this.now() / SLOT_MS)
    const slot = period % SLOTS
    if (histogram.periods[slot] !== period) {
      histogram.counts.fill(0, slot * BUCKETS, (slot + 1) * BUCKETS)
      histogram.periods[slot] = period
    }
    const bucket = ms <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms) / LOG_GROWTH))
    ;(histogram.counts[slot * BUCKETS + bucket] as number)++
    histogram.recorded++
  }

  /**
   * The `q` quantile (0..1) of `id`'s latency over the window, and how many calls it is computed from; reused when
   * asked again with the same `q` soon after (the hedging delay is asked for on every hedgeable call).
   */
  quantile (id: string, q: number): { ms: number, samples: number } {
    const histogram = this.#histograms.get(id)
    if (histogram === undefined) return { ms: 0, samples: 0 }
    const now = this.now()
    const fresh = histogram.recorded - histogram.cachedRecorded <= histogram.cachedSamples / 10
    if (histogram.cachedQ === q && fresh && now - histogram.cachedAt < QUANTILE_REUSE_MS) return { ms: histogram.cachedMs, samples: histogram.cachedSamples }
    const [value] = this.#quantiles(histogram, [q], now)
    histogram.cachedAt = now
    histogram.cachedRecorded = histogram.recorded
    histogram.cachedQ = q
    histogram.cachedMs = value?.ms ?? 0
    histogram.cachedSamples = value?.samples ?? 0
    return { ms: histogram.cachedMs, samples: histogram.cachedSamples }
  }

  percentiles (id: string): LatencyPercentiles {
    const histogram = this.#histograms.get(id)
    if (histogram === undefined) return { p50Ms: 0, p95Ms: 0, p99Ms: 0, samples: 0, windowMs: LATENCY_WINDOW_MS }
    const [p50, p95, p99] = this.#quantiles(histogram, [0.5, 0.95, 0.99], this.now())
    return { p50Ms: p50?.ms ?? 0, p95Ms: p95?.ms ?? 0, p99Ms: p99?.ms ?? 0, samples: p50?.samples ?? 0, windowMs: LATENCY_WINDOW_MS }
  }

  forget (id: string): void {
    this.#histograms.delete(id)
  }

  /** The quantiles `qs` (ascending) over the slots still inside the window. */
  #quantiles (histogram: Histogram, qs: readonly number[], now: number): Array<{ ms: number, samples: number }> {
    const oldest = Math.floor(now / SLOT_MS) - SLOTS + 1
    const merged = new Float64Array(BUCKETS)
    let samples = 0
    for (let slot = 0; slot < SLOTS; slot++) {
      if ((histogram.periods[slot] as number) < oldest) continue
      for (let b = 0; b < BUCKETS; b++) {
        const count = histogram.counts[slot * BUCKETS + b] as number
        merged[b] = (merged[b] as number) + count
        samples += count
      }
    }
    if (samples === 0) return qs.map(() => ({ ms: 0, samples: 0 }))
    const answers: Array<{ ms: number, samples: number }> = []
    let bucket = 0
    let below = merged[0] as number
    for (const q of qs) {
      const rank = Math.max(1, Math.ceil(q * samples))
      while (below < rank && bucket < BUCKETS - 1) below += merged[++bucket] as number
      answers.push({ ms: bucketValue(bucket), samples })
    }
    return answers
  }
}

/** What a bucket stands for: the geometric middle of its bounds (bucket 0: up to 1 ms). */
function bucketValue (bucket: number): number {
  if (bucket === 0) return 1
  return Math.round(GROWTH ** (bucket - 0.5) * 10) / 10
}
