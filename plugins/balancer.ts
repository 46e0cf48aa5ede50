import fp from 'fastify-plugin'
import { type Balancer, RoundRobinBalancer } from '../src/balancer.js'

/** Picks the replica of a service that serves each call (round-robin over the replicas that are up). */

declare module 'fastify' {
  interface FastifyInstance {
    mcpBalancer: Balancer
  }
}

export default fp(async function mcpGatewayBalancer (app) {
  app.decorate('mcpBalancer', new RoundRobinBalancer(app.mcpRegistry, app.mcpHealth))
}, { name: 'mcp-gateway-balancer', fastify: '5.x', dependencies: ['mcp-gateway-registry', 'mcp-gateway-health'] })
