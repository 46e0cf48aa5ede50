import fp from 'fastify-plugin'
import { RateLimiter } from '../src/limits/rate-limiter.js'

/**
 * The rate limits (`rateLimit`) as `app.mcpRateLimit` (null when none are configured): the proxy counts JSON-RPC
 * requests with it on every transport, the edge plugin counts HTTP requests per address with it, so both share one
 * set of counters (and one Redis connection). Closed last, after the proxy.
 */

declare module 'fastify' {
  interface FastifyInstance {
    mcpRateLimit: RateLimiter | null
  }
}

export default fp(async function mcpGatewayRateLimit (app) {
  const settings = app.mcpConfig.rateLimit
  const limiter = settings === null ? null : new RateLimiter({ settings, log: app.log, onRefused: (limit) => app.mcpMetrics.rateLimited(limit) })
  app.decorate('mcpRateLimit', limiter)
  if (limiter !== null) app.addHook('onClose', () => limiter.close())
}, { name: 'mcp-gateway-rate-limit', fastify: '5.x', dependencies: ['mcp-gateway-config', 'mcp-gateway-metrics'] })
