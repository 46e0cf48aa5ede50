import fp from 'fastify-plugin'
import { type Balancer, ServiceBalancer } from '../src/balancer.js'

/** Picks the replica of a service that serves each call, by the service's strategy (default: peak EWMA, power of two choices). */

declare module 'fastify' {
  interface FastifyInstance {
    mcpBalancer: Balancer
  }
}

export default fp(async function mcpGatewayBalancer (app) {
  const log = app.log.child({ component: 'circuit' })
  const ejectionLog = app.log.child({ component: 'outliers' })
  app.decorate('mcpBalancer', new ServiceBalancer(app.mcpRegistry, app.mcpHealth, {
    defaults: app.mcpConfig.balancer,
    circuit: app.mcpConfig.circuitBreaker,
    outliers: app.mcpConfig.outlierDetection,
    onEjection: (id, ejection) => {
      app.mcpMetrics.ejection(ejection.kind)
      ejectionLog.warn({ upstream: id, reason: ejection.reason, forMs: ejection.ms, ejections: ejection.ejections },
        'upstream ejected as an outlier: calls skip it for now')
    },
    onCircuit: (id, from, to) => {
      app.mcpMetrics.circuitTransition(to)
      if (to === 'open') log.warn({ upstream: id, from }, 'circuit open: the upstream failed its calls; calls skip it for now')
      else if (to === 'closed') log.info({ upstream: id }, 'circuit closed: the upstream answers again')
    }
  }))
}, { name: 'mcp-gateway-balancer', fastify: '5.x', dependencies: ['mcp-gateway-config', 'mcp-gateway-registry', 'mcp-gateway-health', 'mcp-gateway-metrics'] })
