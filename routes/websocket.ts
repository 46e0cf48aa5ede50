import type { FastifyInstance } from 'fastify'
import { sendAnswer } from './http-answer.js'

/**
 * `/ws`: MCP over WebSocket (subprotocol `mcp`, one JSON-RPC message per text frame, one session per socket), and
 * the simple `{type, target, data}` envelope for clients without an MCP SDK. The Origin/Host guard and
 * authentication run on the upgrade request (a refused client gets the HTTP answer, never a socket), and an upgrade offering subprotocols other than `mcp` is refused with 400.
 */
export default async function websocketRoutes (app: FastifyInstance) {
  const transport = app.mcpTransports.websocket
  app.addHook('onRequest', app.mcpAuth.guardOrigin)
  if (app.mcpAuth.enabled) app.addHook('onRequest', app.mcpAuth.authenticate)
  app.addHook('onRequest', async (request, reply) => {
    const refusal = transport.refuseUpgrade(request.headers['sec-websocket-protocol'])
    if (refusal !== undefined) return sendAnswer(reply, refusal)
  })
  app.get('/ws', { websocket: true }, (socket, request) => transport.accept(socket, { address: request.ip, principal: request.principal }))
}
