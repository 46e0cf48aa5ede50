import type { FastifyInstance } from 'fastify'

/**
 * `/ws`: MCP over WebSocket (subprotocol `mcp`, one JSON-RPC message per text frame, one session per socket), and
 * the simple `{type, target, data}` envelope for clients without an MCP SDK. The Origin/Host guard runs on the
 * upgrade request.
 */
export default async function websocketRoutes (app: FastifyInstance) {
  const transport = app.mcpTransports.websocket
  app.addHook('onRequest', app.mcpAuth.guardOrigin)
  app.get('/ws', { websocket: true }, (socket, request) => transport.accept(socket, { address: request.ip }))
}
