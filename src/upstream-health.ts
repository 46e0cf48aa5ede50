import type { Balancer } from './balancer.js'
import type { CircuitReport } from './balancing/circuit.js'
import type { ConcurrencyGates } from './balancing/concurrency.js'
import type { UpstreamPool } from './upstream-pool.js'

/**
 * /upstream/health's view of each upstream: what the pool knows (its connection, its last check), what the balancer
 * knows (load, circuit) and what the forwarder's gates hold (calls running and queued), as one status — `active`
 * (taking calls), `inactive` (disabled or drained) or `error` (down, connecting after a failure, or its circuit open).
 */

export interface UpstreamHealthReport {
  id: string
  service: string
  status: 'active' | 'inactive' | 'error'
  /** The connection's state (up, down, connecting, disabled, …). */
  state: string
  reason?: string
  since: string
  lastCheck?: string
  /** Peak EWMA of call latency, ms. */
  latencyMs: number
  /** Share of recent calls that failed, 0..1. */
  errorRate: number
  /** Calls measured since start. */
  calls: number
  inFlight: number
  queue: { running: number, queued: number }
  circuit: CircuitReport
}

const CLOSED: CircuitReport = Object.freeze({ state: 'closed', failures: 0, opens: 0 })
const IDLE = Object.freeze({ inFlight: 0, latencyMs: 0, errorRate: 0, samples: 0 })

export function upstreamHealth (pool: UpstreamPool, balancer: Balancer, gates: ConcurrencyGates): UpstreamHealthReport[] {
  return pool.reports().map((report) => {
    const figures = balancer.figures?.(report.id)
    const circuit = figures?.circuit ?? CLOSED
    const load = figures?.load ?? IDLE
    const status = !report.enabled || report.weight === 0 ? 'inactive' : report.state === 'up' && circuit.state !== 'open' ? 'active' : 'error'
    const lastCheck = pool.get(report.id)?.lastCheck
    return {
      id: report.id,
      service: report.service,
      status,
      state: report.state,
      ...(report.reason !== undefined ? { reason: report.reason } : {}),
      since: report.since,
      ...(lastCheck !== undefined ? { lastCheck: new Date(lastCheck).toISOString() } : {}),
      latencyMs: Math.round(load.latencyMs * 10) / 10,
      errorRate: Math.round(load.errorRate * 1000) / 1000,
      calls: load.samples,
      inFlight: load.inFlight,
      queue: gates.figures(report.id),
      circuit
    }
  })
}
