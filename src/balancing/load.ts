/**
 * What the balancer knows of each upstream's load, from the calls the forwarder makes: calls in flight, a
 * peak-sensitive EWMA of latency (a slower answer counts at once, faster ones pull it down over DECAY_MS — Finagle's
 * and Linkerd's "peak EWMA", so a replica that turns slow is avoided within a call or two), and an EWMA of the share
 * of calls that failed. One small record per upstream; nothing here grows with the number of calls.
 */

/** How fast old samples fade: after this long a sample weighs 1/e. */
const DECAY_MS = 10_000

export interface LoadFigures {
  readonly inFlight: number
  /** Latency EWMA in ms (0 until a call has been measured). */
  readonly latencyMs: number
  /** Share of recent calls that failed, 0..1. */
  readonly errorRate: number
  readonly samples: number
}

class Load implements LoadFigures {
  inFlight = 0
  latencyMs = 0
  errorRate = 0
  samples = 0
  stamp = 0
}

export class UpstreamLoad {
  readonly #loads = new Map<string, Load>()

  /** A call to `id` starts. */
  started (id: string): void {
    this.#load(id).inFlight++
  }

  /**
   * The call ended after `ms`; `failed`: it did not get an answer from the upstream (timeouts, errors, drops).
   * false: the upstream is not known (it was removed while the call ran).
   */
  finished (id: string, ms: number, failed: boolean, now = performance.now()): boolean {
    const load = this.#loads.get(id)
    if (load === undefined) return false
    load.inFlight = Math.max(0, load.inFlight - 1)
    const weight = load.samples === 0 ? 0 : Math.exp(-(now - load.stamp) / DECAY_MS)
    load.latencyMs = ms > load.latencyMs ? ms : load.latencyMs * weight + ms * (1 - weight)
    // Errors fade by time and by count alike, so a burst of failures weighs less as good answers follow.
    const errorWeight = Math.min(weight, 0.9)
    load.errorRate = load.errorRate * errorWeight + (failed ? 1 : 0) * (1 - errorWeight)
    load.samples++
    load.stamp = now
    return true
  }

  /** A call ended without a sample (cancelled, or it never left). */
  abandoned (id: string): void {
    const load = this.#loads.get(id)
    if (load !== undefined) load.inFlight = Math.max(0, load.inFlight - 1)
  }

  /**
   * The figures as of `now`: latency and error rate fade with the time since the last sample, so a replica that had
   * a bad moment and was avoided since (no samples) looks better again after a while, gets a call, and is measured
   * again — without that, power of two choices would never pick it and its figures would never change.
   */
  figures (id: string, now = performance.now()): LoadFigures {
    const load = this.#loads.get(id)
    if (load === undefined) return IDLE
    const fade = now > load.stamp ? Math.exp(-(now - load.stamp) / DECAY_MS) : 1
    return { inFlight: load.inFlight, latencyMs: load.latencyMs * fade, errorRate: load.errorRate * fade, samples: load.samples }
  }

  /** An upstream that is gone: its figures go too. */
  forget (id: string): void {
    this.#loads.delete(id)
  }

  #load (id: string): Load {
    let load = this.#loads.get(id)
    if (load === undefined) this.#loads.set(id, load = new Load())
    return load
  }
}

const IDLE: LoadFigures = Object.freeze({ inFlight: 0, latencyMs: 0, errorRate: 0, samples: 0 })
