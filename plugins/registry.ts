import fp from 'fastify-plugin'
import { Registry } from '../src/registry.js'

/**
 * The upstream registry: the configured servers plus runtime changes (admin API), persisted to
 * `registryFile` when one is configured. Other plugins subscribe to its changes.
 */

declare module 'fastify' {
  interface FastifyInstance {
    mcpRegistry: Registry
  }
}

export default fp(async function mcpGatewayRegistry (app) {
  const config = app.mcpConfig
  const registry = new Registry(config.servers, {
    defaults: config.upstreamDefaults,
    file: config.registryFile,
    log: app.log
  })
  await registry.load()
  app.decorate('mcpRegistry', registry)
  app.addHook('onClose', () => registry.flush())
}, { name: 'mcp-gateway-registry', fastify: '5.x', dependencies: ['mcp-gateway-config'] })
