import fp from 'fastify-plugin'
import { resolveConfig } from '../src/config/load.js'
import { isResolvedConfig } from '../src/config/normalize.js'
import type { GatewayConfig } from '../src/config/types.js'

/**
 * The gateway's configuration, validated once and frozen. Accepts what `loadConfigFile`/`resolveConfig` produced
 * (the standalone server) or a plain object in the config file's shape (an embedding app); an invalid object fails
 * registration with MCPGW_ERR_CONFIG_INVALID naming every field at fault.
 */

declare module 'fastify' {
  interface FastifyInstance {
    mcpConfig: GatewayConfig
  }
}

export interface ConfigPluginOptions {
  config?: GatewayConfig | Record<string, unknown>
}

export default fp(async function mcpGatewayConfig (app, opts: ConfigPluginOptions) {
  const config = isResolvedConfig(opts.config)
    ? opts.config
    : resolveConfig(opts.config ?? {}, { source: 'the plugin options', envOverrides: false })
  app.decorate('mcpConfig', config)
}, { name: 'mcp-gateway-config', fastify: '5.x' })
