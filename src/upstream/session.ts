import type { JsonRpcId, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse, Params } from '../../schemas/jsonrpc.js'
import {
  ERR_REQUEST_CANCELLED, ERR_UPSTREAM_CLOSED, ERR_UPSTREAM_PROTOCOL, RpcCode,
  type RpcErrorObject, toRpcError, upstreamRpcError
} from '../errors.js'
import { Cancellation } from '../cancellation.js'
import { upstreamFailure } from './failure.js'
import { LATEST_PROTOCOL_VERSION } from '../protocol.js'
import { DEFAULT_MAX_JSON_DEPTH, DEFAULT_MAX_UPSTREAM_MESSAGE, JsonTooDeepError, parseJson } from '../json.js'
import { RawResult } from '../raw-result.js'
import { onDeadline, Pending, type PendingOwner, type RequestOrigin } from './pending.js'

/**
 * One MCP session with an upstream server, whatever carries it: request ids, deadlines, cancellation, progress,
 * and dispatch of what the server sends on its own. Transports (HTTP, stdio) only move messages; they extend this
 * class with `transmit` and feed every message they receive to `receive`.
 */

export interface InitializeResult {
  protocolVersion: string
  capabilities: Record<string, unknown>
  serverInfo: { name: string, version: string, [key: string]: unknown }
  instructions?: string
}

export interface ClientIdentity {
  capabilities: Record<string, unknown>
  clientInfo: { name: string, version: string, [key: string]: unknown }
  protocolVersion?: string
}

export interface RequestOptions {
  /** Deadline in ms; the upstream gets `notifications/cancelled` when it passes. */
  timeout: number
  /** Cancelling it cancels the call upstream (the downstream client cancelled). */
  cancel?: Cancellation | undefined
  /** Asks the upstream for progress and receives each `notifications/progress` params. */
  onProgress?: ((params: Params) => void) | undefined
  /** Accept the result as a RawResult (its text) when it arrives in a layout that allows it: for forwarding. */
  raw?: boolean | undefined
  /** Who asked (the gateway's client and its request), for routing what the server sends while it works on it. */
  origin?: RequestOrigin | undefined
  /** HTTP headers for this request alone (the caller's identity, for upstreams with forwardIdentity); HTTP only. */
  headers?: Readonly<Record<string, string>> | undefined
  /**
   * A health check: over HTTP it goes on a connection of its own, never queued behind calls that hold every pooled
   * connection (a busy upstream is not a dead one).
   */
  check?: boolean | undefined
}

/** A request the server sends us (sampling, elicitation, roots, ping). */
export interface IncomingRequest {
  message: JsonRpcRequest
  /** The session it arrived on (progress the client reports for it goes back there). */
  session: UpstreamSession
  /** Our request on whose answer stream it arrived, when the transport knows (Streamable HTTP does). */
  via: Pending | undefined
  /** Cancelled when the server cancels it (`notifications/cancelled`); no answer is sent then. */
  cancel: Cancellation
}

/** What the server sends that is not an answer to one of our requests. */
export interface SessionHandlers {
  /** `via`: our request on whose answer stream it arrived, when known. */
  onNotification (message: JsonRpcNotification, via: Pending | undefined): void
  /** Resolves the result, or rejects with an error carrying `rpcError` (or a coded error). */
  onRequest (request: IncomingRequest): Promise<unknown>
}

/**
 * Resolves on the next turn of the event loop. The gateway's own requests that follow one another (the handshake,
 * the lists) wait for it: a connection pool hands a socket back only once the answer's turn is over, and a request
 * sent sooner opens a second socket, which then sits idle.
 */
export function nextTurn (): Promise<void> {
  return new Promise(resolve => setImmediate(resolve))
}

/** Requests of the server's own (sampling, elicitation, roots) the gateway holds at once per session. */
const MAX_INCOMING = 64

const noHandlers: SessionHandlers = {
  onNotification () {},
  onRequest ({ message }) {
    return message.method === 'ping'
      ? Promise.resolve({})
      : Promise.reject(Object.assign(new Error('unsupported'), {
        rpcError: { code: RpcCode.MethodNotFound, message: `Method not found: ${message.method}` }
      }))
  }
}

export abstract class UpstreamSession implements PendingOwner {
  /** Deepest nesting accepted in what the upstream sends (see json.ts); the connection sets the configured one. */
  maxJsonDepth = DEFAULT_MAX_JSON_DEPTH
  /** Longest message accepted from the upstream (characters); the connection sets the configured one. */
  maxMessageLength = DEFAULT_MAX_UPSTREAM_MESSAGE
  protocolVersion: string | undefined
  initializeResult: InitializeResult | undefined
  handlers: SessionHandlers = noHandlers
  /** Set once the session is closed (by us or by the upstream); nothing is sent after. */
  closedReason: string | undefined
  protected readonly pending = new Map<JsonRpcId, Pending>()
  /** Requests the server sent us that we are still working on, by the server's id. */
  readonly #incoming = new Map<JsonRpcId, Cancellation>()
  /** Refusals of the server's requests being sent. */
  #refusing = 0
  #opening: Promise<void> | undefined
  #nextId = 0

  constructor (readonly serverId: string) {}

  get closed (): boolean {
    return this.closedReason !== undefined
  }

  /** The session id the server gave (Streamable HTTP's Mcp-Session-Id), if its transport has one. */
  get mcpSessionId (): string | undefined {
    return undefined
  }

  get inFlight (): number {
    return this.pending.size
  }

  /**
   * Sends one serialized message. A transport that learns the request can no longer be answered (its answer stream
   * ended without the response) rejects; the call then fails with that error.
   */
  protected abstract transmit (message: string, pending: Pending | undefined): Promise<void>

  /** Releases the transport; pending calls fail with MCPGW_ERR_UPSTREAM_CLOSED. */
  abstract close (reason?: string): Promise<void>

  /**
   * Takes no new requests (they fail as never sent) but lets those in flight end on their own, each with what its
   * transport saw — the upstream looked gone, yet a request on its own connection may still have been answered, or
   * refused before it was sent. Transports where one failure ends everything close at once.
   */
  retire (reason: string): Promise<void> {
    return this.close(reason)
  }

  /** Called when the last request in flight of a retired session has ended. */
  protected drained (): void {}

  /** Opens the transport if it needs opening, then runs the MCP handshake; `timeout` bounds both together. */
  async initialize (identity: ClientIdentity, timeout: number): Promise<InitializeResult> {
    if (this.closedReason !== undefined) throw new ERR_UPSTREAM_CLOSED(this.serverId, this.closedReason)
    const started = Date.now()
    this.#opening ??= this.open(timeout)
    await this.#opening
    const result = await this.request('initialize', {
      protocolVersion: identity.protocolVersion ?? LATEST_PROTOCOL_VERSION,
      capabilities: identity.capabilities,
      clientInfo: identity.clientInfo
    }, { timeout: Math.max(1, timeout - (Date.now() - started)) }) as InitializeResult
    if (result === null || typeof result !== 'object' || typeof result.protocolVersion !== 'string') {
      throw new ERR_UPSTREAM_PROTOCOL(this.serverId, 'initialize answered without a protocolVersion')
    }
    this.protocolVersion = result.protocolVersion
    this.initializeResult = result
    this.negotiated(result)
    await nextTurn()
    await this.notify('notifications/initialized')
    await nextTurn()
    return result
  }

  /**
   * Opens what carries the session (a legacy SSE stream, a socket) before the handshake; once per session. The
   * transports whose channel exists already (HTTP requests, a spawned process) need nothing.
   */
  protected open (_timeout: number): Promise<void> {
    return Promise.resolve()
  }

  /** Called once the server has answered initialize, before anything else is sent (HTTP sets its version header). */
  protected negotiated (_result: InitializeResult): void {}

  request (method: string, params: Params | undefined, options: RequestOptions): Promise<unknown> {
    if (this.closedReason !== undefined) {
      // Never sent: the caller may safely try another replica.
      return Promise.reject(new ERR_UPSTREAM_CLOSED(this.serverId, this.closedReason, { sent: false, suspect: false }))
    }
    const cancellation = options.cancel
    if (cancellation?.reason !== undefined) return Promise.reject(new ERR_REQUEST_CANCELLED(cancellation.reason))
    const id = ++this.#nextId
    let outgoing = params
    if (options.onProgress !== undefined) {
      outgoing = { ...params, _meta: { ...(params?._meta as Params | undefined), progressToken: id } }
    }
    const message = outgoing === undefined
      ? '{"jsonrpc":"2.0","id":' + id + ',"method":' + JSON.stringify(method) + '}'
      : '{"jsonrpc":"2.0","id":' + id + ',"method":' + JSON.stringify(method) + ',"params":' + JSON.stringify(outgoing) + '}'
    return new Promise((resolve, reject) => {
      const pending = new Pending(this, id, method, options.onProgress, options.raw === true, options.origin, cancellation, resolve, reject)
      pending.timer = setTimeout(onDeadline, options.timeout, pending, options.timeout)
      pending.headers = options.headers
      pending.check = options.check === true
      cancellation?.listen(pending)
      this.pending.set(id, pending)
      this.transmit(message, pending).catch((err: unknown) => pending.reject(upstreamFailure(err, this.serverId)))
    })
  }

  /** Who asked for each request in flight (those that say), oldest first. */
  inFlightOrigins (): RequestOrigin[] {
    const origins: RequestOrigin[] = []
    for (const pending of this.pending.values()) if (pending.origin !== undefined) origins.push(pending.origin)
    return origins
  }

  /** The request with this id, while it is in flight. */
  pendingRequest (id: JsonRpcId): Pending | undefined {
    return this.pending.get(id)
  }

  /** Removes a request from the in-flight table; false when it had already settled. */
  forget (pending: Pending): boolean {
    if (this.pending.get(pending.id) !== pending) return false
    this.pending.delete(pending.id)
    if (this.pending.size === 0 && this.closedReason !== undefined) this.drained()
    return true
  }

  /** Fails a request we give up on (deadline, cancellation) and tells the upstream to stop working on it. */
  cancelPending (pending: Pending, err: Error): void {
    if (pending.settled) return
    pending.reject(err)
    pending.handle?.abort(err)
    // The spec forbids cancelling initialize; for anything else the upstream may stop working on it.
    if (pending.method === 'initialize') return
    this.notify('notifications/cancelled', { requestId: pending.id, reason: err.message }).catch(() => {})
  }

  notify (method: string, params?: Params): Promise<void> {
    if (this.closedReason !== undefined) return Promise.resolve()
    const message = params === undefined
      ? '{"jsonrpc":"2.0","method":' + JSON.stringify(method) + '}'
      : '{"jsonrpc":"2.0","method":' + JSON.stringify(method) + ',"params":' + JSON.stringify(params) + '}'
    return this.transmit(message, undefined)
  }

  /**
   * Dispatches one message from the upstream, as the text it arrived in: a success answer in a known layout is
   * resolved without parsing (see RawResult); anything else is parsed, at most `maxJsonDepth` deep. Throws
   * SyntaxError for text that is not JSON, and MCPGW_ERR_UPSTREAM_PROTOCOL for a message nested deeper (after
   * failing the request it answers, when it says which).
   */
  protected receiveText (text: string, via?: Pending): void {
    const matched = RawResult.match(text, this.maxJsonDepth)
    if (matched !== undefined) {
      const pending = this.pending.get(matched.id)
      if (pending !== undefined) {
        if (pending.raw) pending.resolve(matched.result)
        else this.#resolveParsed(pending, matched.result)
        return
      }
    }
    let message: unknown
    try {
      message = parseJson(text, this.maxJsonDepth)
    } catch (err) {
      if (!(err instanceof JsonTooDeepError)) throw err
      const id = (err.value as { id?: unknown } | null)?.id
      const pending = typeof id === 'number' || typeof id === 'string' ? this.pending.get(id) : undefined
      const failure = new ERR_UPSTREAM_PROTOCOL(this.serverId, `sent a message nested deeper than ${err.limit} levels` +
        (pending === undefined ? '' : ` as its answer to ${pending.method}`))
      pending?.reject(failure)
      throw failure
    }
    this.receive(message, via)
  }

  #resolveParsed (pending: Pending, result: RawResult): void {
    try {
      pending.resolve(result.value)
    } catch (err) {
      pending.reject(new ERR_UPSTREAM_PROTOCOL(this.serverId, `answered ${pending.method} with a result that cannot be read: ${(err as Error).message}`))
    }
  }

  /** Dispatches one parsed message from the upstream; `via`: our request on whose answer stream it came. */
  protected receive (message: unknown, via?: Pending): void {
    if (Array.isArray(message)) {
      for (const m of message) this.receive(m, via)
      return
    }
    if (message === null || typeof message !== 'object') return
    const msg = message as JsonRpcResponse & JsonRpcRequest
    if (msg.method === undefined) {
      this.#answered(msg)
      return
    }
    // What the server sends of its own is checked as clients' messages are: a bad one is refused, never relayed.
    const params = (msg as { params?: unknown }).params
    const paramsOk = params === undefined || (params !== null && typeof params === 'object' && !Array.isArray(params))
    if (msg.id === undefined) {
      if (typeof msg.method !== 'string' || msg.method === '' || !paramsOk) return
      if (msg.method === 'notifications/progress') {
        const token = (msg.params as Params | undefined)?.progressToken
        const pending = typeof token === 'number' || typeof token === 'string' ? this.pending.get(token) : undefined
        if (pending?.onProgress !== undefined) pending.onProgress(msg.params as Params)
        return
      }
      if (msg.method === 'notifications/cancelled') {
        const requestId = (msg.params as Params | undefined)?.requestId
        const incoming = typeof requestId === 'number' || typeof requestId === 'string' ? this.#incoming.get(requestId) : undefined
        if (incoming !== undefined) incoming.cancel(String((msg.params as Params).reason ?? 'cancelled by the server').slice(0, 500))
        return
      }
      this.handlers.onNotification(msg, via)
      return
    }
    if (typeof msg.id !== 'string' && !Number.isSafeInteger(msg.id)) return
    if (typeof msg.method !== 'string' || msg.method === '' || !paramsOk) {
      this.#refuse(msg.id, RpcCode.InvalidRequest, 'Invalid Request: method must be a non-empty string and params an object')
      return
    }
    if (this.#incoming.size >= MAX_INCOMING || this.#incoming.has(msg.id)) {
      this.#refuse(msg.id, RpcCode.InternalError, `The gateway holds ${MAX_INCOMING} requests of this server already (or one with this id); answer is refused`)
      return
    }
    this.#answer(msg, via)
  }

  /** An answer to one of our requests: a result, or an error that is a JSON-RPC error object, or a protocol failure. */
  #answered (msg: JsonRpcResponse): void {
    const pending = msg.id === null || msg.id === undefined ? undefined : this.pending.get(msg.id)
    if (pending === undefined) return // late answer to a request we already gave up on
    const error = (msg as { error?: unknown }).error
    if (error !== undefined) {
      const e = error as { code?: unknown, message?: unknown } | null
      if (e === null || typeof e !== 'object' || !Number.isInteger(e.code) || typeof e.message !== 'string') {
        pending.reject(new ERR_UPSTREAM_PROTOCOL(this.serverId, `answered ${pending.method} with an error that is not a JSON-RPC error object`))
      } else {
        pending.reject(upstreamRpcError(this.serverId, pending.method, error as RpcErrorObject))
      }
    } else if (!('result' in msg)) {
      pending.reject(new ERR_UPSTREAM_PROTOCOL(this.serverId, `answered ${pending.method} with neither a result nor an error`))
    } else {
      pending.resolve(msg.result)
    }
  }

  /**
   * Answers a request of the server's with an error. A server flooding us gets at most MAX_INCOMING refusals on their
   * way at once; past that its requests are dropped (each refusal is a POST on HTTP: answering a flood would be one).
   */
  #refuse (id: JsonRpcId, code: number, message: string): void {
    if (this.#refusing >= MAX_INCOMING) return
    this.#refusing++
    const sent = () => { this.#refusing-- }
    this.transmit('{"jsonrpc":"2.0","id":' + JSON.stringify(id) + ',"error":' + JSON.stringify({ code, message }) + '}', undefined).then(sent, sent)
  }

  /** Fails every call in flight; transports call it when their connection is gone. */
  protected failAll (reason: string): void {
    this.closedReason ??= reason
    for (const pending of [...this.pending.values()]) pending.reject(new ERR_UPSTREAM_CLOSED(this.serverId, reason))
    for (const incoming of this.#incoming.values()) incoming.cancel(`the upstream session closed: ${reason}`)
  }

  /** Serves a request of the server's and sends the answer back, unless the server cancelled it meanwhile. */
  #answer (request: JsonRpcRequest, via: Pending | undefined): void {
    const cancel = new Cancellation()
    this.#incoming.set(request.id, cancel)
    this.handlers.onRequest({ message: request, session: this, via, cancel }).then(
      (result) => '{"jsonrpc":"2.0","id":' + JSON.stringify(request.id) + ',"result":' + JSON.stringify(result ?? {}) + '}',
      (err: unknown) => {
        const error: RpcErrorObject = toRpcError(err)
        return '{"jsonrpc":"2.0","id":' + JSON.stringify(request.id) + ',"error":' + JSON.stringify(error) + '}'
      }
    ).then((answer) => {
      if (this.#incoming.get(request.id) === cancel) this.#incoming.delete(request.id)
      if (cancel.requested || this.closedReason !== undefined) return
      return this.transmit(answer, undefined)
    }).catch(() => {}) // the upstream is gone; its own request dies with it
  }
}
