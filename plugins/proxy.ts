import fp from 'fastify-plugin'
import { McpProxy, type ProxyObserver } from '../src/proxy.js'
import { PACKAGE } from '../src/version.js'

/**
 * The proxy: upstream connections (one undici pool per HTTP upstream, one process per stdio upstream), client
 * sessions and the catalog, as `app.mcpProxy` — usable with no HTTP at all (`app.mcpProxy.callTool(...)`).
 * Upstreams connect when the app is ready; shutdown ends client streams first so in-flight requests can drain,
 * then closes every upstream.
 */

declare module 'fastify' {
  interface FastifyInstance {
    mcpProxy: McpProxy
  }
}

export default fp(async function mcpGatewayProxy (app) {
  const metrics = app.mcpMetrics
  const stats = app.mcpStats
  // Every attempt on an upstream goes to the metrics and to the statistics.
  const observer: ProxyObserver = {
    ...metrics,
    upstreamCall (server, method, outcome, seconds, service, tool, message, code) {
      metrics.upstreamCall(server, method, outcome, seconds, code)
      stats.record(server, service, tool, method, outcome, seconds * 1000, message)
    },
    // Timing every client request costs a promise each: only when the metrics are on.
    serverOperation: app.mcpConfig.metrics.enabled ? metrics.serverOperation : undefined
  }
  const proxy = new McpProxy({
    config: app.mcpConfig,
    registry: app.mcpRegistry,
    health: app.mcpHealth,
    balancer: app.mcpBalancer,
    log: app.log,
    version: PACKAGE.version,
    observer,
    limiter: app.mcpRateLimit,
    tracing: app.mcpTracing
  })
  app.decorate('mcpProxy', proxy)
  // Fastify fails start-up when an onReady hook outlives its plugin timeout: the wait for upstreams ends well before
  // it, so an upstream that hangs is reported down instead of failing the whole gateway.
  const pluginTimeout = app.initialConfig.pluginTimeout ?? 10_000
  const wait = pluginTimeout > 0 ? Math.min(app.mcpConfig.startupWait, Math.floor(pluginTimeout * 0.8)) : app.mcpConfig.startupWait
  app.addHook('onReady', () => proxy.start(wait))
  app.addHook('preClose', async () => { proxy.beginShutdown() })
  app.addHook('onClose', () => proxy.close())
}, {
  name: 'mcp-gateway-proxy',
  fastify: '5.x',
  dependencies: [
    'mcp-gateway-config', 'mcp-gateway-registry', 'mcp-gateway-balancer', 'mcp-gateway-health', 'mcp-gateway-metrics',
    'mcp-gateway-rate-limit', 'mcp-gateway-stats', 'mcp-gateway-tracing'
  ]
})
