import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import Type from 'typebox'
import { jsonRpcEndpoint, peerOf, sendAnswer } from './http-answer.js'

/**
 * The legacy HTTP+SSE transport (2024-11-05) for older clients: `GET /sse` opens a session and names its message
 * endpoint in an `endpoint` event; `POST /messages?sessionId=…` carries the client's messages, answered on the stream.
 */

const MessagesQuery = Type.Object({ sessionId: Type.Optional(Type.String()) })

export default async function legacySseRoutes (fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const transport = app.mcpTransports.legacySse

  await jsonRpcEndpoint(app, transport)

  app.get('/sse', async (request, reply) => {
    // The endpoint is announced as a path under the same prefix as this route, so an embedded gateway works.
    const base = (request.routeOptions.url ?? '/sse').slice(0, -'/sse'.length)
    return sendAnswer(reply, transport.open(base + '/messages', peerOf(request)))
  })

  app.post('/messages', { schema: { querystring: MessagesQuery } }, async (request, reply) => {
    return sendAnswer(reply, transport.post(request.query.sessionId, request.body, peerOf(request), request.headers))
  })
}
