import type { JsonRpcId, JsonRpcMessage, JsonRpcRequest } from '../../schemas/jsonrpc.js'
import { Cancellation } from '../cancellation.js'
import { ERR_INVALID_REQUEST, ERR_METHOD_NOT_ALLOWED, ERR_PARSE, ERR_UNSUPPORTED_MEDIA_TYPE, toRpcError } from '../errors.js'
import { errorMessage, isNotification, isRequest, isResponse, resultMessage } from '../jsonrpc.js'
import { RawResult } from '../raw-result.js'
import type { ClientSession } from '../client-session.js'
import type { ClientEndpoint } from './endpoint.js'

/**
 * What every client transport shares: serving client messages — a request becomes its JSON-RPC answer text (calls
 * that reach an upstream can be cancelled), a notification or a response goes to the proxy or the session — and
 * the shapes of an HTTP answer, refusals included. Transports decide only where the answer is written.
 */

/** Where a streamed answer goes: the route writes it to the socket. */
export interface StreamSink {
  write (chunk: string): void
  end (): void
  /**
   * Called once when the client goes away or the stream is ended; `delivered`: everything written was handed to the
   * operating system (the stream ended on our side, not cut by the client).
   */
  onClose (listener: (delivered: boolean) => void): void
}

export type HttpAnswer =
  | { kind: 'json', status: number, headers: Record<string, string>, body: string }
  | { kind: 'empty', status: number, headers: Record<string, string> }
  | { kind: 'stream', status: number, headers: Record<string, string>, start: (sink: StreamSink) => void }

/** What Fastify tells of a request it refused before a transport saw it. */
export interface RefusedRequest {
  statusCode?: number
  validation?: unknown
  message: string
  code?: string
}

/** Any error as the JSON-RPC error body of an HTTP answer with the error's status. */
export function errorAnswer (err: unknown, id: JsonRpcId | null = null): HttpAnswer & { kind: 'json' } {
  const status = (err as { statusCode?: number }).statusCode
  return {
    kind: 'json',
    status: typeof status === 'number' && status >= 400 ? status : 500,
    headers: {},
    body: errorMessage(id, toRpcError(err))
  }
}

/**
 * A request the HTTP layer refused before the transport saw it (unparsable JSON, a body that is not JSON-RPC,
 * another content type, an unsupported method), as the JSON-RPC error the spec expects.
 */
export function requestErrorAnswer (err: RefusedRequest, method?: string, contentType?: string): HttpAnswer & { kind: 'json' } {
  if (err.validation !== undefined) return errorAnswer(new ERR_INVALID_REQUEST(err.message))
  if (err.statusCode === 415) return errorAnswer(new ERR_UNSUPPORTED_MEDIA_TYPE(JSON.stringify(contentType ?? '')))
  if (err.statusCode === 405 && method !== undefined) {
    return { ...errorAnswer(new ERR_METHOD_NOT_ALLOWED(method)), headers: { allow: 'GET, POST, DELETE' } }
  }
  if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err instanceof SyntaxError) {
    return errorAnswer(new ERR_PARSE(err.message))
  }
  if (typeof err.statusCode === 'number' && err.statusCode < 500) {
    return { ...errorAnswer(new ERR_INVALID_REQUEST(err.message)), status: err.statusCode }
  }
  return errorAnswer(err)
}

/** Methods that reach an upstream: only they can be cancelled, report progress or make the upstream talk back. */
export const FORWARDED = new Set(['tools/call', 'resources/read', 'prompts/get', 'completion/complete'])

/** Serves one request and serializes its JSON-RPC answer; never rejects. */
export function serveRequest (endpoint: ClientEndpoint, session: ClientSession, request: JsonRpcRequest): Promise<string> {
  if (request.method === 'initialize') {
    try {
      return Promise.resolve(resultMessage(request.id, endpoint.initialize(session, request.params)))
    } catch (err) {
      return Promise.resolve(errorMessage(request.id, toRpcError(err)))
    }
  }
  if (!FORWARDED.has(request.method)) {
    return endpoint.request(session, request.method, request.params)
      .then(result => answerText(request.id, result), err => errorMessage(request.id, toRpcError(err)))
  }
  const cancel = new Cancellation()
  session.inFlight.set(request.id, cancel)
  const done = () => { if (session.inFlight.get(request.id) === cancel) session.inFlight.delete(request.id) }
  return endpoint.request(session, request.method, request.params, { cancel, requestId: request.id }).then((result) => {
    done()
    return answerText(request.id, result)
  }, (err: unknown) => {
    done()
    return errorMessage(request.id, toRpcError(err))
  })
}

/**
 * One message on a transport with a single channel to the client (legacy SSE, WebSocket): requests are answered on
 * the channel, in the order they finish; notifications and responses are taken in.
 */
export function receiveMessage (endpoint: ClientEndpoint, session: ClientSession, message: JsonRpcMessage): void {
  session.lastSeen = Date.now()
  if (isRequest(message)) {
    serveRequest(endpoint, session, message).then(answer => session.channel.send(answer))
  } else if (isNotification(message)) {
    endpoint.notification(session, message.method, message.params)
  } else if (isResponse(message)) {
    session.answer(message.id, message.result, message.error)
  } else {
    const id = (message as { id?: JsonRpcId }).id ?? null
    session.channel.send(errorMessage(id, toRpcError(new ERR_INVALID_REQUEST('a message needs a method (request or notification) or a result or error (response)'))))
  }
}

/** The JSON-RPC response text: the upstream's own result text when it arrived as a RawResult. */
export function answerText (id: JsonRpcId, result: unknown): string {
  return result instanceof RawResult ? result.withId(id) : resultMessage(id, result)
}
