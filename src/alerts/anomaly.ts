/**
 * Anomaly detection on each upstream's latency and error rate: an EWMA baseline of the value and an EWMA of its
 * absolute deviation from that baseline (a running, robust stand-in for the median absolute deviation), and a
 * score — how many deviations (×1.4826, so it reads like a z-score) the latest value sits above the baseline. Only
 * rises score: an upstream getting faster or failing less is not an anomaly. Latency is compared in log space (a jump
 * from 10 to 20 ms weighs as much as one from 100 to 200). The baselines learn by time, not by observation — each
 * observation weighs 1 − e^(−Δt / baselineMs) — so how often they are evaluated does not change how fast they get
 * used to a change; and a value more than three scales off moves the mean only by three scales and leaves the
 * spread alone, so neither one bad spell nor a sustained one becomes the new normal before its time. `warmup` observations build a baseline before any score. A few multiplications per upstream.
 */

export interface AnomalySettings {
  /** The baselines' time constant: after this long a change weighs 63% (1 − 1/e) of them. */
  readonly baselineMs: number
  /** Observations before an upstream is scored. */
  readonly warmup: number
  /** Calls an observation needs to count (a quiet moment says nothing). */
  readonly minCalls: number
}

export const DEFAULT_ANOMALY: AnomalySettings = Object.freeze({ baselineMs: 300_000, warmup: 10, minCalls: 5 })

export interface AnomalyScores {
  /** Robust z-score of the latency (p50, in log space) above its baseline; 0 when not scored yet. */
  readonly latency: number
  /** The same for the error rate. */
  readonly errors: number
  /** Observations so far. */
  readonly observations: number
}

/** Deviation floors: a steady upstream's tiny wobble is not a scale (latency: log(1.1) ≈ 10%; errors: 1 point). */
const LATENCY_FLOOR = Math.log(1.1)
const ERROR_FLOOR = 0.01
/** A value's deviation moves the baseline by at most this many scales. */
const CLAMP = 3

class Baseline {
  mean = 0
  deviation = 0
  /** How much of the deviation's EWMA is learnt so far (1 − Π(1 − α)): dividing by it removes its start-at-0 bias. */
  learnt = 0

  /** The deviation, corrected for the EWMA having started at 0 (right after warm-up it would read a quarter of it). */
  get spread (): number {
    return this.learnt === 0 ? 0 : this.deviation / this.learnt
  }

  score (value: number, floor: number): number {
    return Math.max(0, (value - this.mean) / (1.4826 * Math.max(this.spread, floor)))
  }

  update (value: number, alpha: number, first: boolean, floor: number): void {
    if (first) {
      this.mean = value
      return
    }
    const scale = 1.4826 * Math.max(this.spread, floor)
    const offset = value - this.mean
    if (Math.abs(offset) > CLAMP * scale) {
      // An outlier moves the baseline by its clamped deviation only, and does not widen the spread: a spread fed
      // clamped outliers would grow by CLAMP × 1.4826 per time constant and a sustained anomaly would score itself
      // normal within a minute or two. So a shift of k scales is absorbed in about k / CLAMP time constants (10×
      // slower, at the default 5 min: ~20 min flagged; 2× slower: ~1.5 min), the bigger the longer.
      this.mean += alpha * Math.sign(offset) * CLAMP * scale
      return
    }
    this.deviation = (1 - alpha) * this.deviation + alpha * Math.abs(offset)
    this.learnt = (1 - alpha) * this.learnt + alpha
    this.mean += alpha * offset
  }
}

class Upstream {
  readonly latency = new Baseline()
  readonly errors = new Baseline()
  observations = 0
  lastAt = 0
  scores: AnomalyScores = NONE
}

export class AnomalyDetector {
  readonly #upstreams = new Map<string, Upstream>()

  constructor (private readonly settings: AnomalySettings = DEFAULT_ANOMALY, private readonly now: () => number = Date.now) {}

  /**
   * The recent figures of `id`: `calls` in the period, their median latency and error rate. Scores them against the
   * baseline, then lets them into it.
   */
  observe (id: string, calls: number, p50Ms: number, errorRate: number): AnomalyScores {
    let upstream = this.#upstreams.get(id)
    if (upstream === undefined) this.#upstreams.set(id, upstream = new Upstream())
    // A quiet moment (drained, down, idle) says nothing: no score stands on it, so an alert on one resolves.
    if (calls < this.settings.minCalls) {
      if (upstream.scores.latency !== 0 || upstream.scores.errors !== 0) upstream.scores = { latency: 0, errors: 0, observations: upstream.observations }
      return upstream.scores
    }
    const now = this.now()
    const first = upstream.observations === 0
    const alpha = 1 - Math.exp(-Math.min(this.settings.baselineMs, Math.max(0, now - upstream.lastAt)) / this.settings.baselineMs)
    // Evaluated again at the same instant: nothing new to learn or count.
    if (!first && alpha === 0) return upstream.scores
    const latency = Math.log(Math.max(1, p50Ms))
    // An error rate from few calls is coarse: one error in 20 calls is 5 points. Its floor is its sampling error.
    const errorFloor = Math.max(ERROR_FLOOR, Math.sqrt(Math.max(upstream.errors.mean, 1 / calls) * (1 - upstream.errors.mean) / calls))
    const scored = upstream.observations >= this.settings.warmup
    upstream.scores = {
      latency: scored ? round(upstream.latency.score(latency, LATENCY_FLOOR)) : 0,
      errors: scored ? round(upstream.errors.score(errorRate, errorFloor)) : 0,
      observations: upstream.observations + 1
    }
    upstream.latency.update(latency, alpha, first, LATENCY_FLOOR)
    upstream.errors.update(errorRate, alpha, first, errorFloor)
    upstream.lastAt = now
    upstream.observations++
    return upstream.scores
  }

  scores (id: string): AnomalyScores {
    return this.#upstreams.get(id)?.scores ?? NONE
  }

  forget (id: string): void {
    this.#upstreams.delete(id)
  }
}

const NONE: AnomalyScores = Object.freeze({ latency: 0, errors: 0, observations: 0 })

function round (score: number): number {
  return Math.round(score * 100) / 100
}
