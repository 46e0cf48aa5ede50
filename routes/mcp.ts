import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { JsonRpcBody } from '../schemas/jsonrpc.js'
import type { HttpAnswer } from '../src/transport/streamable-http.js'

/**
 * `/mcp`: the MCP Streamable HTTP endpoint. POST carries client messages (answered with JSON, or SSE when the call
 * reports progress), GET opens the session's notification stream, DELETE ends the session. Every request passes the
 * Origin/Host guard first; every refusal is a JSON-RPC error body with the transport's HTTP status.
 */

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no'
}

export default async function mcpRoutes (fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const transport = app.mcpProxy.streamableHttp

  // MCP bodies are JSON only: without Fastify's text/plain parser, any other type is a 415 (as the spec's SDK does).
  app.removeContentTypeParser('text/plain')
  app.addHook('onRequest', app.mcpAuth.guardOrigin)
  app.setErrorHandler<FastifyError>(async (err, request, reply) => {
    if (typeof err.statusCode !== 'number' || err.statusCode >= 500) request.log.error({ err }, 'MCP request failed')
    return send(reply, transport.requestError(err, request.method, request.headers['content-type']))
  })

  app.post('/mcp', { schema: { body: JsonRpcBody } }, (request, reply) => {
    const answer = transport.post(request.headers, request.body)
    if ('kind' in answer) {
      send(reply, answer)
      return
    }
    return answer.then(a => send(reply, a))
  })

  app.get('/mcp', async (request, reply) => send(reply, transport.get(request.headers)))

  app.delete('/mcp', async (request, reply) => send(reply, transport.delete(request.headers)))

  // Answered before body parsing, so a PUT is a 405 whatever its body.
  const methodNotAllowed = async (request: FastifyRequest, reply: FastifyReply) =>
    send(reply, transport.requestError({ statusCode: 405, message: 'method not allowed' }, request.method))
  app.route({ method: ['PUT', 'PATCH'], url: '/mcp', onRequest: methodNotAllowed, handler: methodNotAllowed })
}

function send (reply: FastifyReply, answer: HttpAnswer): FastifyReply {
  if (answer.kind === 'json') return reply.code(answer.status).headers(answer.headers).type('application/json').send(answer.body)
  if (answer.kind === 'empty') return reply.code(answer.status).headers(answer.headers).send()
  reply.hijack()
  const raw = reply.raw
  raw.writeHead(answer.status, { ...SSE_HEADERS, ...answer.headers })
  raw.flushHeaders()
  answer.start({
    write: (chunk) => { if (!raw.writableEnded) raw.write(chunk) },
    end: () => { if (!raw.writableEnded) raw.end() },
    onClose: (listener) => { raw.once('close', listener) }
  })
  return reply
}
