import fp from 'fastify-plugin'
import { HealthMonitor } from '../src/health.js'

/**
 * Upstream health: the state every upstream is in, as its connection reports it, mirrored into the
 * `upstream_up` gauge. The balancer reads it to pick only replicas that are up.
 */

declare module 'fastify' {
  interface FastifyInstance {
    mcpHealth: HealthMonitor
  }
}

export default fp(async function mcpGatewayHealth (app) {
  const health = new HealthMonitor()
  const metrics = app.mcpMetrics
  const unsubscribe = health.onChange((current, previous) => {
    metrics.upstreamUp(current.id, current.service, current.state === 'stopped' ? undefined : current.state === 'up')
    if (current.state !== previous?.state) metrics.upstreamState(current.state)
  })
  app.decorate('mcpHealth', health)
  app.addHook('onClose', async () => { unsubscribe() })
}, { name: 'mcp-gateway-health', fastify: '5.x', dependencies: ['mcp-gateway-registry', 'mcp-gateway-metrics'] })
