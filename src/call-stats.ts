import type { CallOutcome } from './forwarder.js'
import { bucketOf, WindowedHistogram, type WindowShape, type WindowSummary } from './windowed-histogram.js'

/**
 * What /stats, the dashboard, the alerts and the anomaly detector read: in total, per upstream and per tool, calls,
 * errors and latency percentiles over the last minute (six 10 s slots) and the last 15 minutes (five 3 min slots:
 * the oldest slot leaves the window whole, so "15 minutes" is 12 to 15), and the latest errors. Fed with every
 * attempt the forwarder makes on an upstream. An upstream or a tool costs ~2.5 kB once called, nothing before; past `maxTools` the tool called least recently is dropped, so a catalog
 * of 50,000 tools cannot make this grow without bound. Recording is a few increments; a snapshot walks what is kept.
 */

const MINUTE: WindowShape = Object.freeze({ slots: 6, slotMs: 10_000 })
const QUARTER: WindowShape = Object.freeze({ slots: 5, slotMs: 180_000 })
const QUANTILES = [0.5, 0.95, 0.99]
/** Outcomes that are not errors: answered, or withdrawn by the client. */
const NOT_ERRORS = new Set<CallOutcome>(['success', 'cancelled'])

/** One window's figures. */
export interface WindowFigures {
  readonly calls: number
  readonly errors: number
  /** errors / calls, 0 without calls. */
  readonly errorRate: number
  readonly callsPerSec: number
  readonly p50Ms: number
  readonly p95Ms: number
  readonly p99Ms: number
}

export interface RecentError {
  /** ISO time. */
  readonly at: string
  readonly upstream: string
  readonly service: string
  readonly tool?: string
  readonly method: string
  readonly outcome: CallOutcome
  readonly message: string
}

class Windows {
  readonly minute = new WindowedHistogram(MINUTE)
  readonly quarter = new WindowedHistogram(QUARTER)
  lastAt = 0

  constructor (readonly service: string) {}

  record (now: number, failed: boolean, bucket: number): void {
    this.minute.record(now, failed, bucket)
    this.quarter.record(now, failed, bucket)
    this.lastAt = now
  }
}

export interface CallStatsOptions {
  /** Tools tracked at most (default 1000). */
  maxTools?: number
  /** Latest errors kept (default 100). */
  recentErrors?: number
  now?: () => number
}

export class CallStats {
  readonly #total = new Windows('')
  readonly #upstreams = new Map<string, Windows>()
  readonly #tools = new Map<string, Windows>()
  /** The latest errors, a ring: `#nextError` is where the next one goes. */
  readonly #errors: RecentError[] = []
  #nextError = 0
  readonly #maxTools: number
  readonly #maxErrors: number
  readonly #now: () => number

  constructor (options: CallStatsOptions = {}) {
    this.#maxTools = options.maxTools ?? 1000
    this.#maxErrors = options.recentErrors ?? 100
    this.#now = options.now ?? Date.now
  }

  /**
   * An attempt on `upstream` ended after `ms`; `tool`: the tool's client-visible name (tools/call), `message`: why
   * it failed. Positional, so recording allocates nothing.
   */
  record (upstream: string, service: string, tool: string | undefined, method: string, outcome: CallOutcome, ms: number, message?: string): void {
    const now = this.#now()
    const failed = !NOT_ERRORS.has(outcome)
    const bucket = bucketOf(ms)
    this.#total.record(now, failed, bucket)
    let windows = this.#upstreams.get(upstream)
    if (windows === undefined) this.#upstreams.set(upstream, windows = new Windows(service))
    windows.record(now, failed, bucket)
    if (tool !== undefined) {
      let own = this.#tools.get(tool)
      if (own === undefined) {
        if (this.#tools.size >= this.#maxTools) this.#dropStalestTool()
        this.#tools.set(tool, own = new Windows(service))
      }
      own.record(now, failed, bucket)
    }
    if (!failed || this.#maxErrors === 0) return
    this.#errors[this.#nextError] = {
      at: new Date(now).toISOString(),
      upstream,
      service,
      ...(tool !== undefined ? { tool } : {}),
      method,
      outcome,
      message: message ?? (outcome === 'tool_error' ? 'the tool answered with isError: true' : outcome)
    }
    this.#nextError = (this.#nextError + 1) % this.#maxErrors
  }

  /** The figures of the last minute and the last 15 minutes: in total, or of one upstream (undefined: never called). */
  windows (upstream?: string): { minute: WindowFigures, quarter: WindowFigures } | undefined {
    const windows = upstream === undefined ? this.#total : this.#upstreams.get(upstream)
    if (windows === undefined) return undefined
    const now = this.#now()
    return { minute: figures(windows.minute.summary(now, QUANTILES), windows.minute.windowMs), quarter: figures(windows.quarter.summary(now, QUANTILES), windows.quarter.windowMs) }
  }

  /**
   * An upstream's last 10–20 s (the current 10 s slot and the one before): calls, error rate and median latency,
   * what the anomaly detector compares with the upstream's own baseline at each evaluation.
   */
  recent (upstream: string): { calls: number, errorRate: number, p50Ms: number } {
    const windows = this.#upstreams.get(upstream)
    if (windows === undefined) return { calls: 0, errorRate: 0, p50Ms: 0 }
    const { calls, errors, quantiles } = windows.minute.summary(this.#now(), [0.5], 2)
    return { calls, errorRate: calls === 0 ? 0 : errors / calls, p50Ms: quantiles[0] ?? 0 }
  }

  /** The `limit` tools called most over the last 15 minutes, with their figures. */
  topTools (limit: number): Array<{ name: string, service: string, minute: WindowFigures, quarter: WindowFigures }> {
    const now = this.#now()
    const ranked: Array<{ name: string, windows: Windows, calls: number }> = []
    for (const [name, windows] of this.#tools) {
      const { calls } = windows.quarter.summary(now, [])
      if (calls > 0) ranked.push({ name, windows, calls })
    }
    ranked.sort((a, b) => b.calls - a.calls || (a.name < b.name ? -1 : 1))
    return ranked.slice(0, limit).map(({ name, windows }) => ({
      name,
      service: windows.service,
      minute: figures(windows.minute.summary(now, QUANTILES), windows.minute.windowMs),
      quarter: figures(windows.quarter.summary(now, QUANTILES), windows.quarter.windowMs)
    }))
  }

  /** The latest errors, newest first. */
  recentErrors (limit = this.#maxErrors): RecentError[] {
    const ordered = [...this.#errors.slice(this.#nextError), ...this.#errors.slice(0, this.#nextError)]
    return ordered.slice(-limit).reverse()
  }

  /** An upstream that is gone: its figures go (its tools' stay until they are the stalest). */
  forget (upstream: string): void {
    this.#upstreams.delete(upstream)
  }

  /** Makes room for a new tool: the one called least recently goes (a scan, only when the table is full). */
  #dropStalestTool (): void {
    let stalest: string | undefined
    let at = Infinity
    for (const [name, windows] of this.#tools) {
      if (windows.lastAt < at) {
        at = windows.lastAt
        stalest = name
      }
    }
    if (stalest !== undefined) this.#tools.delete(stalest)
  }
}

function figures (summary: WindowSummary, windowMs: number): WindowFigures {
  const [p50 = 0, p95 = 0, p99 = 0] = summary.quantiles
  return {
    calls: summary.calls,
    errors: summary.errors,
    errorRate: summary.calls === 0 ? 0 : Math.round(summary.errors / summary.calls * 10_000) / 10_000,
    callsPerSec: Math.round(summary.calls / (windowMs / 1000) * 100) / 100,
    p50Ms: p50,
    p95Ms: p95,
    p99Ms: p99
  }
}
