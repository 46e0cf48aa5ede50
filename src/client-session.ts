import { randomUUID } from 'node:crypto'
import type { JsonRpcId, Params } from '../schemas/jsonrpc.js'
import { CallsInFlight } from './calls-in-flight.js'
import type { Cancellation } from './cancellation.js'
import type { ClientContext, Principal } from './client-context.js'
import { ERR_CLIENT_DID_NOT_ANSWER, ERR_CLIENT_SESSION_ENDED, type RpcErrorObject, RpcCode } from './errors.js'
import { notificationMessage } from './jsonrpc.js'
import type { UpstreamSession } from './upstream/session.js'

/**
 * A downstream session: what one client holds with the gateway, however it is connected (Streamable HTTP, legacy
 * SSE, WebSocket). What must outlive this process's memory — ids, protocol version, capabilities, principal, log
 * level, subscriptions, replica picks — is one plain serializable record, so a later store can keep it in Redis or
 * seal it into the session id. The rest is live: how to reach the client (its channel), its calls in flight, the
 * requests the gateway forwarded to it, and the upstream sessions opened for it alone.
 */

/** The transport a client session came through. */
export type ClientTransport = 'streamable-http' | 'sse' | 'websocket'

/** How messages reach one client: its transport's side of the session. */
export interface ClientChannel {
  /** Which transport it is (the dashboard's connection figures). */
  readonly transport: ClientTransport
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
  /** Who authenticated the request (null or absent without `auth`): a session belongs to the one that opened it. */
  readonly principal?: Principal | null
}

export interface ClientInfo {
  name: string
  version: string
  [key: string]: unknown
}

export const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/** Everything about a session that is not a live object: JSON-serializable as it is. */
export interface SessionRecord {
  readonly id: string
  readonly createdAt: number
  /** Negotiated at initialize; undefined until then. */
  protocolVersion: string | undefined
  capabilities: Record<string, unknown>
  clientInfo: ClientInfo | undefined
  principal: Principal | null
  /** The level set with logging/setLevel; undefined: the client never set one. */
  logLevel: LogLevel | undefined
  /** Resource URI → the service it is subscribed on. */
  subscriptions: Record<string, string>
  /** Service → the replica (upstream id) that holds the client's own upstream session there. */
  picks: Record<string, string>
}

/** The protocol version assumed for a client that never said (the spec's rule for HTTP without the header). */
const DEFAULT_PROTOCOL_VERSION = '2025-03-26'

interface Outgoing {
  method: string
  resolve (result: unknown): void
  reject (err: Error): void
  timer: NodeJS.Timeout
}

/** A client's session with the gateway; it is also the client's context for every request it makes. */
export class ClientSession implements ClientContext {
  readonly record: SessionRecord
  readonly address: string | undefined
  lastSeen: number
  /** Set when the client's notifications/initialized arrived (sessions that never send it are reclaimed first). */
  initialized = false
  /** Service → the upstream session opened for this client alone there (see SessionBroker). */
  readonly upstreams = new Map<string, OwnUpstreamSession>()
  /** Calls in flight, by the client's request id: cancelling one cancels it upstream. */
  readonly inFlight = new CallsInFlight()
  /** Requests addressed to one upstream (the WebSocket envelope) in flight; they have no id to cancel them by. */
  directInFlight = 0
  closed = false
  /** Requests forwarded to the client on behalf of upstreams, by the id the client saw. */
  readonly #outgoing = new Map<number, Outgoing>()
  #nextOutgoingId = 0
  /** Progress tokens the client was given for forwarded requests → the upstream session and token they stand for. */
  readonly #progressRoutes = new Map<string, { session: UpstreamSession, token: string | number }>()
  #nextRoute = 0

  constructor (readonly channel: ClientChannel, peer: Peer) {
    const now = Date.now()
    this.address = peer.address
    this.lastSeen = now
    this.record = {
      id: randomUUID(),
      createdAt: now,
      protocolVersion: undefined,
      capabilities: {},
      clientInfo: undefined,
      principal: peer.principal ?? null,
      logLevel: undefined,
      subscriptions: Object.create(null) as Record<string, string>,
      picks: Object.create(null) as Record<string, string>
    }
  }

  get id (): string {
    return this.record.id
  }

  /** Whether initialize was answered (the version is negotiated). */
  get negotiated (): boolean {
    return this.record.protocolVersion !== undefined
  }

  get protocolVersion (): string {
    return this.record.protocolVersion ?? DEFAULT_PROTOCOL_VERSION
  }

  get capabilities (): Readonly<Record<string, unknown>> {
    return this.record.capabilities
  }

  get principal (): Principal | null {
    return this.record.principal
  }

  get logLevel (): LogLevel | undefined {
    return this.record.logLevel
  }

  /** Whether the client declared a client capability (`sampling`, `elicitation`, `roots`), optionally a sub-feature. */
  declared (capability: string, feature?: string): boolean {
    const value = this.record.capabilities[capability]
    if (value === undefined || value === null) return false
    if (feature === undefined) return true
    return typeof value === 'object' && (value as Record<string, unknown>)[feature] !== undefined
  }

  /** Whether a log message of `level` passes the level the client set (all pass when it set none). */
  wantsLog (level: unknown): boolean {
    const set = this.record.logLevel
    if (set === undefined) return true
    const index = LOG_LEVELS.indexOf(level as LogLevel)
    return index === -1 || index >= LOG_LEVELS.indexOf(set)
  }

  /** Whether the client subscribed to `uri`. */
  subscribed (uri: string): boolean {
    return this.record.subscriptions[uri] !== undefined
  }

  /** Whether the client holds a subscription on `service`. */
  subscribedOn (service: string): boolean {
    for (const uri in this.record.subscriptions) if (this.record.subscriptions[uri] === service) return true
    return false
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
    this.inFlight.cancelAll('the session ended')
    this.#progressRoutes.clear()
    for (const entry of [...this.#outgoing.values()]) {
      entry.reject(Object.assign(new ERR_CLIENT_SESSION_ENDED(), {
        rpcError: { code: RpcCode.InternalError, message: 'The client session ended before it answered' }
      }))
    }
    this.channel.close()
  }
}

/** The upstream session a client holds alone on one replica of a service (see SessionBroker). */
export interface OwnUpstreamSession {
  readonly client: ClientSession
  readonly service: string
  /** The replica (upstream id) it is on. */
  readonly upstreamId: string
  /** Set once open. */
  session: UpstreamSession | undefined
  /** Set while it opens. */
  opening: Promise<UpstreamSession> | undefined
  lastUsed: number
}
