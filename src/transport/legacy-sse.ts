import type { JsonRpcMessage } from '../../schemas/jsonrpc.js'
import { ERR_INVALID_REQUEST, ERR_SESSION_NOT_FOUND, toRpcError } from '../errors.js'
import { errorMessage } from '../jsonrpc.js'
import type { ClientChannel } from '../client-session.js'
import { sseMessage } from '../sse.js'
import { bodyMessages, InvalidMessage, invalidMessage, type MessageLimits, parseMessageText } from './message.js'
import { errorAnswer, errorText, type HttpAnswer, invalidAnswer, type RefusedRequest, receiveMessage, requestErrorAnswer, type StreamSink } from './serve.js'
import type { TraceCarrier } from '../tracing.js'
import type { ClientEndpoint, Peer } from './endpoint.js'

/**
 * The legacy HTTP+SSE transport (protocol 2024-11-05), server side: `GET /sse` opens a session whose first event
 * names the endpoint to POST to (`…/messages?sessionId=…`); every POST is accepted with 202 and answered on the
 * stream. The session lives as long as the stream. Kept for clients that predate Streamable HTTP.
 */

class LegacySseChannel implements ClientChannel {
  readonly transport = 'sse'
  #open = true
  readonly #keepAlive: NodeJS.Timeout

  constructor (private readonly sink: StreamSink, keepAliveInterval: number) {
    this.#keepAlive = setInterval(() => sink.keepAlive(), keepAliveInterval)
    this.#keepAlive.unref()
    sink.onClose(() => {
      this.#open = false
      clearInterval(this.#keepAlive)
    })
  }

  get open (): boolean {
    return this.#open
  }

  send (message: string): void {
    if (this.#open) this.sink.write(sseMessage(message))
  }

  endpoint (uri: string): void {
    this.sink.write('event: endpoint\ndata: ' + uri + '\n\n')
  }

  close (): void {
    if (!this.#open) return
    this.#open = false
    clearInterval(this.#keepAlive)
    this.sink.end()
  }
}

export interface LegacySseOptions {
  keepAliveInterval: number
  /** Bounds of what a client may send. */
  limits: MessageLimits
}

export class LegacySseTransport {
  constructor (private readonly endpoint: ClientEndpoint, private readonly options: LegacySseOptions) {}

  /** GET on the SSE endpoint: a new session, announced by its `endpoint` event (`messagesPath` + its id). */
  open (messagesPath: string, peer: Peer): HttpAnswer {
    return {
      kind: 'stream',
      status: 200,
      headers: {},
      start: (sink) => {
        const channel = new LegacySseChannel(sink, this.options.keepAliveInterval)
        let sessionId: string
        try {
          sessionId = this.endpoint.openSession(channel, peer).id
        } catch (err) {
          channel.send(errorMessage(null, toRpcError(err)))
          channel.close()
          return
        }
        sink.onClose(() => this.endpoint.endSession(sessionId))
        channel.endpoint(`${messagesPath}?sessionId=${encodeURIComponent(sessionId)}`)
      }
    }
  }

  /**
   * POST to the messages endpoint: accepted (202) and answered on the session's stream. A body that is not valid
   * JSON-RPC is refused with 400 and its error; invalid elements of a batch are answered on the stream.
   */
  post (sessionId: string | undefined, body: unknown, peer: Peer, headers?: TraceCarrier): HttpAnswer {
    const read = bodyMessages(body, this.options.limits)
    if (read instanceof InvalidMessage) return invalidAnswer(read)
    if (!read.batch) {
      const invalid = invalidMessage(body)
      if (invalid !== undefined) return invalidAnswer(invalid)
    }
    if (sessionId === undefined || sessionId === '') {
      return errorAnswer(new ERR_INVALID_REQUEST('POST /messages needs the sessionId query parameter of the endpoint the SSE stream announced'))
    }
    const session = this.endpoint.findSession(sessionId, peer)
    if (session === undefined || !(session.channel instanceof LegacySseChannel)) {
      return errorAnswer(new ERR_SESSION_NOT_FOUND(JSON.stringify(sessionId.slice(0, 100))))
    }
    for (const message of read.messages) {
      const invalid = invalidMessage(message)
      if (invalid !== undefined) session.channel.send(errorText(invalid.id, invalid.error))
      else receiveMessage(this.endpoint, session, message as JsonRpcMessage, headers)
    }
    return { kind: 'json', status: 202, headers: {}, body: '"Accepted"' }
  }

  /** A POST body as the transport reads it: parsed with the nesting limit, or the InvalidMessage that answers it. */
  parseBody (text: string): unknown {
    return parseMessageText(text, this.options.limits)
  }

  /** A request the HTTP layer refused before the transport saw it, as a JSON-RPC error. */
  requestError (err: RefusedRequest, method?: string, contentType?: string, encoding?: string): HttpAnswer {
    return requestErrorAnswer(err, method, contentType, encoding)
  }
}
