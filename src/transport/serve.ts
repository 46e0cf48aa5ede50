import type { JsonRpcId, JsonRpcMessage, JsonRpcRequest } from '../../schemas/jsonrpc.js'
import { Cancellation } from '../cancellation.js'
import { ERR_INVALID_REQUEST, ERR_METHOD_NOT_ALLOWED, ERR_PARSE, isRetryHint, ERR_UNSUPPORTED_ENCODING, ERR_UNSUPPORTED_MEDIA_TYPE, RpcCode, toRpcError } from '../errors.js'
import { errorMessage, isNotification, isRequest, isResponse, resultMessage } from '../jsonrpc.js'
import { FORWARDED_METHODS } from '../protocol.js'
import { RawResult } from '../raw-result.js'
import type { ClientSession } from '../client-session.js'
import type { TraceCarrier } from '../tracing.js'
import type { ClientEndpoint } from './endpoint.js'
import type { InvalidMessage } from './message.js'

/**
 * What every client transport shares: serving client messages — a request becomes its JSON-RPC answer text (calls
 * that reach an upstream can be cancelled), a notification or a response goes to the proxy or the session — and
 * the shapes of an HTTP answer, refusals included. Transports decide only where the answer is written.
 */

/** Where a streamed answer goes: the route writes it to the socket. */
export interface StreamSink {
  /**
   * Writes to the client. A client that has not read what was written before (more than `limits.maxClientBuffer`
   * waits) loses the connection instead: the sink closes it, as if the client had gone.
   */
  write (chunk: string): void
  /** A keep-alive comment, written only when nothing waits to be read (a stream with data pending needs none). */
  keepAlive (): void
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

/** Any error as the JSON-RPC error body of an HTTP answer with the error's status (and its headers: Retry-After, …). */
export function errorAnswer (err: unknown, id: JsonRpcId | null = null): HttpAnswer & { kind: 'json' } {
  const status = (err as { statusCode?: number } | null)?.statusCode
  return {
    kind: 'json',
    status: typeof status === 'number' && status >= 400 && status <= 599 ? status : 500,
    headers: isRetryHint(err) ? err.headers : {},
    body: errorText(id, err)
  }
}

/**
 * A request the HTTP layer refused before the transport saw it (unparsable JSON, a body that is not JSON-RPC,
 * another content type, an unsupported method), as the JSON-RPC error the spec expects.
 */
export function requestErrorAnswer (err: RefusedRequest, method?: string, contentType?: string, encoding?: string): HttpAnswer & { kind: 'json' } {
  if (err.validation !== undefined) return errorAnswer(new ERR_INVALID_REQUEST(err.message))
  if (err.code === 'FST_CP_ERR_INVALID_CONTENT_ENCODING') return errorAnswer(new ERR_UNSUPPORTED_ENCODING(JSON.stringify(String(encoding ?? '').slice(0, 100))))
  if (err.code === 'FST_CP_ERR_INVALID_CONTENT') return errorAnswer(new ERR_PARSE(`the body could not be decompressed as its Content-Encoding says (${err.message})`))
  if (err.statusCode === 415) return errorAnswer(new ERR_UNSUPPORTED_MEDIA_TYPE(JSON.stringify((contentType ?? '').slice(0, 100))))
  if (err.statusCode === 405 && method !== undefined) {
    return { ...errorAnswer(new ERR_METHOD_NOT_ALLOWED(method)), headers: { allow: 'GET, POST, DELETE' } }
  }
  if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err instanceof SyntaxError) {
    return errorAnswer(new ERR_PARSE(err.message))
  }
  // The gateway's own refusals (authentication, rate limits) keep their code and message.
  if (err.code?.startsWith('MCPGW_ERR_') === true) return errorAnswer(err)
  if (typeof err.statusCode === 'number' && err.statusCode < 500) {
    return { ...errorAnswer(new ERR_INVALID_REQUEST(err.message)), status: err.statusCode }
  }
  return errorAnswer(err)
}

/**
 * Serves one request and serializes its JSON-RPC answer. Never rejects: whatever goes wrong becomes an error answer
 * with the request's id. Resolves undefined when the client withdrew the request (notifications/cancelled), which
 * the spec says is not answered.
 */
export function serveRequest (endpoint: ClientEndpoint, session: ClientSession, request: JsonRpcRequest, carrier?: TraceCarrier): Promise<string | undefined> {
  const id = request.id
  try {
    if (request.method === 'initialize') return Promise.resolve(resultMessage(id, endpoint.initialize(session, request.params)))
    if (!FORWARDED_METHODS.has(request.method)) {
      return endpoint.request(session, request.method, request.params, { requestId: id, carrier }).then(result => answerText(id, result)).catch(err => errorText(id, err))
    }
    const cancel = new Cancellation()
    session.inFlight.add(id, cancel)
    const done = () => { session.inFlight.delete(id, cancel) }
    return endpoint.request(session, request.method, request.params, { cancel, requestId: id, carrier })
      .then(result => answerText(id, result))
      .catch(err => errorText(id, err))
      .then((answer) => {
        done()
        return cancel.withdrawn ? undefined : answer
      })
  } catch (err) {
    return Promise.resolve(errorText(id, err))
  }
}

/**
 * One valid message on a transport with a single channel to the client (legacy SSE, WebSocket): requests are
 * answered on the channel, in the order they finish; notifications and responses are taken in.
 */
export function receiveMessage (endpoint: ClientEndpoint, session: ClientSession, message: JsonRpcMessage, carrier?: TraceCarrier): void {
  session.lastSeen = Date.now()
  if (isRequest(message)) {
    serveRequest(endpoint, session, message, carrier).then((answer) => { if (answer !== undefined) session.channel.send(answer) })
  } else if (isNotification(message)) {
    endpoint.notification(session, message.method, message.params)
  } else if (isResponse(message)) {
    session.answer(message.id, message.result, message.error)
  }
}

/** The error answer for `err` (never throws: even an error that cannot be read becomes an internal error). */
export function errorText (id: JsonRpcId | null, err: unknown): string {
  try {
    return errorMessage(id, toRpcError(err))
  } catch {
    return errorMessage(id, { code: RpcCode.InternalError, message: 'Internal error' })
  }
}

/** The JSON-RPC response text: the upstream's own result text when it arrived as a RawResult. */
export function answerText (id: JsonRpcId, result: unknown): string {
  return result instanceof RawResult ? result.withId(id) : resultMessage(id, result)
}

/** A refused message as the JSON-RPC error answer of an HTTP exchange (its status from the error, 400 mostly). */
export function invalidAnswer (invalid: InvalidMessage): HttpAnswer & { kind: 'json' } {
  return errorAnswer(invalid.error, invalid.id)
}
