import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import websocket from '@fastify/websocket'
import Fastify, { type FastifyHttpOptions, type FastifyInstance, type FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Server } from 'node:http'
import alertsPlugin from '../plugins/alerts.js'
import balancerPlugin from '../plugins/balancer.js'
import configPlugin from '../plugins/config.js'
import edgePlugin from '../plugins/edge.js'
import healthPlugin from '../plugins/health.js'
import metricsPlugin from '../plugins/metrics.js'
import overloadPlugin from '../plugins/overload.js'
import proxyPlugin from '../plugins/proxy.js'
import rateLimitPlugin from '../plugins/rate-limit.js'
import statsPlugin from '../plugins/stats.js'
import tracingPlugin from '../plugins/tracing.js'
import registryPlugin from '../plugins/registry.js'
import securityPlugin from '../plugins/security.js'
import transportsPlugin from '../plugins/transports.js'
import adminRoutes from '../routes/admin.js'
import legacySseRoutes from '../routes/legacy-sse.js'
import mcpRoutes from '../routes/mcp.js'
import metricsRoutes from '../routes/metrics.js'
import oauthMetadataRoutes from '../routes/oauth-metadata.js'
import restRoutes from '../routes/rest.js'
import dashboardRoutes from '../routes/dashboard.js'
import statsRoutes from '../routes/stats.js'
import statusRoutes from '../routes/status.js'
import websocketRoutes from '../routes/websocket.js'
import type { GatewayConfig } from './config/types.js'
import { SUPPORTED_PROTOCOL_VERSIONS } from './protocol.js'
import { MCP_SUBPROTOCOL } from './transport/websocket.js'
import { PACKAGE } from './version.js'

/**
 * Composition: the plugins in dependency order, then the routes. `gateway` is the plain plugin function; entry
 * points wrap it (src/index.ts encapsulated for embedding, `buildApp` at the root for the standalone server and
 * tests) so that `fp` never touches the same function twice.
 */

export interface GatewayOptions {
  /** A config-file-shaped object, or the result of loadConfigFile/resolveConfig. */
  config?: GatewayConfig | Record<string, unknown>
  /** false: plugins and decorators only (the programmatic API), no HTTP routes. */
  routes?: boolean
}

/**
 * What goes wrong on a client's WebSocket: a frame ws refuses (too large, malformed) or a dropped connection is the
 * client's doing, logged briefly at info — one line per socket, no stack, so a client cannot flood the log at error.
 * Anything else is a fault of ours and is logged as an error. The socket is closed either way.
 */
function socketError (error: Error & { code?: string }, socket: { terminate (): void }, request: FastifyRequest): void {
  const code = error.code
  if (typeof code === 'string' && (code.startsWith('WS_ERR_') || code === 'ECONNRESET' || code === 'EPIPE')) {
    request.log.info({ code, reason: error.message }, 'WebSocket client connection failed; closed')
  } else {
    request.log.error({ err: error }, 'WebSocket connection failed; closed')
  }
  socket.terminate()
}

export async function gateway (app: FastifyInstance, opts: GatewayOptions): Promise<void> {
  // Strict TypeBox validation without type coercion: a JSON-RPC id must come back exactly as the client sent it.
  app.setValidatorCompiler(TypeBoxValidatorCompiler)
  await app.register(configPlugin, { config: opts.config })
  await app.register(metricsPlugin)
  await app.register(securityPlugin)
  await app.register(registryPlugin)
  await app.register(healthPlugin)
  await app.register(balancerPlugin)
  await app.register(rateLimitPlugin)
  await app.register(statsPlugin)
  await app.register(tracingPlugin)
  await app.register(proxyPlugin)
  await app.register(alertsPlugin)
  if (opts.routes === false) return
  // A host app that already has @fastify/websocket keeps its own; registering it twice would handle upgrades twice.
  // MCP over WebSocket speaks subprotocol "mcp": ws would otherwise accept whichever subprotocol is offered first.
  // Registered before the edge: its onRequest hook marks upgrade requests so that an upgrade refused by an edge hook
  // (the per-address rate limit) has its socket closed after the answer, instead of left open.
  if (!app.hasDecorator('websocketServer')) {
    await app.register(websocket, {
      options: { maxPayload: 4 * 1024 * 1024, handleProtocols: (protocols: Set<string>) => protocols.has(MCP_SUBPROTOCOL) ? MCP_SUBPROTOCOL : false },
      errorHandler: socketError
    })
  }
  await app.register(edgePlugin)
  await app.register(overloadPlugin)
  await app.register(transportsPlugin)
  await app.register(mcpRoutes)
  await app.register(legacySseRoutes)
  await app.register(websocketRoutes)
  await app.register(restRoutes)
  await app.register(statusRoutes, { version: PACKAGE.version, startedAt: new Date(), protocolVersions: SUPPORTED_PROTOCOL_VERSIONS })
  await app.register(statsRoutes)
  if (app.mcpConfig.dashboard.enabled) await app.register(dashboardRoutes)
  if (app.mcpConfig.metrics.enabled) await app.register(metricsRoutes)
  if (app.mcpAuth.adminEnabled) await app.register(adminRoutes)
  await app.register(oauthMetadataRoutes)
}

/** Server options the standalone gateway uses: explicit timeouts, SDK-sized bodies, 503 while closing. */
export const SERVER_OPTIONS = {
  bodyLimit: 4 * 1024 * 1024,
  connectionTimeout: 0,
  keepAliveTimeout: 72_000,
  requestTimeout: 120_000,
  return503OnClosing: true,
  forceCloseConnections: 'idle'
} as const satisfies FastifyHttpOptions<Server>

/** A Fastify instance with the gateway at its root, so `app.mcpProxy` and the other decorators are reachable. */
export async function buildApp (options: GatewayOptions, fastifyOptions: FastifyHttpOptions<Server> = {}): Promise<FastifyInstance> {
  const app = Fastify({ ...SERVER_OPTIONS, ...fastifyOptions })
  await app.register(fp(async function mcpGatewayRoot (instance: FastifyInstance, opts: GatewayOptions) {
    await gateway(instance, opts)
  }, { name: 'mcp-gateway', fastify: '5.x' }), options)
  return app
}
