import type { FastifyInstance } from 'fastify'

/** Prometheus text exposition of the gateway's own registry. */
export default async function metricsRoutes (app: FastifyInstance) {
  const registry = app.mcpMetrics.registry
  app.get('/metrics', async (request, reply) => {
    reply.type(registry.contentType)
    return registry.metrics()
  })
}
