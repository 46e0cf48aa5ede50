import { StringDecoder } from 'node:string_decoder'
import type { Dispatcher } from 'undici'
import { ERR_UPSTREAM_PROTOCOL } from '../errors.js'
import { upstreamFailure } from './failure.js'
import { SseParser } from '../sse.js'
import type { Pending, TransportHandle } from './pending.js'

/**
 * Reading what a Streamable HTTP upstream answers a POST with, JSON or SSE, as it arrives, and handing each
 * message to the session it belongs to (without re-validation; the session parses what it must).
 */

const ERROR_BODY_LIMIT = 2048

/** What an exchange needs of its session (HttpSession). */
export interface ExchangeSession {
  readonly serverId: string
  readonly maxMessageLength: number
  /** Called with the session id the answer to initialize carries. */
  adoptSessionId (id: string): void
  /** One message, as text; `via`: the request whose answer it is read from. */
  deliver (text: string, via?: Pending): void
  /** The error for an HTTP failure status, from its (bounded) body. */
  httpError (status: number, text: string, sentWith: string | undefined): Error
  /** Resumes an answer stream the server closed before the response (SEP-1699). */
  resumeAnswer (pending: Pending, parser: SseParser): Promise<void>
}

/** An SSE parser that hands each `message` event's JSON to the session; `via`: the request whose answer it reads. */
export function messageParser (session: ExchangeSession, via?: Pending): SseParser {
  const options = { maxEventLength: session.maxMessageLength, upstream: session.serverId }
  return new SseParser((event) => {
    if (event.event !== 'message') return
    try {
      session.deliver(event.data, via)
    } catch (err) {
      if (err instanceof SyntaxError) throw new ERR_UPSTREAM_PROTOCOL(session.serverId, `sent an SSE event that is not JSON: ${event.data.slice(0, 200)}`)
      throw upstreamFailure(err, session.serverId)
    }
  }, options)
}

/**
 * One POST and its answer, read straight from undici's dispatcher (no response stream object): JSON is collected
 * and parsed once at the end, SSE is parsed as it arrives so progress reaches the client before the result.
 */
export class PostExchange implements Dispatcher.DispatchHandler, TransportHandle {
  #controller: Dispatcher.DispatchController | undefined
  #abortReason: Error | undefined
  #status = 0
  #kind: 'json' | 'sse' | 'empty' | 'error' | 'other' = 'empty'
  #contentType = ''
  #chunks: Buffer[] = []
  #size = 0
  #sse: SseParser | undefined
  #decoder: StringDecoder | undefined
  #failed = false

  constructor (
    private readonly session: ExchangeSession,
    private readonly pending: Pending | undefined,
    /** The session id the request carried (a forgotten one is reported with it). */
    private readonly sentWith: string | undefined,
    private readonly resolve: () => void,
    private readonly reject: (err: Error) => void
  ) {}

  abort (reason: Error): void {
    if (this.#controller !== undefined) this.#controller.abort(reason)
    else this.#abortReason = reason
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#abortReason !== undefined) controller.abort(this.#abortReason)
  }

  onResponseStart (controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    this.#status = status
    const sid = headers['mcp-session-id']
    if (typeof sid === 'string' && sid !== '') this.session.adoptSessionId(sid)
    const type = headers['content-type']
    this.#contentType = typeof type === 'string' ? type : ''
    if (status >= 400) this.#kind = 'error'
    else if (status === 202 || status === 204) this.#kind = 'empty'
    else if (this.#contentType.startsWith('application/json')) this.#kind = 'json'
    else if (this.#contentType.startsWith('text/event-stream')) {
      this.#kind = 'sse'
      this.#sse = messageParser(this.session, this.pending)
      this.#decoder = new StringDecoder('utf8')
    } else this.#kind = 'other'
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#failed) return
    if (this.#kind === 'sse') {
      try {
        (this.#sse as SseParser).push((this.#decoder as StringDecoder).write(chunk))
      } catch (err) {
        this.#fail(err as Error)
        controller.abort(err as Error)
      }
    } else if (this.#kind === 'json' || (this.#kind === 'error' && this.#size < ERROR_BODY_LIMIT)) {
      this.#chunks.push(chunk)
      this.#size += chunk.length
      if (this.#size > this.session.maxMessageLength) {
        const err = new ERR_UPSTREAM_PROTOCOL(this.session.serverId,
          `answered ${this.pending?.method ?? 'a message'} with a body longer than ${this.session.maxMessageLength} bytes (limits.maxUpstreamMessage)`)
        this.#chunks = []
        this.#fail(err)
        controller.abort(err)
      }
    }
  }

  onResponseEnd (): void {
    if (this.#failed) return
    const method = this.pending?.method ?? 'a message'
    switch (this.#kind) {
      case 'error':
        this.#fail(this.session.httpError(this.#status, Buffer.concat(this.#chunks).toString('utf8', 0, ERROR_BODY_LIMIT), this.sentWith))
        return
      case 'json':
        try {
          this.session.deliver(this.#chunks.length === 1 ? (this.#chunks[0] as Buffer).toString() : Buffer.concat(this.#chunks).toString(), this.pending)
        } catch (err) {
          this.#fail(err instanceof SyntaxError
            ? new ERR_UPSTREAM_PROTOCOL(this.session.serverId, `answered ${method} with a body that is not JSON`)
            : upstreamFailure(err, this.session.serverId))
          return
        }
        break
      case 'sse':
        try {
          (this.#sse as SseParser).end()
        } catch (err) {
          this.#fail(err as Error)
          return
        }
        break
      case 'other':
        this.#fail(new ERR_UPSTREAM_PROTOCOL(this.session.serverId, `answered ${method} with content-type ${JSON.stringify(this.#contentType)} ` +
          '(expected application/json or text/event-stream)'))
        return
    }
    if (this.pending !== undefined && !this.pending.settled) {
      const lastEventId = this.#sse?.lastEventId
      if (lastEventId !== undefined) {
        // SEP-1699: the server may close an answer stream early and expect the client to resume it with a GET.
        this.session.resumeAnswer(this.pending, this.#sse as SseParser).then(this.resolve, (err: Error) => this.#fail(err))
        return
      }
      this.#fail(new ERR_UPSTREAM_PROTOCOL(this.session.serverId, `the answer to ${method} ended without a response (HTTP ${this.#status})`))
      return
    }
    this.resolve()
  }

  onResponseError (controller: Dispatcher.DispatchController, err: Error): void {
    this.#fail(err)
  }

  #fail (err: Error): void {
    if (this.#failed) return
    this.#failed = true
    this.reject(err)
  }
}
