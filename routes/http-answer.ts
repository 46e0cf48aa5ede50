import type { FastifyReply } from 'fastify'
import type { HttpAnswer } from '../src/transport/streamable-http.js'

/**
 * Writes a transport's answer to a Fastify reply: JSON, an empty status, or an SSE stream (the reply is hijacked
 * and the transport writes to the socket as messages come). Shared by the MCP routes; it is not a route itself.
 */

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no'
}

export function sendAnswer (reply: FastifyReply, answer: HttpAnswer): FastifyReply {
  if (answer.kind === 'json') return reply.code(answer.status).headers(answer.headers).type('application/json').send(answer.body)
  if (answer.kind === 'empty') return reply.code(answer.status).headers(answer.headers).send()
  reply.hijack()
  const raw = reply.raw
  raw.writeHead(answer.status, { ...SSE_HEADERS, ...answer.headers })
  raw.flushHeaders()
  answer.start({
    write: (chunk) => { if (!raw.writableEnded) raw.write(chunk) },
    end: () => { if (!raw.writableEnded) raw.end() },
    onClose: (listener) => { raw.once('close', () => listener(raw.writableFinished)) }
  })
  return reply
}
