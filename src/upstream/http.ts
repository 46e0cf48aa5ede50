import { StringDecoder } from 'node:string_decoder'
import type { Client, Dispatcher } from 'undici'
import type { Params } from '../../schemas/jsonrpc.js'
import { backoffDelay } from '../backoff.js'
import { ERR_UPSTREAM_PROTOCOL, ERR_UPSTREAM_SESSION_EXPIRED } from '../errors.js'
import type { SseParser } from '../sse.js'
import { type HttpUpstream, httpStatusError } from './http-upstream.js'
import { messageParser, PostExchange } from './post-exchange.js'
import type { Pending } from './pending.js'
import { type ClientIdentity, type InitializeResult, type RequestOptions, UpstreamSession } from './session.js'

/**
 * One MCP session (`Mcp-Session-Id`) with a Streamable HTTP upstream, carried over its HttpUpstream's connections:
 * each message a POST (answered as JSON or SSE, see PostExchange), a GET stream for what the server sends on its
 * own, re-initialization when the server forgot the session, DELETE when it ends.
 */

const DELETE_TIMEOUT = 2000
/** A GET stream open at least this long ended normally (a shorter one is retried as a failure, with backoff). */
const STABLE_STREAM = 5000
/** Shortest wait before reopening a stream, whatever `retry:` the server asks for. */
const MIN_RETRY = 250

export class HttpSession extends UpstreamSession {
  sessionId: string | undefined
  #headers: Record<string, string>
  #identity: ClientIdentity | undefined
  #reinitializing: Promise<void> | undefined
  #stream: AbortController | undefined
  #listening: Promise<void> | undefined
  /** Set once close() ran (a retired session is closed, to new requests, before that). */
  #ended = false
  /** Called after the session was re-established because the upstream forgot it (the catalog may have changed). */
  onReinitialized: (() => void) | undefined
  /** Called when the GET stream dropped or could not be opened: the upstream may be gone. */
  onStreamLost: (() => void) | undefined

  constructor (readonly upstream: HttpUpstream) {
    super(upstream.definition.id)
    this.#headers = { ...upstream.baseHeaders }
  }

  override get mcpSessionId (): string | undefined {
    return this.sessionId
  }

  override initialize (identity: ClientIdentity, timeout: number) {
    this.#identity = identity
    this.sessionId = undefined
    this.#headers = { ...this.upstream.baseHeaders }
    return super.initialize(identity, timeout)
  }

  protected override negotiated (result: InitializeResult): void {
    this.#headers['mcp-protocol-version'] = result.protocolVersion
  }

  override request (method: string, params: Params | undefined, options: RequestOptions): Promise<unknown> {
    return this.#send(method, params, options, false)
  }

  /**
   * A request that meets a forgotten session is sent again on a new one: it never reached the server. Only the
   * first request to learn of it re-initializes; others wait for that, including requests sent meanwhile.
   */
  #send (method: string, params: Params | undefined, options: RequestOptions, retried: boolean): Promise<unknown> {
    const recovering = this.#reinitializing
    if (recovering !== undefined && method !== 'initialize') {
      return recovering.then(() => this.#send(method, params, options, retried))
    }
    const sentWith = this.sessionId
    return super.request(method, params, options).catch((err: Error & { code?: string }) => {
      if (err.code !== 'MCPGW_ERR_UPSTREAM_SESSION_EXPIRED' || method === 'initialize' || retried) throw err
      if (this.sessionId === sentWith) this.#reinitialize(options.timeout)
      return this.#send(method, params, options, true)
    })
  }

  protected transmit (message: string, pending: Pending | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const exchange = new PostExchange(this, pending, this.sessionId, resolve, reject)
      if (pending !== undefined) pending.handle = exchange
      const timeout = this.upstream.definition.timeout
      const check = pending?.check === true
      const dispatcher = check ? this.upstream.checkClient() : this.upstream.pool
      dispatcher.dispatch({
        path: this.upstream.path,
        method: 'POST',
        headers: pending?.headers === undefined ? this.#headers : { ...this.#headers, ...pending.headers },
        body: message,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        // A check's connection closes after it: a thousand upstreams checked every 30 s keep no socket open for it.
        reset: check
      }, exchange)
      // close() lets the request in flight finish first.
      if (check) (dispatcher as Client).close().catch(() => {})
    })
  }

  /** Called by a POST exchange when the answer carries the session id (the answer to initialize). */
  adoptSessionId (id: string): void {
    if (this.sessionId !== undefined) return
    this.sessionId = id
    this.#headers['mcp-session-id'] = id
  }

  /** Called by a POST exchange (`via` its request) or the GET stream with each message it read, as text. */
  deliver (text: string, via?: Pending): void {
    this.receiveText(text, via)
  }

  /** The error for an HTTP failure status of a request sent with session `sentWith`, from its (bounded) body. */
  httpError (status: number, text: string, sentWith: string | undefined): Error {
    // The spec answers a forgotten session with 404; some servers (server-everything among them) use 400.
    if (sentWith !== undefined && (status === 404 || (status === 400 && /session/i.test(text)))) {
      return new ERR_UPSTREAM_SESSION_EXPIRED(this.serverId, sentWith)
    }
    return httpStatusError(this.serverId, status, text)
  }

  /**
   * Opens the standalone GET stream for what the server sends on its own (list_changed, resource updates, logs,
   * requests) and keeps it open. Resolves once it is open — or the server offers none, or the first attempt failed —
   * so a caller can make sure the stream listens before it asks for something that will come on it.
   */
  listen (): Promise<void> {
    if (this.closed) return Promise.resolve()
    if (this.#listening === undefined) {
      this.#stream = new AbortController()
      let opened!: () => void
      this.#listening = new Promise<void>((resolve) => { opened = resolve })
      this.#listenLoop(this.#stream.signal, opened).catch(() => {}).finally(opened)
    }
    return this.#listening
  }

  override retire (reason: string): Promise<void> {
    if (this.closed) return Promise.resolve()
    this.closedReason = reason
    this.#stream?.abort()
    if (this.pending.size === 0) return this.close(reason)
    return Promise.resolve()
  }

  protected override drained (): void {
    this.close(this.closedReason).catch(() => {})
  }

  async close (reason = 'session closed'): Promise<void> {
    if (this.#ended) return
    this.#ended = true
    this.failAll(reason)
    this.#stream?.abort()
    if (this.sessionId === undefined) return
    const headers = this.#headers
    await this.upstream.courtesy(async () => {
      const res = await this.upstream.pool.request({
        path: this.upstream.path,
        method: 'DELETE',
        headers,
        headersTimeout: DELETE_TIMEOUT,
        bodyTimeout: DELETE_TIMEOUT,
        signal: AbortSignal.timeout(DELETE_TIMEOUT)
      })
      await res.body.dump()
    })
  }

  /**
   * Resumes an answer stream the server closed before the response (SEP-1699 polling): GET with the last event id
   * it sent, after the `retry` delay it asked for, until the response arrives. Each resumption must bring events;
   * one that brings none ends the call with MCPGW_ERR_UPSTREAM_PROTOCOL (its deadline ends it anyway).
   */
  async resumeAnswer (pending: Pending, parser: SseParser): Promise<void> {
    const resumer = messageParser(this, pending)
    resumer.lastEventId = parser.lastEventId
    resumer.retry = parser.retry
    while (!pending.settled && !this.closed) {
      const from = resumer.lastEventId as string
      await sleep(this.#retryDelay(resumer.retry), NEVER)
      if (pending.settled) return
      const headers: Record<string, string> = { ...this.#headers, accept: 'text/event-stream', 'last-event-id': from }
      delete headers['content-type']
      const res = await this.upstream.stream({
        path: this.upstream.path,
        method: 'GET',
        headers,
        headersTimeout: this.upstream.definition.timeout,
        bodyTimeout: this.upstream.definition.timeout
      })
      if (res.statusCode !== 200) {
        await res.body.dump()
        throw new ERR_UPSTREAM_PROTOCOL(this.serverId, `closed the answer to ${pending.method} early and refused to resume it (HTTP ${res.statusCode})`)
      }
      await this.#readEvents(res.body, resumer)
      if (resumer.lastEventId === from && !pending.settled) {
        throw new ERR_UPSTREAM_PROTOCOL(this.serverId, `resumed the answer to ${pending.method} without sending anything`)
      }
    }
  }

  /** The server's `retry:` hint, within sane bounds (0 would spin, a huge one overflow a timer), else the default. */
  #retryDelay (hint: number | undefined): number {
    const { streamRetry, streamRetryMax } = this.upstream.options
    if (hint === undefined) return streamRetry
    return Math.min(Math.max(hint, MIN_RETRY), Math.max(streamRetry, streamRetryMax))
  }

  async #readEvents (body: Dispatcher.ResponseData['body'], parser?: SseParser): Promise<SseParser> {
    const sse = parser ?? messageParser(this)
    const decoder = new StringDecoder('utf8')
    for await (const chunk of body) sse.push(decoder.write(chunk as Buffer))
    sse.end()
    return sse
  }

  #reinitialize (timeout: number): void {
    const identity = this.#identity
    if (identity === undefined || this.#reinitializing !== undefined) return
    const recovery = this.initialize(identity, timeout).then(() => {
      this.#reinitializing = undefined
      this.onReinitialized?.()
    }, (err: unknown) => {
      this.#reinitializing = undefined
      throw err
    })
    recovery.catch(() => {}) // its waiters see the failure; nobody else must
    this.#reinitializing = recovery
  }

  /**
   * Keeps the GET stream open: after it ends, it is opened again with the last event id it carried, after the delay
   * the server asked for; after a failure (refused, an error status, EMFILE…) the delay grows, jittered, up to
   * `streamRetryMax`, so a thousand failing upstreams never spin.
   */
  async #listenLoop (signal: AbortSignal, opened: () => void): Promise<void> {
    let parser: SseParser | undefined
    let failures = 0
    while (!signal.aborted && !this.closed) {
      const started = Date.now()
      let streamed = false
      try {
        const headers: Record<string, string> = { ...this.#headers, accept: 'text/event-stream' }
        delete headers['content-type']
        if (parser?.lastEventId !== undefined) headers['last-event-id'] = parser.lastEventId
        const res = await this.upstream.stream({
          path: this.upstream.path,
          method: 'GET',
          headers,
          signal,
          headersTimeout: this.upstream.options.connectTimeout,
          bodyTimeout: 0
        })
        if (res.statusCode === 405) { // the server offers no GET stream: nothing to listen to
          await res.body.dump()
          return
        }
        if (res.statusCode !== 200) {
          await res.body.dump()
        } else {
          streamed = true
          opened()
          parser = await this.#readEvents(res.body, parser)
        }
      } catch {
        // Stopped on purpose, or the upstream's pools were destroyed under us: either way, this stream is over.
        if (signal.aborted || this.upstream.pool.destroyed) return
      }
      opened()
      const { streamRetryMax } = this.upstream.options
      // A stream that stayed open a while ended normally; one that failed, or ended at once, counts as a failure.
      failures = streamed && Date.now() - started >= STABLE_STREAM ? 0 : failures + 1
      // The first failure of a run is news (the upstream may be gone); the next ones are its backoff's business.
      if (failures <= 1 && !signal.aborted && !this.closed) this.onStreamLost?.()
      const base = this.#retryDelay(parser?.retry)
      await sleep(failures === 0 ? base : backoffDelay(failures - 1, base, Math.max(base, streamRetryMax)), signal)
    }
  }
}

/** A signal that never aborts, for waits that only time ends. */
const NEVER = new AbortController().signal

function sleep (ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    timer.unref()
    function done () {
      signal.removeEventListener('abort', done)
      clearTimeout(timer)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}
