import { bucketOf, WindowedHistogram } from '../windowed-histogram.js'

/**
 * Percentiles of each upstream's recent answered-call latency, for /upstream/health and for hedging: a
 * WindowedHistogram of the last minute (six 10 s slots) per upstream, ~1.3 kB each, the same at a thousand
 * upstreams as at one whatever the call rate.
 */

const SHAPE = Object.freeze({ slots: 6, slotMs: 10_000 })
export const LATENCY_WINDOW_MS = SHAPE.slots * SHAPE.slotMs
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

class Latency {
  readonly histogram = new WindowedHistogram(SHAPE)
  /** Calls recorded since it was created. */
  recorded = 0
  cachedAt = -Infinity
  cachedRecorded = 0
  cachedQ = -1
  cached = { ms: 0, samples: 0 }
}

export class LatencyWindows {
  readonly #latencies = new Map<string, Latency>()

  constructor (private readonly now: () => number = Date.now) {}

  record (id: string, ms: number): void {
    let latency = this.#latencies.get(id)
    if (latency === undefined) this.#latencies.set(id, latency = new Latency())
    latency.histogram.record(this.now(), false, bucketOf(ms))
    latency.recorded++
  }

  /**
   * The `q` quantile (0..1) of `id`'s latency over the window, and how many calls it is computed from; reused when
   * asked again with the same `q` soon after (the hedging delay is asked for on every hedgeable call).
   */
  quantile (id: string, q: number): { readonly ms: number, readonly samples: number } {
    const latency = this.#latencies.get(id)
    if (latency === undefined) return NONE
    const now = this.now()
    const fresh = latency.recorded - latency.cachedRecorded <= latency.cached.samples / 10
    if (latency.cachedQ === q && fresh && now - latency.cachedAt < QUANTILE_REUSE_MS) return latency.cached
    const { calls, quantiles } = latency.histogram.summary(now, [q])
    latency.cachedAt = now
    latency.cachedRecorded = latency.recorded
    latency.cachedQ = q
    latency.cached = { ms: quantiles[0] ?? 0, samples: calls }
    return latency.cached
  }

  percentiles (id: string): LatencyPercentiles {
    const latency = this.#latencies.get(id)
    if (latency === undefined) return { p50Ms: 0, p95Ms: 0, p99Ms: 0, samples: 0, windowMs: LATENCY_WINDOW_MS }
    const { calls, quantiles: [p50 = 0, p95 = 0, p99 = 0] } = latency.histogram.summary(this.now(), [0.5, 0.95, 0.99])
    return { p50Ms: p50, p95Ms: p95, p99Ms: p99, samples: calls, windowMs: LATENCY_WINDOW_MS }
  }

  forget (id: string): void {
    this.#latencies.delete(id)
  }
}

const NONE = Object.freeze({ ms: 0, samples: 0 })
