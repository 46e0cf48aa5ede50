import type { Static } from 'typebox'
import type { UpstreamHealthReply } from '../schemas/status.js'
import type { Balancer, UpstreamFigures } from './balancer.js'
import type { ConcurrencyGates } from './balancing/concurrency.js'
import { LATENCY_WINDOW_MS } from './balancing/latency-window.js'
import type { UpstreamPool } from './upstream-pool.js'

/**
 * /upstream/health's view of each upstream: what the pool knows (its connection, its last check), what the balancer
 * knows (load, latency percentiles, circuit, ejection) and what the forwarder's gates hold (calls running and
 * queued), as one status — `active` (taking calls), `inactive` (disabled or drained) or `error` (down, connecting
 * after a failure, its circuit open, or ejected as an outlier; `reason` and `since` say why and since when).
 */

export type UpstreamHealthReport = Static<typeof UpstreamHealthReply>['upstreams'][number]

const IDLE: UpstreamFigures = Object.freeze({
  load: { inFlight: 0, latencyMs: 0, errorRate: 0, samples: 0 },
  latency: { p50Ms: 0, p95Ms: 0, p99Ms: 0, samples: 0, windowMs: LATENCY_WINDOW_MS },
  circuit: { state: 'closed' as const, failures: 0, opens: 0 },
  ejection: { ejected: false, ejections: 0 }
})

export function upstreamHealth (pool: UpstreamPool, balancer: Balancer, gates: ConcurrencyGates): UpstreamHealthReport[] {
  return pool.reports().map((report) => {
    const { load, latency, circuit, ejection } = balancer.figures?.(report.id) ?? IDLE
    const connection = pool.get(report.id)
    const lastCheck = connection?.lastCheck
    const status = !report.enabled || report.weight === 0
      ? 'inactive'
      : report.state === 'up' && circuit.state !== 'open' && !ejection.ejected ? 'active' : 'error'
    // Up but not taking calls: the reason is the breaker's or the outlier detection's.
    const reason = report.reason ?? (circuit.state === 'open'
      ? `circuit open after ${circuit.failures} failures in a row`
      : ejection.ejected ? `ejected: ${ejection.reason ?? 'outlier'}` : undefined)
    return {
      id: report.id,
      service: report.service,
      status,
      state: report.state,
      ...(reason !== undefined ? { reason } : {}),
      since: report.since,
      ...(lastCheck !== undefined ? { lastCheck: { ...lastCheck, at: new Date(lastCheck.at).toISOString() } } : {}),
      failedChecks: connection?.failedChecks ?? 0,
      latencyMs: Math.round(load.latencyMs * 10) / 10,
      latency,
      errorRate: Math.round(load.errorRate * 1000) / 1000,
      calls: load.samples,
      inFlight: load.inFlight,
      queue: gates.figures(report.id),
      circuit,
      ejection: {
        ejected: ejection.ejected,
        ...(ejection.until !== undefined ? { until: new Date(ejection.until).toISOString() } : {}),
        ...(ejection.reason !== undefined ? { reason: ejection.reason } : {}),
        ejections: ejection.ejections
      }
    }
  })
}
