import { globMatcher } from '../naming.js'

/**
 * Alert rules (`alerts` in the config), judged per upstream at each evaluation: `upstream_down` (its status is
 * error: down, reconnecting, its circuit open or ejected), `error_rate` and `latency_p99` over the last minute past
 * `over`, `anomaly` (a latency or error-rate score past `over`, see anomaly.ts). A condition that holds for `for` ms
 * fires the alert once; it resolves once when the condition clears. Each transition is told once (`onTransition`):
 * repeated evaluations of a firing alert tell nothing, so a webhook hears of it once and of its end once.
 */

export type AlertCondition = 'upstream_down' | 'error_rate' | 'latency_p99' | 'anomaly'

export interface AlertRule {
  readonly name: string
  readonly when: AlertCondition
  /** The threshold (error rate 0..1, ms, score); unused by upstream_down. */
  readonly over: number
  /** How long the condition must hold before the alert fires (ms). */
  readonly forMs: number
  /** Webhook ids told of it. */
  readonly notify: readonly string[]
  /** Globs on upstream ids this rule watches (empty: all). */
  readonly upstreams: readonly string[]
  /** Calls in the minute the rate and latency conditions need (a quiet minute says nothing). */
  readonly minCalls: number
}

/** What an evaluation knows of one upstream. */
export interface UpstreamObservation {
  readonly id: string
  readonly service: string
  readonly status: 'active' | 'inactive' | 'error'
  readonly reason: string | undefined
  readonly calls: number
  readonly errorRate: number
  readonly p99Ms: number
  readonly anomaly: { readonly latency: number, readonly errors: number }
}

export interface Alert {
  /** rule name + upstream: the same alert across evaluations. */
  readonly key: string
  readonly rule: string
  readonly when: AlertCondition
  readonly upstream: string
  readonly service: string
  state: 'pending' | 'firing' | 'resolved'
  /** When the condition started holding (ms since the epoch). */
  since: number
  firedAt?: number
  resolvedAt?: number
  /** The value that made it hold, and the threshold. */
  value: number
  readonly threshold: number
  message: string
  readonly notify: readonly string[]
}

export type AlertTransition = 'firing' | 'resolved'

export class AlertRules {
  readonly #active = new Map<string, Alert>()
  readonly #recent: Alert[] = []
  readonly #matchers: Array<(id: string) => boolean>

  constructor (
    readonly rules: readonly AlertRule[],
    private readonly onTransition: (alert: Alert, transition: AlertTransition) => void,
    private readonly keepResolved = 50
  ) {
    this.#matchers = rules.map(rule => rule.upstreams.length === 0 ? () => true : globMatcher(rule.upstreams))
  }

  /** Judges every rule on every upstream observed at `now`; upstreams not observed (removed) resolve their alerts. */
  evaluate (now: number, observations: readonly UpstreamObservation[]): void {
    const seen = new Set<string>()
    this.rules.forEach((rule, i) => {
      const matches = this.#matchers[i] as (id: string) => boolean
      for (const upstream of observations) {
        if (!matches(upstream.id)) continue
        const key = `${rule.name}\u0000${upstream.id}`
        seen.add(key)
        const holding = holds(rule, upstream)
        const alert = this.#active.get(key)
        if (holding === undefined) {
          if (alert !== undefined) this.#resolve(key, alert, now)
          continue
        }
        if (alert === undefined) {
          const created: Alert = {
            key,
            rule: rule.name,
            when: rule.when,
            upstream: upstream.id,
            service: upstream.service,
            state: 'pending',
            since: now,
            value: holding.value,
            threshold: rule.over,
            message: holding.message,
            notify: rule.notify
          }
          this.#active.set(key, created)
          if (rule.forMs === 0) this.#fire(created, now)
          continue
        }
        alert.value = holding.value
        alert.message = holding.message
        if (alert.state === 'pending' && now - alert.since >= rule.forMs) this.#fire(alert, now)
      }
    })
    for (const [key, alert] of this.#active) if (!seen.has(key)) this.#resolve(key, alert, now)
  }

  /** Alerts pending or firing, firing first. */
  active (): Alert[] {
    return [...this.#active.values()].sort((a, b) => (a.state === b.state ? a.since - b.since : a.state === 'firing' ? -1 : 1))
  }

  /** Alerts that fired and resolved, newest first. */
  resolved (): Alert[] {
    return [...this.#recent].reverse()
  }

  #fire (alert: Alert, now: number): void {
    alert.state = 'firing'
    alert.firedAt = now
    this.onTransition(alert, 'firing')
  }

  #resolve (key: string, alert: Alert, now: number): void {
    this.#active.delete(key)
    // A pending alert that never fired ends silently: nobody was told of it.
    if (alert.state !== 'firing') return
    alert.state = 'resolved'
    alert.resolvedAt = now
    this.#recent.push(alert)
    if (this.#recent.length > this.keepResolved) this.#recent.shift()
    this.onTransition(alert, 'resolved')
  }
}

/** Whether `rule` holds for `upstream`, with the value and a sentence saying so. */
function holds (rule: AlertRule, upstream: UpstreamObservation): { value: number, message: string } | undefined {
  switch (rule.when) {
    case 'upstream_down':
      return upstream.status === 'error' ? { value: 1, message: `upstream ${upstream.id} is not taking calls: ${upstream.reason ?? 'error'}` } : undefined
    case 'error_rate':
      return upstream.calls >= rule.minCalls && upstream.errorRate > rule.over
        ? { value: upstream.errorRate, message: `upstream ${upstream.id}: ${(upstream.errorRate * 100).toFixed(1)}% of its calls failed in the last minute (over ${(rule.over * 100).toFixed(1)}%)` }
        : undefined
    case 'latency_p99':
      return upstream.calls >= rule.minCalls && upstream.p99Ms > rule.over
        ? { value: upstream.p99Ms, message: `upstream ${upstream.id}: p99 latency ${Math.round(upstream.p99Ms)} ms in the last minute (over ${rule.over} ms)` }
        : undefined
    case 'anomaly': {
      const { latency, errors } = upstream.anomaly
      const score = Math.max(latency, errors)
      if (score <= rule.over) return undefined
      const what = latency >= errors ? 'latency' : 'error rate'
      return { value: score, message: `upstream ${upstream.id}: its ${what} is anomalous (score ${score.toFixed(1)} over ${rule.over}) against its own baseline` }
    }
  }
}
