import fp from 'fastify-plugin'
import { LegacySseTransport } from '../src/transport/legacy-sse.js'
import { StreamableHttpTransport } from '../src/transport/streamable-http.js'
import { WebSocketTransport } from '../src/transport/websocket.js'

/**
 * The client side of the MCP transports — Streamable HTTP (`/mcp`), legacy HTTP+SSE (`/sse`, `/messages`) and
 * WebSocket (`/ws`) — as `app.mcpTransports`, each serving the proxy's endpoint. The routes adapt Fastify's
 * requests to them; the transports hold the per-session streams, the engine the sessions.
 */

export interface GatewayTransports {
  readonly streamableHttp: StreamableHttpTransport
  readonly legacySse: LegacySseTransport
  readonly websocket: WebSocketTransport
}

declare module 'fastify' {
  interface FastifyInstance {
    mcpTransports: GatewayTransports
  }
}

/** Comment lines on idle streams, so proxies and clients do not time them out. */
const STREAM_KEEP_ALIVE = 15_000

export default fp(async function mcpGatewayTransports (app) {
  const endpoint = app.mcpProxy
  const { replayEvents, replayBytes, replayBytesTotal } = app.mcpConfig.sessions
  const limits = app.mcpConfig.limits
  const transports: GatewayTransports = {
    streamableHttp: new StreamableHttpTransport(endpoint, {
      keepAliveInterval: STREAM_KEEP_ALIVE,
      events: { maxEvents: replayEvents, maxBytes: replayBytes },
      replayBytesTotal,
      limits
    }),
    legacySse: new LegacySseTransport(endpoint, { keepAliveInterval: STREAM_KEEP_ALIVE, limits }),
    websocket: new WebSocketTransport(endpoint, { pingInterval: 2 * STREAM_KEEP_ALIVE, limits, maxClientBuffer: limits.maxClientBuffer, log: app.log })
  }
  app.decorate('mcpTransports', transports)
}, { name: 'mcp-gateway-transports', fastify: '5.x', dependencies: ['mcp-gateway-config', 'mcp-gateway-proxy'] })
