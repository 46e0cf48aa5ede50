import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { gateway, type GatewayOptions } from './app.js'

/**
 * The library entry. `mcpGateway` is the whole gateway as one encapsulated plugin for an existing Fastify app:
 * `app.register(mcpGateway, { prefix: '/gw', config })` — its routes, hooks, decorators and error handlers stay
 * inside. The plugins, engine classes and types are exported for apps that compose their own gateway.
 */

export const mcpGateway = fp(async function mcpGateway (app: FastifyInstance, opts: GatewayOptions) {
  await gateway(app, opts)
}, { name: 'mcp-gateway', fastify: '5.x', encapsulate: true })

export default mcpGateway

export { buildApp, gateway, type GatewayOptions } from './app.js'
export { default as balancerPlugin } from '../plugins/balancer.js'
export { default as configPlugin } from '../plugins/config.js'
export { default as healthPlugin } from '../plugins/health.js'
export { default as metricsPlugin, type GatewayMetrics } from '../plugins/metrics.js'
export { default as proxyPlugin } from '../plugins/proxy.js'
export { default as rateLimitPlugin } from '../plugins/rate-limit.js'
export { default as registryPlugin } from '../plugins/registry.js'
export { default as securityPlugin, type GatewayAuth } from '../plugins/security.js'
export { default as statsPlugin } from '../plugins/stats.js'
export { default as tracingPlugin, tracingWanted } from '../plugins/tracing.js'
export { default as transportsPlugin, type GatewayTransports } from '../plugins/transports.js'

export { loadConfigFile, resolveConfig, type ConfigOverrides } from './config/load.js'
export type { GatewayConfig, UpstreamDefinition } from './config/types.js'
export { McpProxy, type CallContext, type UpstreamReport } from './proxy.js'
export { ANONYMOUS, type ClientContext, type Principal } from './client-context.js'
export type { CallHooks, ForwardedCall } from './forwarder.js'
export { Registry, type RegistryChange } from './registry.js'
export { HealthMonitor, type UpstreamHealth } from './health.js'
export { ServiceBalancer, type Balancer } from './balancer.js'
export { UpstreamLoad, type LoadFigures } from './balancing/load.js'
export type { StrategyName } from './balancing/strategies.js'
export { RateLimiter, type RateLimitStatus } from './limits/rate-limiter.js'
export { CallStats, type RecentError, type WindowFigures } from './call-stats.js'
export { LiveCatalog, type CatalogSource, type ListName } from './catalog/live-catalog.js'
export { UpstreamConnection, type UpstreamState } from './upstream/connection.js'
export { HttpSession } from './upstream/http.js'
export { HttpUpstream } from './upstream/http-upstream.js'
export { StdioSession } from './upstream/stdio.js'
export { SseSession } from './upstream/sse.js'
export { WebSocketSession } from './upstream/websocket.js'
export { UpstreamSession } from './upstream/session.js'
export * from './errors.js'
export { upstreamFailure } from './upstream/failure.js'
export { SUPPORTED_PROTOCOL_VERSIONS, LATEST_PROTOCOL_VERSION } from './protocol.js'
