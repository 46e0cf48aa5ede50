import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { jsonRpcEndpoint, peerOf, sendAnswer } from './http-answer.js'

/**
 * `/mcp`: the MCP Streamable HTTP endpoint. POST carries client messages (answered with JSON, or SSE when the call
 * reports progress), GET opens the session's notification stream, DELETE ends the session. Every request passes the
 * Origin/Host guard first; every refusal is a JSON-RPC error body with the transport's HTTP status.
 */

export default async function mcpRoutes (fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const transport = app.mcpTransports.streamableHttp

  await jsonRpcEndpoint(app, transport)

  // The body is checked by the transport (one validator for every transport), not by a route schema.
  app.post('/mcp', (request, reply) => {
    const answer = transport.post(request.headers, request.body, peerOf(request))
    if ('kind' in answer) {
      sendAnswer(reply, answer)
      return
    }
    return answer.then(a => sendAnswer(reply, a))
  })

  app.get('/mcp', async (request, reply) => sendAnswer(reply, transport.get(request.headers, peerOf(request))))

  app.delete('/mcp', async (request, reply) => sendAnswer(reply, transport.delete(request.headers, peerOf(request))))

  // Answered before body parsing, so a PUT is a 405 whatever its body.
  const methodNotAllowed = async (request: FastifyRequest, reply: FastifyReply) =>
    sendAnswer(reply, transport.requestError({ statusCode: 405, message: 'method not allowed' }, request.method))
  app.route({ method: ['PUT', 'PATCH'], url: '/mcp', onRequest: methodNotAllowed, handler: methodNotAllowed })
}
