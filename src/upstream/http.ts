import { StringDecoder } from 'node:string_decoder'
import { Client, Pool } from 'undici'
import type { Dispatcher } from 'undici'
import type { UpstreamDefinition } from '../config/types.js'
import { ERR_UPSTREAM_CLOSED, ERR_UPSTREAM_HTTP, ERR_UPSTREAM_PROTOCOL, ERR_UPSTREAM_SESSION_EXPIRED, upstreamFailure } from '../errors.js'
import type { Params } from '../../schemas/jsonrpc.js'
import { backoffDelay } from '../backoff.js'
import { SseParser } from '../sse.js'
import { type ClientIdentity, type InitializeResult, nextTurn, type Pending, type RequestOptions, type TransportHandle, UpstreamSession } from './session.js'

/**
 * The Streamable HTTP transport to one upstream. `HttpUpstream` owns the connections (a pool for requests, one
 * connection per event stream; created here, destroyed in `close`); each `HttpSession` is one MCP session
 * (`Mcp-Session-Id`) carried over them. Answers are read as they
 * come, JSON or SSE, and handed to the session without re-validation. Legacy HTTP+SSE sessions (`SseSession`,
 * sse.ts) ride on the same pools.
 */

const ERROR_BODY_LIMIT = 2048
const DELETE_TIMEOUT = 2000
/** Courtesy requests (session DELETEs) in flight per upstream (one: they reuse its keep-alive socket), and how many may wait. */
const COURTESY_CONCURRENCY = 1
const COURTESY_BACKLOG = 1000
/** A GET stream open at least this long ended normally (a shorter one is retried as a failure, with backoff). */
const STABLE_STREAM = 5000

export interface HttpUpstreamOptions {
  connectTimeout: number
  /** Delay before the GET stream is opened again after it dropped. */
  streamRetry: number
  /** Longest delay between attempts to open a GET stream that keeps failing. */
  streamRetryMax: number
}

export class HttpUpstream {
  /** Requests: bounded by `maxConnections`, kept alive. */
  readonly pool: Pool
  /** The connections of the event streams open now (see `stream`). */
  readonly #streams = new Set<Client>()
  readonly #origin: string
  readonly #connect: { timeout: number }
  readonly path: string
  /** The configured headers (the upstream's credentials), names lower-cased: every request carries them. */
  readonly headers: Readonly<Record<string, string>>
  /** What a Streamable HTTP POST carries. */
  readonly baseHeaders: Readonly<Record<string, string>>
  readonly #courtesyBacklog: Array<() => Promise<void>> = []
  #courtesyRunning = 0

  constructor (readonly definition: UpstreamDefinition, readonly options: HttpUpstreamOptions) {
    const url = new URL(definition.url as string)
    this.path = url.pathname + url.search
    const connect = { timeout: options.connectTimeout }
    this.pool = new Pool(url.origin, {
      connections: definition.maxConnections,
      pipelining: 1,
      // Idle sockets go after 30 s whatever the server's Keep-Alive hint says: a burst's extra sockets are given back.
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 30_000,
      connect
    })
    this.#origin = url.origin
    this.#connect = connect
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(definition.headers)) headers[name.toLowerCase()] = value
    this.headers = headers
    this.baseHeaders = { ...headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
  }

  createSession (): HttpSession {
    return new HttpSession(this)
  }

  /**
   * Runs a request that is only a courtesy (ending a session the server would expire anyway) a few at a time, so
   * closing thousands of client sessions at once does not open thousands of sockets; past a backlog it is skipped.
   * Never rejects.
   */
  courtesy (task: () => Promise<void>): Promise<void> {
    if (this.pool.destroyed || this.#courtesyBacklog.length >= COURTESY_BACKLOG) return Promise.resolve()
    return new Promise<void>((resolve) => {
      this.#courtesyBacklog.push(() => task().catch(() => {}).then(nextTurn).finally(() => {
        this.#courtesyRunning--
        resolve()
        this.#nextCourtesy()
      }))
      this.#nextCourtesy()
    })
  }

  #nextCourtesy (): void {
    while (this.#courtesyRunning < COURTESY_CONCURRENCY && this.#courtesyBacklog.length > 0) {
      this.#courtesyRunning++
      const next = this.#courtesyBacklog.shift() as () => Promise<void>
      next().catch(() => {})
    }
  }

  /**
   * A long-lived GET (an event stream) on a connection of its own, closed when its body ends: streams never take
   * the request connections, and an upstream with no stream open holds nothing for them (a Pool would hold a
   * 2048-slot queue per upstream, 16 KB each at a thousand upstreams).
   */
  async stream (options: Omit<Dispatcher.RequestOptions, 'origin'>): Promise<Dispatcher.ResponseData> {
    if (this.pool.destroyed) throw new ERR_UPSTREAM_CLOSED(this.definition.id, 'the upstream was closed')
    const client = new Client(this.#origin, { pipelining: 1, connect: this.#connect })
    this.#streams.add(client)
    const release = () => {
      this.#streams.delete(client)
      client.destroy().catch(() => {})
    }
    try {
      const res = await client.request(options)
      res.body.once('close', release)
      return res
    } catch (err) {
      release()
      throw err
    }
  }

  async close (): Promise<void> {
    const streams = [...this.#streams]
    this.#streams.clear()
    await Promise.all([this.pool.destroy(), ...streams.map(c => c.destroy())])
  }
}

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
      this.upstream.pool.dispatch({
        path: this.upstream.path,
        method: 'POST',
        headers: this.#headers,
        body: message,
        headersTimeout: timeout,
        bodyTimeout: timeout
      }, exchange)
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
      await sleep(resumer.retry ?? this.upstream.options.streamRetry, NEVER)
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
      if (!signal.aborted && !this.closed) this.onStreamLost?.()
      const { streamRetry, streamRetryMax } = this.upstream.options
      // A stream that stayed open a while ended normally; one that failed, or ended at once, counts as a failure.
      failures = streamed && Date.now() - started >= STABLE_STREAM ? 0 : failures + 1
      const base = parser?.retry ?? streamRetry
      await sleep(failures === 0 ? base : backoffDelay(failures - 1, base, Math.max(base, streamRetryMax)), signal)
    }
  }
}

/**
 * MCPGW_ERR_UPSTREAM_HTTP for a failure status, with the server's error text (a JSON-RPC error body gives its
 * message). `upstreamStatus` keeps the status the upstream answered (the error's own `statusCode` is the gateway's).
 */
export function httpStatusError (serverId: string, status: number, text: string): ERR_UPSTREAM_HTTP {
  let detail = text.trim()
  try {
    const body = JSON.parse(text) as { error?: { message?: string } }
    if (typeof body.error?.message === 'string') detail = body.error.message
  } catch {}
  return new ERR_UPSTREAM_HTTP(serverId, status, detail === '' ? '(empty body)' : detail)
}

/** The start of an error answer's body, as text; the rest is not read. */
export async function readErrorBody (body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    chunks.push(chunk as Buffer)
    size += (chunk as Buffer).length
    if (size >= ERROR_BODY_LIMIT) break
  }
  return Buffer.concat(chunks).toString('utf8', 0, ERROR_BODY_LIMIT)
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

/** An SSE parser that hands each `message` event's JSON to the session; `via`: the request whose answer it reads. */
function messageParser (session: HttpSession, via?: Pending): SseParser {
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
class PostExchange implements Dispatcher.DispatchHandler, TransportHandle {
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
    private readonly session: HttpSession,
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
