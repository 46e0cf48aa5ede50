import type { Static } from 'typebox'
import type { FastifyInstance } from 'fastify'
import type { StatsReply } from '../schemas/stats.js'
import type { Alert } from '../src/alerts/alert-rules.js'
import type { WindowFigures } from '../src/call-stats.js'

/**
 * The /stats report — totals, every upstream (its status from /upstream/health beside its figures), the most called
 * tools and the latest errors — as /stats answers it and the dashboard's feed sends it. One pass over the upstreams
 * (a few thousand additions each).
 */

export type StatsReport = Static<typeof StatsReply>

const EMPTY: WindowFigures = Object.freeze({ calls: 0, errors: 0, errorRate: 0, callsPerSec: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0 })
const NO_WINDOWS = Object.freeze({ minute: EMPTY, quarter: EMPTY })

export function statsReport (app: FastifyInstance, limits: { tools: number, errors: number }): StatsReport {
  const stats = app.mcpStats
  const health = app.mcpProxy.upstreamHealth()
  const counts = { total: health.length, active: 0, inactive: 0, error: 0 }
  let inFlight = 0
  const upstreams = health.map((u) => {
    counts[u.status]++
    inFlight += u.inFlight
    return {
      id: u.id,
      service: u.service,
      status: u.status,
      state: u.state,
      ...(u.reason !== undefined ? { reason: u.reason } : {}),
      inFlight: u.inFlight,
      anomaly: anomalyOf(app, u.id),
      ...(stats.windows(u.id) ?? NO_WINDOWS)
    }
  })
  return {
    at: new Date().toISOString(),
    uptimeSec: Math.round(process.uptime()),
    totals: { ...(stats.windows() ?? NO_WINDOWS), inFlight, sessions: app.mcpProxy.sessions.size, upstreams: counts, ...cacheFigures(app) },
    connections: app.mcpProxy.sessions.connections(10),
    upstreams,
    tools: stats.topTools(limits.tools),
    recentErrors: stats.recentErrors(limits.errors),
    alerts: [...app.mcpAlerts.active(), ...app.mcpAlerts.resolved().slice(0, 20)].map(alertReport)
  }
}

function anomalyOf (app: FastifyInstance, id: string): { latency: number, errors: number } {
  const { latency, errors } = app.mcpAlerts.anomaly(id)
  return { latency, errors }
}

function cacheFigures (app: FastifyInstance): { cache?: StatsReport['totals']['cache'] } {
  const figures = app.mcpProxy.cache?.figures()
  if (figures === undefined) return {}
  const lookups = figures.hits + figures.misses
  return { cache: { ...figures, hitRate: lookups === 0 ? 0 : Math.round(figures.hits / lookups * 10_000) / 10_000 } }
}

function alertReport (alert: Alert): StatsReport['alerts'][number] {
  const iso = (ms: number | undefined) => ms === undefined ? undefined : new Date(ms).toISOString()
  return {
    rule: alert.rule,
    when: alert.when,
    upstream: alert.upstream,
    service: alert.service,
    state: alert.state,
    since: new Date(alert.since).toISOString(),
    ...(alert.firedAt !== undefined ? { firedAt: iso(alert.firedAt) } : {}),
    ...(alert.resolvedAt !== undefined ? { resolvedAt: iso(alert.resolvedAt) } : {}),
    value: alert.value,
    threshold: alert.threshold,
    message: alert.message
  }
}
