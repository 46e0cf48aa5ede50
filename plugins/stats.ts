import fp from 'fastify-plugin'
import { CallStats } from '../src/call-stats.js'

/**
 * Call statistics — per upstream, per tool and in total, calls, errors and latency percentiles over the last minute
 * and 15 minutes, and the latest errors — as `app.mcpStats`, fed by the proxy with every attempt on an upstream.
 * What /stats, the dashboard and the alerts read.
 */

declare module 'fastify' {
  interface FastifyInstance {
    mcpStats: CallStats
  }
}

export default fp(async function mcpGatewayStats (app) {
  const stats = new CallStats()
  const unsubscribe = app.mcpRegistry.onChange((change) => { if (change.type === 'removed') stats.forget(change.server.id) })
  app.decorate('mcpStats', stats)
  app.addHook('onClose', async () => { unsubscribe() })
}, { name: 'mcp-gateway-stats', fastify: '5.x', dependencies: ['mcp-gateway-registry'] })
