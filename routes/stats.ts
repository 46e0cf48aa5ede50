import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { StatsQuery, StatsReply } from '../schemas/stats.js'
import type { WindowFigures } from '../src/call-stats.js'

/**
 * GET /stats: the gateway's recent calls as JSON — totals, every upstream (its status from /upstream/health beside
 * its figures), the most called tools and the latest errors; for the dashboard, scripts and people. Behind the
 * Origin guard and authentication like /status. One pass over the upstreams (a few thousand additions each).
 */

const EMPTY: WindowFigures = Object.freeze({ calls: 0, errors: 0, errorRate: 0, callsPerSec: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0 })
const NO_WINDOWS = Object.freeze({ minute: EMPTY, quarter: EMPTY })

export default async function statsRoutes (fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const guarded = app.mcpAuth.enabled ? [app.mcpAuth.guardOrigin, app.mcpAuth.authenticate] : [app.mcpAuth.guardOrigin]

  app.get('/stats', { onRequest: guarded, schema: { querystring: StatsQuery, response: { 200: StatsReply } } }, async (request) => {
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
        ...(stats.windows(u.id) ?? NO_WINDOWS)
      }
    })
    return {
      at: new Date().toISOString(),
      uptimeSec: Math.round(process.uptime()),
      totals: { ...(stats.windows() ?? NO_WINDOWS), inFlight, sessions: app.mcpProxy.sessions.size, upstreams: counts },
      upstreams,
      tools: stats.topTools(request.query.tools ?? 20),
      recentErrors: stats.recentErrors(request.query.errors ?? 20)
    }
  })
}
