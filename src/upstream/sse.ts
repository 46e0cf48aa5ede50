import { StringDecoder } from 'node:string_decoder'
import { ERR_UPSTREAM_CLOSED, ERR_UPSTREAM_PROTOCOL, ERR_UPSTREAM_TIMEOUT } from '../errors.js'
import { type SseEvent, SseParser } from '../sse.js'
import { type HttpUpstream, httpStatusError, readErrorBody } from './http-upstream.js'
import type { Pending } from './pending.js'
import { UpstreamSession } from './session.js'

/**
 * The legacy HTTP+SSE transport (protocol 2024-11-05): one session is one `GET <url>` event stream. Its first event,
 * `endpoint`, gives the URI (with the session in its query) that every message we send is POSTed to; the server
 * accepts each POST with 202 and sends every message of its own, answers included, as a `message` event on the
 * stream. The stream has a connection of its own (`HttpUpstream.stream`), the POSTs go through the upstream's `pool`.
 */

export class SseSession extends UpstreamSession {
  /** Resolves, with the reason, once the session is over: the stream ended or failed, or we closed it. */
  readonly ended: Promise<string>
  #onEnded!: (reason: string) => void
  readonly #stream = new AbortController()
  readonly #getHeaders: Record<string, string>
  readonly #postHeaders: Record<string, string>
  /** Path and query the server's `endpoint` event named; undefined until it came. */
  #endpoint: string | undefined
  /** Settles the wait for the `endpoint` event: with nothing when it came, with the error that ended the wait. */
  #endpointWait: ((err?: Error) => void) | undefined
  #streaming = false

  constructor (readonly upstream: HttpUpstream) {
    super(upstream.definition.id)
    this.ended = new Promise((resolve) => { this.#onEnded = resolve })
    this.#getHeaders = { ...upstream.headers, accept: 'text/event-stream' }
    this.#postHeaders = { ...upstream.headers, 'content-type': 'application/json' }
  }

  /** The path and query messages are POSTed to, once the server has named it. */
  get endpoint (): string | undefined {
    return this.#endpoint
  }

  /**
   * POSTs one message to the endpoint. Its answer, if it has one, comes on the stream; so there is nothing to abort
   * when a call is given up (the base class tells the server with notifications/cancelled).
   */
  protected async transmit (message: string, pending: Pending | undefined): Promise<void> {
    const endpoint = this.#endpoint
    if (this.closed || endpoint === undefined) {
      throw new ERR_UPSTREAM_CLOSED(this.serverId, this.closedReason ?? 'the SSE stream is not open yet (initialize first)')
    }
    const timeout = this.upstream.definition.timeout
    const res = await this.upstream.pool.request({
      path: endpoint,
      method: 'POST',
      // A request's own headers (its trace context) go with its POST.
      headers: pending?.headers === undefined ? this.#postHeaders : { ...this.#postHeaders, ...pending.headers },
      body: message,
      headersTimeout: timeout,
      bodyTimeout: timeout
    })
    if (res.statusCode === 202 || res.statusCode === 200) {
      await res.body.dump()
      return
    }
    throw httpStatusError(this.serverId, res.statusCode, await readErrorBody(res.body))
  }

  /** Ends the stream, which ends the session on the server too. */
  async close (reason = 'session closed'): Promise<void> {
    if (this.closed) return
    this.#end(reason)
    this.#endpointWait?.(new ERR_UPSTREAM_CLOSED(this.serverId, reason))
  }

  protected override async open (timeout: number): Promise<void> {
    const wait = new Promise<void>((resolve, reject) => {
      this.#endpointWait = (err) => {
        this.#endpointWait = undefined
        if (err === undefined) resolve()
        else reject(err)
      }
    })
    const timer = setTimeout(() => this.#endpointWait?.(this.#streaming
      ? new ERR_UPSTREAM_PROTOCOL(this.serverId, `opened the SSE stream but sent no endpoint event within ${timeout}ms ` +
        '(a legacy HTTP+SSE server names the URI to POST to first)')
      : new ERR_UPSTREAM_TIMEOUT(this.serverId, `GET ${this.upstream.path} (the SSE stream)`, timeout)), timeout)
    this.#listen().catch(() => {})
    try {
      await wait
    } catch (err) {
      this.#end((err as Error).message)
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  /** Reads the stream until it ends; never rejects (what ends it is reported to the session). */
  async #listen (): Promise<void> {
    let failure: Error | undefined
    try {
      const res = await this.upstream.stream({
        path: this.upstream.path,
        method: 'GET',
        headers: this.#getHeaders,
        signal: this.#stream.signal,
        // The wait for the endpoint event has its own deadline; once it came, the stream may stay quiet for ever.
        headersTimeout: 0,
        bodyTimeout: 0
      })
      if (res.statusCode !== 200) throw httpStatusError(this.serverId, res.statusCode, await readErrorBody(res.body))
      const type = res.headers['content-type']
      if (typeof type !== 'string' || !type.startsWith('text/event-stream')) {
        await res.body.dump()
        throw new ERR_UPSTREAM_PROTOCOL(this.serverId, `answered GET with content-type ${JSON.stringify(type ?? '')} (expected text/event-stream)`)
      }
      this.#streaming = true
      const parser = new SseParser((event) => this.#event(event), { maxEventLength: this.maxMessageLength, upstream: this.serverId })
      const decoder = new StringDecoder('utf8')
      for await (const chunk of res.body) parser.push(decoder.write(chunk as Buffer))
      parser.end()
    } catch (err) {
      failure = err as Error
    }
    if (this.closed) return // we closed it
    if (this.#endpointWait !== undefined) {
      this.#endpointWait(failure ?? new ERR_UPSTREAM_PROTOCOL(this.serverId, 'ended the SSE stream before sending the endpoint event'))
      return
    }
    this.#end(failure === undefined ? 'the SSE stream ended' : `the SSE stream failed: ${failure.message}`)
  }

  #event (event: SseEvent): void {
    if (event.event === 'endpoint') {
      if (this.#endpoint === undefined) this.#adoptEndpoint(event.data.trim())
      return
    }
    if (event.event !== 'message') return
    try {
      this.receiveText(event.data)
    } catch (err) {
      if (err instanceof SyntaxError) throw new ERR_UPSTREAM_PROTOCOL(this.serverId, `sent an SSE message event that is not JSON: ${event.data.slice(0, 200)}`)
      throw err
    }
  }

  #adoptEndpoint (uri: string): void {
    let url: URL
    try {
      url = new URL(uri, this.upstream.definition.url)
    } catch {
      throw new ERR_UPSTREAM_PROTOCOL(this.serverId, `sent an endpoint event that is not a URI: ${uri.slice(0, 200)}`)
    }
    // The pools (and the credentials in the headers) belong to the SSE URL's origin.
    const origin = new URL(this.upstream.definition.url as string).origin
    if (url.origin !== origin) {
      throw new ERR_UPSTREAM_PROTOCOL(this.serverId, `sent an endpoint on another origin (${url.origin}, the stream is on ${origin})`)
    }
    this.#endpoint = url.pathname + url.search
    this.#endpointWait?.()
  }

  #end (reason: string): void {
    this.failAll(reason)
    this.#stream.abort()
    this.#onEnded(this.closedReason as string)
  }
}
