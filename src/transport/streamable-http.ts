import type { JsonRpcId, JsonRpcMessage, JsonRpcRequest, Params } from '../../schemas/jsonrpc.js'
import {
  ERR_ALREADY_INITIALIZED, ERR_INVALID_REQUEST, ERR_NOT_ACCEPTABLE, ERR_SESSION_NOT_FOUND, ERR_SESSION_REQUIRED,
  ERR_STREAM_COMPLETE, ERR_STREAM_CONFLICT, ERR_UNKNOWN_EVENT_ID, ERR_UNSUPPORTED_PROTOCOL_VERSION
} from '../errors.js'
import { isNotification, isRequest, isResponse, resultMessage } from '../jsonrpc.js'
import { FORWARDED_METHODS, isSupportedProtocolVersion, SUPPORTED_PROTOCOL_VERSIONS } from '../protocol.js'
import { ClientSession } from '../client-session.js'
import type { TraceCarrier } from '../tracing.js'
import { EventStore, type EventStoreLimits, ReplayBudget } from './event-store.js'
import { bodyMessages, InvalidMessage, invalidMessage, type MessageLimits, parseMessageText } from './message.js'
import {
  errorAnswer, errorText, type HttpAnswer, invalidAnswer, type RefusedRequest, requestErrorAnswer, serveRequest, type StreamSink
} from './serve.js'
import type { ClientEndpoint, Peer } from './endpoint.js'
import { type ChannelOptions, StreamableHttpChannel } from './streamable-http-channel.js'

export { StreamableHttpChannel }

/**
 * The MCP Streamable HTTP transport, server side, without Fastify: it turns one HTTP exchange on the MCP endpoint
 * into an answer (JSON, an SSE stream, or an empty status). The route adapts Fastify's request and reply to it.
 *
 * A request that may lead the upstream to talk back (progress, logging, sampling, elicitation, roots) is answered
 * as an SSE stream, and what belongs to it travels there; everything else goes to the session's GET stream (see
 * StreamableHttpChannel, which also keeps every event for resumption with `Last-Event-ID`).
 */

export type Headers = Record<string, string | string[] | undefined>
export type { HttpAnswer, StreamSink }

const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>
/** The first revision whose clients expect a priming event (an id without data) at the start of each SSE stream. */
const PRIMING_SINCE = '2025-11-25'

export interface StreamableHttpOptions {
  /** Comment lines on idle streams, so proxies and clients do not time them out. */
  keepAliveInterval: number
  /** Bounds of each session's event store. */
  events: EventStoreLimits
  /** Bytes all sessions' event stores may hold together. */
  replayBytesTotal: number
  /** Bounds of what a client may send. */
  limits: MessageLimits
}

export class StreamableHttpTransport {
  readonly #channelOptions: ChannelOptions

  constructor (private readonly endpoint: ClientEndpoint, private readonly options: StreamableHttpOptions) {
    this.#channelOptions = { keepAliveInterval: options.keepAliveInterval, events: options.events, budget: new ReplayBudget(options.replayBytesTotal) }
  }

  /**
   * One POST: a message or a batch, as parsed by the route (an InvalidMessage when it was not JSON or nested too
   * deep). Resolves synchronously-built answers without a promise where it can.
   */
  post (headers: Headers, body: unknown, peer: Peer): HttpAnswer | Promise<HttpAnswer> {
    const accept = header(headers, 'accept') ?? ''
    const acceptsJson = accept === '' || accept.includes('application/json') || accept.includes('*/*')
    const acceptsSse = accept.includes('text/event-stream')
    if (!acceptsJson && !acceptsSse) {
      return this.error(new ERR_NOT_ACCEPTABLE('the client must accept application/json or text/event-stream'))
    }
    const read = bodyMessages(body, this.options.limits)
    if (read instanceof InvalidMessage) return invalidAnswer(read)
    if (read.batch) return this.#batch(headers, read.messages, peer)
    const invalid = invalidMessage(body)
    if (invalid !== undefined) return invalidAnswer(invalid)
    const message = body as JsonRpcMessage
    if (message.method === 'initialize') return this.#initialize(headers, [message], message, peer)

    const found = this.#session(headers, peer)
    if (!(found instanceof ClientSession)) return found
    const session = found
    if (!isRequest(message)) {
      if (isNotification(message)) this.endpoint.notification(session, message.method, message.params)
      else if (isResponse(message)) session.answer(message.id, message.result, message.error)
      return ACCEPTED
    }
    const carrier = headers
    if (acceptsSse && (!acceptsJson || this.#mayTalkBack(session, message))) return this.#streamAnswer(session, message, carrier)
    // A request the client withdrew gets no answer; the HTTP exchange still needs an end: 202, as for a notification.
    return serveRequest(this.endpoint, session, message, carrier).then(answer => answer === undefined ? ACCEPTED : jsonAnswer(answer))
  }

  /**
   * GET: the session's standalone stream, for messages the client did not ask for (one per session), or — with
   * `Last-Event-ID` — the resumption of a stream the client lost, starting after that event.
   */
  get (headers: Headers, peer: Peer): HttpAnswer {
    const accept = header(headers, 'accept') ?? ''
    if (!accept.includes('text/event-stream')) {
      return this.error(new ERR_NOT_ACCEPTABLE('the GET stream needs Accept: text/event-stream'))
    }
    const found = this.#session(headers, peer)
    if (!(found instanceof ClientSession)) return found
    const session = found
    const channel = session.channel as StreamableHttpChannel
    const lastEventId = header(headers, 'last-event-id')
    const streamHeaders = { 'mcp-session-id': session.id }
    if (lastEventId !== undefined) {
      const resumed = EventStore.parseId(lastEventId)
      if (resumed === undefined) return this.error(new ERR_UNKNOWN_EVENT_ID(JSON.stringify(lastEventId.slice(0, 100))))
      if (channel.isAnswerStream(resumed.stream)) {
        if (!channel.resumable(resumed.stream, resumed.seq)) {
          // A stream this session had, delivered in full: nothing is missing. SDK clients resume the answer stream of
          // an error response all the same; 405 tells them, quietly, that there is no stream to resume.
          if (channel.issued(resumed.stream)) {
            return { ...this.error(new ERR_STREAM_COMPLETE(JSON.stringify(lastEventId.slice(0, 100)))), headers: { allow: 'GET, POST, DELETE' } }
          }
          return this.error(new ERR_UNKNOWN_EVENT_ID(JSON.stringify(lastEventId.slice(0, 100))))
        }
        return {
          kind: 'stream',
          status: 200,
          headers: streamHeaders,
          start: (sink) => { if (!channel.resumeAnswer(resumed.stream, resumed.seq, sink)) sink.end() }
        }
      }
      return { kind: 'stream', status: 200, headers: streamHeaders, start: (sink) => channel.attachGet(sink, resumed.seq) }
    }
    if (!channel.claimGet()) return this.error(new ERR_STREAM_CONFLICT(session.id))
    return {
      kind: 'stream',
      status: 200,
      headers: streamHeaders,
      start: (sink) => {
        channel.attachGet(sink)
        sink.onClose(() => { session.lastSeen = Date.now() })
        if (session.closed) sink.end()
        else this.endpoint.streamOpened(session)
      }
    }
  }

  delete (headers: Headers, peer: Peer): HttpAnswer {
    const found = this.#session(headers, peer)
    if (!(found instanceof ClientSession)) return found
    this.endpoint.endSession(found.id)
    return { kind: 'empty', status: 200, headers: NO_HEADERS }
  }

  /** A POST body as the transport reads it: parsed with the nesting limit, or the InvalidMessage that answers it. */
  parseBody (text: string): unknown {
    return parseMessageText(text, this.options.limits)
  }

  /** A request the HTTP layer refused before the transport saw it, as the JSON-RPC error the spec expects. */
  requestError (err: RefusedRequest, method?: string, contentType?: string, encoding?: string): HttpAnswer & { kind: 'json' } {
    return requestErrorAnswer(err, method, contentType, encoding)
  }

  error (err: unknown, id: JsonRpcId | null = null): HttpAnswer & { kind: 'json' } {
    return errorAnswer(err, id)
  }

  /**
   * A 2025-03-26 batch: notifications and responses handled, requests answered together as a JSON array, invalid
   * elements answered with their error (as JSON-RPC batches are).
   */
  async #batch (headers: Headers, messages: readonly unknown[], peer: Peer): Promise<HttpAnswer> {
    const init = messages.find(m => (m as { method?: unknown } | null)?.method === 'initialize') as JsonRpcMessage | undefined
    if (init !== undefined) return this.#initialize(headers, messages as JsonRpcMessage[], init, peer, true)
    const found = this.#session(headers, peer)
    if (!(found instanceof ClientSession)) return found
    const session = found
    const answers: Array<Promise<string | undefined> | string> = []
    const carrier = headers
    for (const element of messages) {
      const invalid = invalidMessage(element)
      if (invalid !== undefined) {
        answers.push(errorText(invalid.id, invalid.error))
        continue
      }
      const message = element as JsonRpcMessage
      if (isRequest(message)) answers.push(serveRequest(this.endpoint, session, message, carrier))
      else if (isNotification(message)) this.endpoint.notification(session, message.method, message.params)
      else if (isResponse(message)) session.answer(message.id, message.result, message.error)
    }
    const texts = (await Promise.all(answers)).filter(answer => answer !== undefined)
    if (texts.length === 0) return ACCEPTED
    return jsonAnswer('[' + texts.join(',') + ']')
  }

  #initialize (headers: Headers, messages: JsonRpcMessage[], init: JsonRpcMessage, peer: Peer, batch = false): HttpAnswer {
    if (messages.length > 1) return this.error(new ERR_INVALID_REQUEST('initialize must be sent alone, not in a batch'))
    if (init.id === undefined) return this.error(new ERR_INVALID_REQUEST('initialize must be a request (it needs an id)'))
    const existing = header(headers, 'mcp-session-id')
    if (existing !== undefined) return this.error(new ERR_ALREADY_INITIALIZED(existing), init.id)
    try {
      const channel = new StreamableHttpChannel(this.#channelOptions)
      const session = this.endpoint.openSession(channel, peer)
      const result = this.endpoint.initialize(session, init.params as Params | undefined)
      channel.priming = session.protocolVersion >= PRIMING_SINCE
      const answer = resultMessage(init.id, result)
      // A batch (of this one message) is answered with a batch.
      return { kind: 'json', status: 200, headers: { 'mcp-session-id': session.id }, body: batch ? '[' + answer + ']' : answer }
    } catch (err) {
      return this.error(err, init.id)
    }
  }

  #session (headers: Headers, peer: Peer): ClientSession | HttpAnswer {
    const id = header(headers, 'mcp-session-id')
    if (id === undefined) return this.error(new ERR_SESSION_REQUIRED())
    const version = header(headers, 'mcp-protocol-version')
    if (version !== undefined && !isSupportedProtocolVersion(version)) {
      return this.error(new ERR_UNSUPPORTED_PROTOCOL_VERSION(version, SUPPORTED_PROTOCOL_VERSIONS.join(', ')))
    }
    const session = this.endpoint.findSession(id, peer)
    // A session of another transport (WebSocket, legacy SSE) is not reachable here.
    if (session === undefined || !(session.channel instanceof StreamableHttpChannel)) return this.error(new ERR_SESSION_NOT_FOUND(id))
    return session
  }

  /**
   * Whether the upstream may send something back while serving this request: progress (a token was given), log
   * messages (a level was set), or requests the client declared it can answer. Only then is an SSE stream opened;
   * plain calls get the cheaper JSON answer.
   */
  #mayTalkBack (session: ClientSession, request: JsonRpcRequest): boolean {
    if (!FORWARDED_METHODS.has(request.method)) return false
    if ((request.params?._meta as { progressToken?: unknown } | undefined)?.progressToken !== undefined) return true
    return session.logLevel !== undefined || session.declared('sampling') || session.declared('elicitation') || session.declared('roots')
  }

  /** Answers one request as an SSE stream that also carries what the request causes (progress, logs, requests). */
  #streamAnswer (session: ClientSession, request: JsonRpcRequest, carrier: TraceCarrier | undefined): HttpAnswer {
    const channel = session.channel as StreamableHttpChannel
    return {
      kind: 'stream',
      status: 200,
      headers: NO_HEADERS,
      start: (sink) => {
        const answer = channel.openAnswer(request.id)
        channel.attachAnswer(answer, sink)
        // A dropped connection is not a cancellation (the spec): the call runs on and its answer is kept to resume.
        serveRequest(this.endpoint, session, request, carrier).then(response => channel.finishAnswer(answer, response))
      }
    }
  }
}

const ACCEPTED: HttpAnswer = Object.freeze({ kind: 'empty', status: 202, headers: NO_HEADERS })

function jsonAnswer (body: string): HttpAnswer {
  return { kind: 'json', status: 200, headers: NO_HEADERS, body }
}

function header (headers: Headers, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}
