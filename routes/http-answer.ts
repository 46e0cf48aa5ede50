import compress from '@fastify/compress'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { OutgoingHttpHeaders } from 'node:http'
import type { Peer } from '../src/client-session.js'
import { SSE_KEEP_ALIVE } from '../src/sse.js'
import type { HttpAnswer, RefusedRequest } from '../src/transport/serve.js'

/**
 * What the MCP HTTP routes share; not a route itself. `sendAnswer` writes a transport's answer to a Fastify reply:
 * JSON, an empty status, or an SSE stream (the reply is hijacked and the transport writes to the socket as messages
 * come). `jsonRpcEndpoint` sets up an encapsulated route plugin the way every JSON-RPC endpoint needs.
 */

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no'
}

/** Who is at the other end of a request: its address, and the principal authentication found. */
export function peerOf (request: FastifyRequest): Peer {
  return { address: request.ip, principal: request.principal }
}

export function sendAnswer (reply: FastifyReply, answer: HttpAnswer): FastifyReply {
  if (answer.kind === 'json') return reply.code(answer.status).headers(answer.headers).type('application/json').send(answer.body)
  if (answer.kind === 'empty') return reply.code(answer.status).headers(answer.headers).send()
  reply.hijack()
  const raw = reply.raw
  const limit = reply.server.mcpConfig.limits.maxClientBuffer
  // Headers the hooks set (CORS, security headers) are kept: a hijacked reply would otherwise drop them.
  raw.writeHead(answer.status, { ...reply.getHeaders() as OutgoingHttpHeaders, ...SSE_HEADERS, ...answer.headers })
  raw.flushHeaders()
  answer.start({
    write: (chunk) => {
      if (raw.writableEnded || raw.destroyed) return
      // A client that stopped reading would make the gateway hold everything sent to it: it loses the stream.
      if (raw.writableLength > limit) {
        reply.log.info({ buffered: raw.writableLength, limit }, 'a client stopped reading its event stream; closed it (limits.maxClientBuffer)')
        raw.destroy()
        return
      }
      raw.write(chunk)
    },
    keepAlive: () => { if (!raw.writableEnded && !raw.destroyed && raw.writableLength === 0) raw.write(SSE_KEEP_ALIVE) },
    end: () => { if (!raw.writableEnded) raw.end() },
    onClose: (listener) => { raw.once('close', () => listener(raw.writableFinished)) }
  })
  return reply
}

/**
 * JSON bodies only (without Fastify's text/plain parser another type is a 415, as the spec's SDK does), read with
 * the nesting limit (a body that is not JSON, or too deep, reaches the transport as the InvalidMessage it answers
 * with its id); compressed bodies (gzip, deflate, br) decoded by @fastify/compress, any other Content-Encoding a 415
 * (Fastify's bodyLimit bounds what they decode to); the Origin/Host guard first, then authentication (before the body
 * is read); every refusal a JSON-RPC error body.
 */
export async function jsonRpcEndpoint (app: FastifyInstance, transport: JsonRpcTransport): Promise<void> {
  app.removeContentTypeParser(['text/plain', 'application/json'])
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: app.mcpConfig.bodyLimit }, (request, body, done) => {
    done(null, transport.parseBody(body as string))
  })
  await app.register(compress, { globalCompression: false, globalDecompression: true, requestEncodings: ['gzip', 'deflate', 'br', 'identity'] })
  app.addHook('onRequest', app.mcpAuth.guardOrigin)
  if (app.mcpAuth.enabled) app.addHook('onRequest', app.mcpAuth.authenticate)
  app.setErrorHandler<FastifyError>(async (err, request, reply) => {
    if (typeof err.statusCode !== 'number' || err.statusCode >= 500) request.log.error({ err }, 'MCP request failed')
    return sendAnswer(reply, transport.requestError(err, request.method, request.headers['content-type'], request.headers['content-encoding']))
  })
}

/** What a JSON-RPC route needs of its transport: reading bodies, and answering refusals. */
export interface JsonRpcTransport {
  /** The parsed body, or what the transport answers a body that is not JSON (or is nested too deep) with. */
  parseBody (text: string): unknown
  requestError (err: RefusedRequest, method?: string, contentType?: string, encoding?: string): HttpAnswer
}
