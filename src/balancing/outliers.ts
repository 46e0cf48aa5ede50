/**
 * Passive health: outlier ejection (Envoy's name for it). An upstream whose calls fail at `errorRate` or more over
 * the last `windowMs` (once it has had `minCalls` there), or `consecutiveFailures` times in a row, is taken out of
 * its service's rotation for `ejectionMs` × the times it was ejected recently (at most `maxEjectionMs`), then comes
 * back on its own. Unlike a circuit breaker, which judges an upstream alone and fails fast when every replica is
 * open, ejection is relative to the replicas beside it: at most `maxEjectedShare` of a service's replicas are out at
 * once (rounded down, so the only replica of a service is never ejected: its breaker covers it) — counting those
 * that cannot take calls anyway (down, drained, circuit open) — so ejection never empties a service. Failures are what the circuit breakers count: the upstream did not answer (timeouts, dropped
 * connections, HTTP errors), not tool errors or JSON-RPC errors.
 */

export interface OutlierSettings {
  /** Share of failed calls over the window that ejects (0: not checked). */
  readonly errorRate: number
  /** Calls in the window before its error rate is judged. */
  readonly minCalls: number
  readonly windowMs: number
  /** Failures in a row that eject (0: not checked; the circuit breaker already stops an upstream that only fails). */
  readonly consecutiveFailures: number
  readonly ejectionMs: number
  readonly maxEjectionMs: number
  /** At most this share of a service's replicas ejected at once, rounded down. */
  readonly maxEjectedShare: number
}

export const DEFAULT_OUTLIERS: OutlierSettings = Object.freeze({
  errorRate: 0.5,
  minCalls: 10,
  windowMs: 10_000,
  consecutiveFailures: 0,
  ejectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectedShare: 0.5
})

export interface EjectionReport {
  readonly ejected: boolean
  /** While ejected: when it comes back (ms since the epoch). */
  readonly until?: number
  readonly reason?: string
  /** Ejections that still lengthen the next one (one is forgotten per ejectionMs back in rotation). */
  readonly ejections: number
}

export interface Ejection {
  /** What ejected it: its failures in a row, or its error rate over the window. */
  readonly kind: 'consecutive' | 'error_rate'
  readonly reason: string
  readonly ms: number
  readonly ejections: number
}

/** The window is counted in this many buckets, rotated lazily as calls come. */
const BUCKETS = 5

class Outlier {
  readonly calls = new Uint32Array(BUCKETS)
  readonly failures = new Uint32Array(BUCKETS)
  readonly periods = new Float64Array(BUCKETS).fill(-1)
  inARow = 0
  /** The window bucket in which an ejection was last refused by the share cap: not tried again within it. */
  capped = -1
  ejected = false
  until = 0
  ejections = 0
  reason: string | undefined
}

export class OutlierDetector {
  readonly #outliers = new Map<string, Outlier>()
  /** How many are ejected now (some may have come back and not been looked at yet): at 0, `ejected` costs nothing. */
  #ejectedCount = 0
  readonly #bucketMs: number

  /**
   * `replicas(id)`: the ids of the replicas of `id`'s service, `id` included; `usable(id)`: whether a replica could
   * take calls if it were not ejected (up, not drained, circuit not open). `onEject`: told of each ejection (logs,
   * metrics).
   */
  constructor (
    private readonly settings: OutlierSettings,
    private readonly replicas: (id: string) => readonly string[],
    private readonly onEject: (id: string, ejection: Ejection) => void = () => {},
    private readonly now: () => number = Date.now,
    private readonly usable: (id: string) => boolean = () => true
  ) {
    this.#bucketMs = Math.max(1, settings.windowMs / BUCKETS)
  }

  /** A call to `id` ended; `failed`: the upstream failed it. */
  record (id: string, failed: boolean): void {
    const { errorRate, consecutiveFailures } = this.settings
    if (errorRate === 0 && consecutiveFailures === 0) return
    let outlier = this.#outliers.get(id)
    if (outlier === undefined) this.#outliers.set(id, outlier = new Outlier())
    // Calls that were in flight when it was ejected say nothing new.
    if (outlier.ejected && !this.#returned(outlier)) return
    const period = Math.floor(this.now() / this.#bucketMs)
    const bucket = period % BUCKETS
    if (outlier.periods[bucket] !== period) {
      outlier.periods[bucket] = period
      outlier.calls[bucket] = 0
      outlier.failures[bucket] = 0
    }
    ;(outlier.calls[bucket] as number)++
    if (!failed) {
      outlier.inARow = 0
      return
    }
    ;(outlier.failures[bucket] as number)++
    outlier.inARow++
    // Held by the share cap: judged again in the next bucket, not on every failure (which would walk the
    // service's replicas on each one, just when many fail).
    if (outlier.capped === period) return
    if (consecutiveFailures > 0 && outlier.inARow >= consecutiveFailures) {
      this.#eject(id, outlier, period, 'consecutive', `${outlier.inARow} calls failed in a row`)
      return
    }
    if (errorRate > 0) {
      let calls = 0
      let failures = 0
      const oldest = period - BUCKETS + 1
      for (let b = 0; b < BUCKETS; b++) {
        if ((outlier.periods[b] as number) < oldest) continue
        calls += outlier.calls[b] as number
        failures += outlier.failures[b] as number
      }
      if (calls >= this.settings.minCalls && failures >= errorRate * calls) {
        this.#eject(id, outlier, period, 'error_rate', `${failures} of its last ${calls} calls failed (errorRate ${errorRate})`)
      }
    }
  }

  /** Whether `id` is out of rotation now (on the balancer's path: nothing but a comparison while none is). */
  ejected (id: string): boolean {
    if (this.#ejectedCount === 0) return false
    const outlier = this.#outliers.get(id)
    return outlier !== undefined && outlier.ejected && !this.#returned(outlier)
  }

  report (id: string): EjectionReport {
    const outlier = this.#outliers.get(id)
    if (outlier === undefined) return NONE
    const ejected = this.ejected(id)
    return {
      ejected,
      ...(ejected ? { until: outlier.until, ...(outlier.reason !== undefined ? { reason: outlier.reason } : {}) } : {}),
      ejections: this.#recentEjections(outlier)
    }
  }

  /** The upstream reconnected after it was down (an active check passed): an ejection ends (Envoy does the same). */
  reconnected (id: string): void {
    const outlier = this.#outliers.get(id)
    if (outlier?.ejected !== true) return
    outlier.until = this.now()
    this.#returned(outlier)
  }

  forget (id: string): void {
    const outlier = this.#outliers.get(id)
    if (outlier?.ejected === true) this.#ejectedCount--
    this.#outliers.delete(id)
  }

  #eject (id: string, outlier: Outlier, period: number, kind: Ejection['kind'], reason: string): void {
    const replicas = this.replicas(id)
    const allowed = Math.floor(replicas.length * this.settings.maxEjectedShare)
    let out = 0
    for (const replica of replicas) if (replica !== id && (this.ejected(replica) || !this.usable(replica))) out++
    // The share is reached: it stays, and is judged again later.
    if (out + 1 > allowed) {
      outlier.capped = period
      return
    }
    outlier.ejections = this.#recentEjections(outlier) + 1
    const ms = Math.min(this.settings.maxEjectionMs, this.settings.ejectionMs * outlier.ejections)
    outlier.ejected = true
    outlier.until = this.now() + ms
    outlier.reason = reason
    this.#ejectedCount++
    this.onEject(id, { kind, reason, ms, ejections: outlier.ejections })
  }

  /** An ejection whose time is up ends here: back in rotation with a clean window. */
  #returned (outlier: Outlier): boolean {
    if (this.now() < outlier.until) return false
    outlier.ejected = false
    outlier.reason = undefined
    outlier.inARow = 0
    outlier.periods.fill(-1)
    this.#ejectedCount--
    return true
  }

  /** One past ejection is forgotten per ejectionMs spent back in rotation since the last one ended. */
  #recentEjections (outlier: Outlier): number {
    if (outlier.ejections === 0 || outlier.ejected) return outlier.ejections
    const forgotten = Math.floor((this.now() - outlier.until) / this.settings.ejectionMs)
    return Math.max(0, outlier.ejections - forgotten)
  }
}

const NONE: EjectionReport = Object.freeze({ ejected: false, ejections: 0 })
