import type { JsonRpcMessage, JsonRpcNotification, JsonRpcRequest } from '../../schemas/jsonrpc.js'
import {
  ERR_ALREADY_INITIALIZED, ERR_INVALID_REQUEST, ERR_METHOD_NOT_ALLOWED, ERR_NOT_ACCEPTABLE, ERR_PARSE,
  ERR_SESSION_NOT_FOUND, ERR_SESSION_REQUIRED, ERR_STREAM_CONFLICT, ERR_UNSUPPORTED_MEDIA_TYPE,
  ERR_UNSUPPORTED_PROTOCOL_VERSION, toRpcError
} from '../errors.js'
import { Cancellation } from '../cancellation.js'
import { errorMessage, isNotification, isRequest, resultMessage } from '../jsonrpc.js'
import { isSupportedProtocolVersion, SUPPORTED_PROTOCOL_VERSIONS } from '../protocol.js'
import { RawResult } from '../raw-result.js'
import type { CallContext, McpProxy } from '../proxy.js'
import { ClientSession } from '../sessions.js'
import { SSE_KEEP_ALIVE, sseMessage } from '../sse.js'

/**
 * The MCP Streamable HTTP transport, server side, without Fastify: it turns one HTTP exchange on the MCP endpoint
 * into an answer (JSON, an SSE stream, or an empty status). The route adapts Fastify's request and reply to it.
 */

export type Headers = Record<string, string | string[] | undefined>

/** Where a streamed answer goes: the route writes it to the socket. */
export interface StreamSink {
  write (chunk: string): void
  end (): void
  /** Called once when the client goes away or the stream is ended. */
  onClose (listener: () => void): void
}

export type HttpAnswer =
  | { kind: 'json', status: number, headers: Record<string, string>, body: string }
  | { kind: 'empty', status: number, headers: Record<string, string> }
  | { kind: 'stream', status: number, headers: Record<string, string>, start: (sink: StreamSink) => void }

const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>
/** Methods that reach an upstream: only they can be cancelled or report progress. */
const FORWARDED = new Set(['tools/call', 'resources/read', 'prompts/get', 'completion/complete'])

export interface StreamableHttpOptions {
  /** Comment lines on idle streams, so proxies and clients do not time them out. */
  keepAliveInterval: number
}

export class StreamableHttpTransport {
  constructor (private readonly proxy: McpProxy, private readonly options: StreamableHttpOptions) {}

  /** One POST: a message or a batch. Resolves synchronously-built answers without a promise where it can. */
  post (headers: Headers, body: JsonRpcMessage | JsonRpcMessage[]): HttpAnswer | Promise<HttpAnswer> {
    const accept = header(headers, 'accept') ?? ''
    const acceptsJson = accept === '' || accept.includes('application/json') || accept.includes('*/*')
    const acceptsSse = accept.includes('text/event-stream')
    if (!acceptsJson && !acceptsSse) {
      return this.error(new ERR_NOT_ACCEPTABLE('the client must accept application/json or text/event-stream'))
    }
    if (Array.isArray(body)) return this.#batch(headers, body)
    if (body.method === 'initialize') return this.#initialize(headers, [body], body)

    const session = this.#session(headers)
    if (!(session instanceof ClientSession)) return session
    session.lastSeen = Date.now()
    if (!isRequest(body)) {
      if (isNotification(body)) this.proxy.notification(session, body.method, body.params)
      // A response to a server→client request: the gateway sends none on client sessions yet.
      return ACCEPTED
    }
    const wantsProgress = (body.params?._meta as { progressToken?: unknown } | undefined)?.progressToken !== undefined
    if (acceptsSse && (!acceptsJson || wantsProgress)) return this.#streamAnswer(session, body)
    return this.#answer(session, body, {}).then(jsonAnswer)
  }

  /** The standalone stream: notifications the client did not ask for (list_changed). One per session. */
  get (headers: Headers): HttpAnswer {
    const accept = header(headers, 'accept') ?? ''
    if (!accept.includes('text/event-stream')) {
      return this.error(new ERR_NOT_ACCEPTABLE('the GET stream needs Accept: text/event-stream'))
    }
    const session = this.#session(headers)
    if (!(session instanceof ClientSession)) return session
    if (session.stream !== undefined) return this.error(new ERR_STREAM_CONFLICT(session.id))
    session.lastSeen = Date.now()
    // Claimed now, not when the stream starts, so a second GET racing this one is refused.
    session.stream = { send () {}, close () {} }
    return {
      kind: 'stream',
      status: 200,
      headers: { 'mcp-session-id': session.id },
      start: (sink) => {
        const stream = { send: (message: string) => sink.write(sseMessage(message)), close: () => sink.end() }
        session.stream = stream
        const keepAlive = setInterval(() => sink.write(SSE_KEEP_ALIVE), this.options.keepAliveInterval)
        keepAlive.unref()
        sink.onClose(() => {
          clearInterval(keepAlive)
          if (session.stream === stream) session.stream = undefined
          session.lastSeen = Date.now()
        })
        if (session.closed) sink.end()
      }
    }
  }

  delete (headers: Headers): HttpAnswer {
    const session = this.#session(headers)
    if (!(session instanceof ClientSession)) return session
    this.proxy.endSession(session.id)
    return { kind: 'empty', status: 200, headers: NO_HEADERS }
  }

  /** Any error as the JSON-RPC error body of an HTTP answer with the error's status. */
  error (err: unknown, id: JsonRpcRequest['id'] | null = null): HttpAnswer & { kind: 'json' } {
    const status = (err as { statusCode?: number }).statusCode
    return {
      kind: 'json',
      status: typeof status === 'number' && status >= 400 ? status : 500,
      headers: NO_HEADERS,
      body: errorMessage(id, toRpcError(err))
    }
  }

  /**
   * A request the HTTP layer refused before the transport saw it (unparsable JSON, a body that is not JSON-RPC,
   * another content type, an unsupported method), as the JSON-RPC error the spec expects.
   */
  requestError (err: { statusCode?: number, validation?: unknown, message: string, code?: string }, method?: string, contentType?: string): HttpAnswer & { kind: 'json' } {
    if (err.validation !== undefined) return this.error(new ERR_INVALID_REQUEST(err.message))
    if (err.statusCode === 415) return this.error(new ERR_UNSUPPORTED_MEDIA_TYPE(JSON.stringify(contentType ?? '')))
    if (err.statusCode === 405 && method !== undefined) {
      const answer = this.error(new ERR_METHOD_NOT_ALLOWED(method))
      return { ...answer, headers: { allow: 'GET, POST, DELETE' } }
    }
    if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err instanceof SyntaxError) {
      return this.error(new ERR_PARSE(err.message))
    }
    if (typeof err.statusCode === 'number' && err.statusCode < 500) {
      return { ...this.error(new ERR_INVALID_REQUEST(err.message)), status: err.statusCode }
    }
    return this.error(err)
  }

  /** A 2025-03-26 batch: notifications handled, requests answered together as a JSON array. */
  async #batch (headers: Headers, messages: JsonRpcMessage[]): Promise<HttpAnswer> {
    const init = messages.find(m => m.method === 'initialize')
    if (init !== undefined) return this.#initialize(headers, messages, init)
    const session = this.#session(headers)
    if (!(session instanceof ClientSession)) return session
    session.lastSeen = Date.now()
    const requests: JsonRpcRequest[] = []
    for (const message of messages) {
      if (isRequest(message)) requests.push(message)
      else if (isNotification(message)) this.proxy.notification(session, message.method, message.params)
    }
    if (requests.length === 0) return ACCEPTED
    const answers = await Promise.all(requests.map(r => this.#answer(session, r, {})))
    return jsonAnswer('[' + answers.join(',') + ']')
  }

  #initialize (headers: Headers, messages: JsonRpcMessage[], init: JsonRpcMessage): HttpAnswer {
    if (messages.length > 1) return this.error(new ERR_INVALID_REQUEST('initialize must be sent alone, not in a batch'))
    if (init.id === undefined) return this.error(new ERR_INVALID_REQUEST('initialize must be a request (it needs an id)'))
    const existing = header(headers, 'mcp-session-id')
    if (existing !== undefined) return this.error(new ERR_ALREADY_INITIALIZED(existing), init.id)
    try {
      const { session, result } = this.proxy.initialize(init.params)
      return { kind: 'json', status: 200, headers: { 'mcp-session-id': session.id }, body: resultMessage(init.id, result) }
    } catch (err) {
      return this.error(err, init.id)
    }
  }

  #session (headers: Headers): ClientSession | HttpAnswer {
    const id = header(headers, 'mcp-session-id')
    if (id === undefined) return this.error(new ERR_SESSION_REQUIRED())
    const version = header(headers, 'mcp-protocol-version')
    if (version !== undefined && !isSupportedProtocolVersion(version)) {
      return this.error(new ERR_UNSUPPORTED_PROTOCOL_VERSION(version, SUPPORTED_PROTOCOL_VERSIONS.join(', ')))
    }
    return this.proxy.sessions.get(id) ?? this.error(new ERR_SESSION_NOT_FOUND(id))
  }

  /** Answers one request as an SSE stream, with the call's progress before its response. */
  #streamAnswer (session: ClientSession, request: JsonRpcRequest): HttpAnswer {
    return {
      kind: 'stream',
      status: 200,
      headers: NO_HEADERS,
      start: (sink) => {
        let open = true
        sink.onClose(() => { open = false })
        const related = (message: JsonRpcNotification) => { if (open) sink.write(sseMessage(JSON.stringify(message))) }
        // A dropped connection is not a cancellation (the spec): the call runs on, its answer is discarded.
        this.#answer(session, request, { related }).then((answer) => {
          if (!open) return
          sink.write(sseMessage(answer))
          sink.end()
        }, () => {})
      }
    }
  }

  /** Serves one request and serializes its JSON-RPC answer; never rejects. */
  #answer (session: ClientSession, request: JsonRpcRequest, context: CallContext): Promise<string> {
    if (!FORWARDED.has(request.method)) {
      return this.proxy.request(session, request.method, request.params, context)
        .then(result => answerText(request.id, result), err => errorMessage(request.id, toRpcError(err)))
    }
    const cancel = new Cancellation()
    session.inFlight.set(request.id, cancel)
    if (context.related === undefined) context = { cancel }
    else context.cancel = cancel
    const done = () => { if (session.inFlight.get(request.id) === cancel) session.inFlight.delete(request.id) }
    return this.proxy.request(session, request.method, request.params, context).then((result) => {
      done()
      return answerText(request.id, result)
    }, (err: unknown) => {
      done()
      return errorMessage(request.id, toRpcError(err))
    })
  }
}

const ACCEPTED: HttpAnswer = Object.freeze({ kind: 'empty', status: 202, headers: NO_HEADERS })

/** The JSON-RPC response text: the upstream's own result text when it arrived as a RawResult. */
function answerText (id: JsonRpcRequest['id'], result: unknown): string {
  return result instanceof RawResult ? result.withId(id) : resultMessage(id, result)
}

function jsonAnswer (body: string): HttpAnswer {
  return { kind: 'json', status: 200, headers: NO_HEADERS, body }
}

function header (headers: Headers, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}
