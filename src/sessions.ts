import { randomUUID } from 'node:crypto'
import type { JsonRpcId, Params } from '../schemas/jsonrpc.js'
import type { Cancellation } from './cancellation.js'
import type { ClientContext, Principal } from './client-context.js'
import { ERR_CLIENT_DID_NOT_ANSWER, ERR_CLIENT_SESSION_ENDED, ERR_SESSION_LIMIT, type RpcErrorObject, RpcCode } from './errors.js'
import { notificationMessage } from './jsonrpc.js'
import type { UpstreamSession } from './upstream/session.js'

/**
 * Downstream sessions: what one client holds with the gateway, however it is connected (Streamable HTTP, legacy
 * SSE, WebSocket). A session knows how to reach its client (its channel), the upstream sessions opened for it, its
 * calls in flight, the requests the gateway forwarded to it on behalf of upstreams, its log level and its resource
 * subscriptions. Sessions unused for `idleTimeout` are ended by a sweeper (unless a stream or a call is open).
 */

/** How messages reach one client: its transport's side of the session. */
export interface ClientChannel {
  /**
   * Delivers one serialized message. `relatedTo` is the client's request it belongs to: Streamable HTTP writes it on
   * that request's answer stream; other transports have one stream for everything.
   */
  send (message: string, relatedTo?: JsonRpcId): void
  /** Whether the client can receive messages it did not ask for right now (a stream or socket is open). */
  readonly open: boolean
  /** Ends the transport's side: streams end, the socket closes. */
  close (): void
}

/** Where a client connects from, as its transport saw it. */
export interface Peer {
  /** The remote address (for the per-address session cap, and rate limits). */
  readonly address: string | undefined
}

export interface ClientInfo {
  name: string
  version: string
  [key: string]: unknown
}

export interface SessionInit {
  protocolVersion: string
  capabilities: Record<string, unknown>
  clientInfo: ClientInfo
}

const NO_CAPABILITIES: Readonly<Record<string, unknown>> = Object.freeze({})

export const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'] as const
export type LogLevel = typeof LOG_LEVELS[number]

interface Outgoing {
  method: string
  resolve (result: unknown): void
  reject (err: Error): void
  timer: NodeJS.Timeout
}

/** A client's session with the gateway; it is also the client's context for every request it makes. */
export class ClientSession implements ClientContext {
  readonly id = randomUUID()
  readonly createdAt = Date.now()
  lastSeen = this.createdAt
  /** Set by initialize; a legacy SSE or WebSocket session exists a moment before it. */
  init: SessionInit | undefined
  /** Set when the client's notifications/initialized arrived. */
  initialized = false
  /** Upstream id → the session opened for this client there, or the promise of it while it opens. */
  readonly upstreams = new Map<string, UpstreamSession | Promise<UpstreamSession>>()
  /** Calls in flight, by the client's request id: cancelling one cancels it upstream. */
  readonly inFlight = new Map<JsonRpcId, Cancellation>()
  /** The level set with logging/setLevel; undefined: the client never set one. */
  logLevel: LogLevel | undefined
  /** Resource URIs the client subscribed to, with the upstream (replica) that serves each subscription. */
  readonly subscriptions = new Map<string, string>()
  /** Requests forwarded to the client on behalf of upstreams, by the id the client saw. */
  readonly #outgoing = new Map<number, Outgoing>()
  #nextOutgoingId = 0
  /** Progress tokens the client was given for forwarded requests → the upstream session and token they stand for. */
  readonly #progressRoutes = new Map<string, { session: UpstreamSession, token: string | number }>()
  #nextRoute = 0
  closed = false
  /** Who opened the session; null while the gateway has no authentication configured. */
  principal: Principal | null = null
  readonly address: string | undefined

  constructor (readonly channel: ClientChannel, peer: Peer) {
    this.address = peer.address
  }

  get protocolVersion (): string {
    return this.init?.protocolVersion ?? '2025-03-26'
  }

  get capabilities (): Readonly<Record<string, unknown>> {
    return this.init?.capabilities ?? NO_CAPABILITIES
  }

  /** Whether the client declared a client capability (`sampling`, `elicitation`, `roots`), optionally a sub-feature. */
  declared (capability: string, feature?: string): boolean {
    const value = this.init?.capabilities[capability]
    if (value === undefined || value === null) return false
    if (feature === undefined) return true
    return typeof value === 'object' && (value as Record<string, unknown>)[feature] !== undefined
  }

  /** Whether a log message of `level` passes the level the client set (all pass when it set none). */
  wantsLog (level: unknown): boolean {
    if (this.logLevel === undefined) return true
    const index = LOG_LEVELS.indexOf(level as LogLevel)
    return index === -1 || index >= LOG_LEVELS.indexOf(this.logLevel)
  }

  notify (method: string, params?: Params, relatedTo?: JsonRpcId): void {
    if (this.closed) return
    this.channel.send(JSON.stringify(notificationMessage(method, params)), relatedTo)
  }

  /**
   * Sends a request to the client (sampling, elicitation, roots, on an upstream's behalf) and resolves its answer.
   * It fails with MCPGW_ERR_CLIENT_DID_NOT_ANSWER after `timeout`, and at once when `cancel` is cancelled (the
   * upstream withdrew it; the client is told) or the session ends.
   */
  request (method: string, params: Params | undefined, options: { timeout: number, relatedTo?: JsonRpcId, cancel?: Cancellation }): Promise<unknown> {
    if (this.closed) return Promise.reject(new ERR_CLIENT_SESSION_ENDED())
    const id = ++this.#nextOutgoingId
    return new Promise((resolve, reject) => {
      const settle = () => {
        clearTimeout(entry.timer)
        this.#outgoing.delete(id)
        options.cancel?.listen(undefined)
      }
      const entry: Outgoing = {
        method,
        resolve: (result) => { settle(); resolve(result) },
        reject: (err) => { settle(); reject(err) },
        timer: setTimeout(() => {
          this.notify('notifications/cancelled', { requestId: id, reason: 'the gateway stopped waiting for an answer' })
          entry.reject(new ERR_CLIENT_DID_NOT_ANSWER(method, options.timeout))
        }, options.timeout)
      }
      entry.timer.unref()
      options.cancel?.listen({
        cancelled: (reason) => {
          this.notify('notifications/cancelled', { requestId: id, reason })
          entry.reject(new Error(`cancelled by the upstream: ${reason}`))
        }
      })
      this.#outgoing.set(id, entry)
      const message = params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params }
      this.channel.send(JSON.stringify(message), options.relatedTo)
    })
  }

  /**
   * A progress token for the client standing for an upstream's token on one of its requests: tokens of different
   * upstreams may collide, the client's view of them must not.
   */
  routeProgress (token: string | number, session: UpstreamSession): string {
    const route = 'gw-progress-' + (++this.#nextRoute)
    this.#progressRoutes.set(route, { session, token })
    return route
  }

  dropProgressRoute (route: string): void {
    this.#progressRoutes.delete(route)
  }

  /** The upstream session and token behind a progress token the client reports on. */
  progressRoute (route: unknown): { session: UpstreamSession, token: string | number } | undefined {
    return typeof route === 'string' ? this.#progressRoutes.get(route) : undefined
  }

  /** The client's answer to a request of ours; false when no such request is waiting (late or unknown id). */
  answer (id: unknown, result: unknown, error: RpcErrorObject | undefined): boolean {
    const entry = typeof id === 'number' ? this.#outgoing.get(id) : typeof id === 'string' ? this.#outgoing.get(Number(id)) : undefined
    if (entry === undefined) return false
    if (error !== undefined) entry.reject(Object.assign(new Error(error.message), { rpcError: error }))
    else entry.resolve(result)
    return true
  }

  /** Ends the session: calls in flight are cancelled, forwarded requests fail, the channel closes. */
  end (): void {
    this.closed = true
    for (const call of this.inFlight.values()) call.cancel('the session ended')
    this.#progressRoutes.clear()
    for (const entry of [...this.#outgoing.values()]) {
      entry.reject(Object.assign(new ERR_CLIENT_SESSION_ENDED(), {
        rpcError: { code: RpcCode.InternalError, message: 'The client session ended before it answered' }
      }))
    }
    this.channel.close()
  }
}

export interface SessionStoreOptions {
  idleTimeout: number
  max: number
  /** Called for every session that ends (deleted, expired or closed with the store). */
  onEnd: (session: ClientSession) => void
}

export class SessionStore {
  readonly #sessions = new Map<string, ClientSession>()
  #sweeper: NodeJS.Timeout | undefined

  constructor (private readonly options: SessionStoreOptions) {}

  get size (): number {
    return this.#sessions.size
  }

  create (channel: ClientChannel, peer: Peer): ClientSession {
    if (this.#sessions.size >= this.options.max) throw new ERR_SESSION_LIMIT(this.options.max)
    const session = new ClientSession(channel, peer)
    this.#sessions.set(session.id, session)
    return session
  }

  get (id: string): ClientSession | undefined {
    return this.#sessions.get(id)
  }

  delete (id: string): boolean {
    const session = this.#sessions.get(id)
    if (session === undefined) return false
    this.#end(session)
    return true
  }

  all (): IterableIterator<ClientSession> {
    return this.#sessions.values()
  }

  startSweeper (): void {
    if (this.#sweeper !== undefined) return
    const period = Math.max(1000, Math.min(60_000, Math.floor(this.options.idleTimeout / 2)))
    this.#sweeper = setInterval(() => this.sweep(Date.now()), period)
    this.#sweeper.unref()
  }

  /** Ends sessions idle for longer than idleTimeout; returns how many. */
  sweep (now: number): number {
    let ended = 0
    for (const session of this.#sessions.values()) {
      if (session.channel.open || session.inFlight.size > 0) continue
      if (now - session.lastSeen > this.options.idleTimeout) {
        this.#end(session)
        ended++
      }
    }
    return ended
  }

  closeAll (): void {
    clearInterval(this.#sweeper)
    this.#sweeper = undefined
    for (const session of [...this.#sessions.values()]) this.#end(session)
  }

  #end (session: ClientSession): void {
    this.#sessions.delete(session.id)
    session.end()
    this.options.onEnd(session)
  }
}
