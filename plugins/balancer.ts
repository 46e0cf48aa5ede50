import fp from 'fastify-plugin'
import { type Balancer, ServiceBalancer } from '../src/balancer.js'

/** Picks the replica of a service that serves each call, by the service's strategy (default: peak EWMA, power of two choices). */

declare module 'fastify' {
  interface FastifyInstance {
    mcpBalancer: Balancer
  }
}

export default fp(async function mcpGatewayBalancer (app) {
  app.decorate('mcpBalancer', new ServiceBalancer(app.mcpRegistry, app.mcpHealth, app.mcpConfig.balancer))
}, { name: 'mcp-gateway-balancer', fastify: '5.x', dependencies: ['mcp-gateway-config', 'mcp-gateway-registry', 'mcp-gateway-health'] })
