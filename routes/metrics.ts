import type { FastifyInstance } from 'fastify'

/** Prometheus text exposition of the gateway's own registry; behind authentication when `auth` is configured. */
export default async function metricsRoutes (app: FastifyInstance) {
  const registry = app.mcpMetrics.registry
  app.addHook('onRequest', app.mcpAuth.guardOrigin)
  // Scrapers on a trusted network may be let in without credentials (auth.openMetrics).
  if (app.mcpAuth.enabled && app.mcpConfig.auth?.openMetrics !== true) app.addHook('onRequest', app.mcpAuth.authenticate)
  app.get('/metrics', async (request, reply) => {
    reply.type(registry.contentType)
    return registry.metrics()
  })
}
