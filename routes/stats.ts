import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { StatsQuery, StatsReply } from '../schemas/stats.js'
import { statsReport } from './stats-report.js'

/**
 * GET /stats: the gateway's recent calls as JSON (see stats-report.ts), for the dashboard, scripts and people.
 * Behind the Origin guard and authentication like /status.
 */

export default async function statsRoutes (fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const guarded = app.mcpAuth.enabled ? [app.mcpAuth.guardOrigin, app.mcpAuth.authenticate] : [app.mcpAuth.guardOrigin]

  app.get('/stats', { onRequest: guarded, schema: { querystring: StatsQuery, response: { 200: StatsReply } } }, async (request) =>
    statsReport(app, { tools: request.query.tools ?? 20, errors: request.query.errors ?? 20 }))
}
