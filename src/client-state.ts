import type { Params } from '../schemas/jsonrpc.js'
import { type ClientSession, LOG_LEVELS, type LogLevel } from './client-session.js'
import { ERR_INVALID_PARAMS, ERR_METHOD_NOT_FOUND, ERR_SUBSCRIPTION_LIMIT, ERR_UNKNOWN_RESOURCE } from './errors.js'
import type { Logger } from './logger.js'
import type { Registry } from './registry.js'
import type { SessionBroker } from './session-broker.js'
import type { UpstreamConnection } from './upstream/connection.js'
import type { UpstreamSession } from './upstream/session.js'
import type { UpstreamPool } from './upstream-pool.js'

/**
 * What clients set that upstreams must keep knowing: log levels (logging/setLevel) and resource subscriptions.
 * Each reaches the upstream session that serves the client — its own (see SessionBroker), or the shared one, where
 * a URI is subscribed once for all its subscribers and a shared-only upstream (stdio, `sessionMode: "shared"`) gets
 * the most verbose level any client asked for — and is set again whenever that session is new, moved to another
 * replica, or came back empty (a reconnect, a re-initialization).
 */

export interface ClientStateOptions {
  pool: UpstreamPool
  registry: Registry
  broker: SessionBroker
  /** The service that serves a URI, per the catalog. */
  resourceOwner: (uri: string) => string | undefined
  /** Deadline of the gateway's own requests (setLevel, subscribe). */
  timeout: number
  /** Subscriptions one client session may hold (limits.maxSubscriptions). */
  maxSubscriptions: number
  /** Subscriptions all client sessions may hold together (limits.maxSubscriptionsTotal). */
  maxSubscriptionsTotal: number
  log: Logger
}

/** Longest URI that can be subscribed: every subscription is kept for the session's life, so its size is bounded. */
export const MAX_SUBSCRIBED_URI = 4096

/** A URI subscribed through a shared session, once for all its subscribers. */
interface SharedSubscription {
  /** The replica it is subscribed on; undefined while none is up. */
  upstreamId: string | undefined
  readonly clients: Set<ClientSession>
}

export class ClientStateSync {
  /** Clients that set a log level. */
  readonly #leveled = new Set<ClientSession>()
  /** Subscriptions through shared sessions: service → uri → where, and who. */
  readonly #shared = new Map<string, Map<string, SharedSubscription>>()
  /** Service → the clients holding a subscription through their own session there. */
  readonly #ownSubscribers = new Map<string, Set<ClientSession>>()
  /** Subscriptions held or being made, per client session and in all. */
  readonly #held = new Map<ClientSession, number>()
  #heldTotal = 0
  /** Subscribes in flight, by session id and URI. */
  readonly #making = new Map<string, Promise<void>>()

  constructor (private readonly options: ClientStateOptions) {}

  /** The clients that asked for log messages (logging/setLevel). */
  logListeners (): Iterable<ClientSession> {
    return this.#leveled
  }

  /** The clients subscribed to `uri` of `service` through the shared session. */
  subscribers (service: string, uri: string): Iterable<ClientSession> {
    return this.#shared.get(service)?.get(uri)?.clients ?? []
  }

  /**
   * logging/setLevel: remembered for the client (log messages are filtered to it), passed to every upstream session
   * opened for it (and to those it opens later), and to shared-only sessions as the most verbose level asked for.
   */
  async setLevel (session: ClientSession | undefined, params: Params | undefined): Promise<unknown> {
    const level = params?.level
    if (!LOG_LEVELS.includes(level as LogLevel)) {
      throw new ERR_INVALID_PARAMS(`logging/setLevel needs params.level, one of ${LOG_LEVELS.join(', ')}; got ${JSON.stringify(level)}`)
    }
    if (session === undefined) throw new ERR_INVALID_PARAMS('logging/setLevel needs a client session')
    session.record.logLevel = level as LogLevel
    this.#leveled.add(session)
    await this.options.broker.streamsChanged(session)
    const sets: Array<Promise<unknown>> = []
    for (const upstream of this.options.broker.openSessionsOf(session)) {
      if (upstream.initializeResult?.capabilities.logging !== undefined) sets.push(this.#tell(upstream, 'logging/setLevel', { level }))
    }
    for (const connection of this.options.pool.sharedOnly()) {
      if (connection.state === 'up') sets.push(this.#setSharedLevel(connection))
    }
    await Promise.allSettled(sets)
    return {}
  }

  /**
   * resources/subscribe: through the client's own session with the service that serves the URI, or the shared one
   * (once per URI). A URI no upstream lists goes to the service whose URIs it resembles, or to the only service
   * that takes subscriptions: servers may watch resources they do not list.
   */
  async subscribe (session: ClientSession | undefined, params: Params | undefined): Promise<unknown> {
    const uri = params?.uri
    if (typeof uri !== 'string') throw new ERR_INVALID_PARAMS('resources/subscribe needs params.uri')
    if (session === undefined) throw new ERR_INVALID_PARAMS('resources/subscribe needs a client session')
    if (session.subscribed(uri)) return {}
    if (uri.length > MAX_SUBSCRIBED_URI) throw new ERR_INVALID_PARAMS(`resources/subscribe: the URI is longer than ${MAX_SUBSCRIBED_URI} characters`)
    // The same URI twice in one batch: the second waits for the first instead of counting twice.
    const key = session.id + '\n' + uri
    const making = this.#making.get(key)
    if (making !== undefined) {
      await making
      return {}
    }
    this.#reserve(session)
    const made = this.#subscribe(session, uri)
    this.#making.set(key, made)
    try {
      await made
      // The session ended while its subscription was being made: what was just made is undone.
      if (session.closed) this.#drop(session, uri)
    } catch (err) {
      this.#release(session)
      throw err
    } finally {
      this.#making.delete(key)
    }
    return {}
  }

  /** Counts a subscription against both limits before it is made (a batch of subscribes cannot overshoot them). */
  #reserve (session: ClientSession): void {
    const { maxSubscriptions, maxSubscriptionsTotal } = this.options
    const held = this.#held.get(session) ?? 0
    if (held >= maxSubscriptions) throw new ERR_SUBSCRIPTION_LIMIT(`this session holds its maximum of ${maxSubscriptions} (limits.maxSubscriptions)`)
    if (this.#heldTotal >= maxSubscriptionsTotal) {
      throw new ERR_SUBSCRIPTION_LIMIT(`the gateway holds its maximum of ${maxSubscriptionsTotal} over all sessions (limits.maxSubscriptionsTotal)`)
    }
    this.#held.set(session, held + 1)
    this.#heldTotal++
  }

  #release (session: ClientSession, count = 1): void {
    const held = this.#held.get(session)
    if (held === undefined) return // the session ended meanwhile and gave back all it held
    const left = Math.max(held - count, 0)
    if (left > 0) this.#held.set(session, left)
    else this.#held.delete(session)
    this.#heldTotal -= held - left
  }

  async #subscribe (session: ClientSession, uri: string): Promise<void> {
    const service = this.options.resourceOwner(uri) ?? this.#soleSubscribable()
    if (service === undefined) throw new ERR_UNKNOWN_RESOURCE(uri)
    const { upstream, connection, own } = await this.options.broker.subscriptionSession(session, service)
    if ((upstream.initializeResult?.capabilities.resources as { subscribe?: unknown } | undefined)?.subscribe !== true) {
      throw new ERR_METHOD_NOT_FOUND(`resources/subscribe (service ${service} does not offer resource subscriptions)`)
    }
    if (own) {
      // Recorded first, so the session's GET stream opens (and listens) before the server can send an update.
      session.record.subscriptions[uri] = service
      await this.options.broker.streamsChanged(session)
      try {
        await this.#tell(upstream, 'resources/subscribe', { uri }, true)
      } catch (err) {
        delete session.record.subscriptions[uri]
        throw err
      }
      let clients = this.#ownSubscribers.get(service)
      if (clients === undefined) this.#ownSubscribers.set(service, clients = new Set())
      clients.add(session)
      return
    }
    let table = this.#shared.get(service)
    if (table === undefined) this.#shared.set(service, table = new Map())
    let entry = table.get(uri)
    if (entry === undefined) {
      await this.#tell(upstream, 'resources/subscribe', { uri }, true)
      table.set(uri, entry = { upstreamId: connection.id, clients: new Set() })
    }
    entry.clients.add(session)
    session.record.subscriptions[uri] = service
  }

  async unsubscribe (session: ClientSession | undefined, params: Params | undefined): Promise<unknown> {
    const uri = params?.uri
    if (typeof uri !== 'string') throw new ERR_INVALID_PARAMS('resources/unsubscribe needs params.uri')
    const service = session?.record.subscriptions[uri]
    // Not subscribed (or never was): nothing to undo, and nothing wrong with asking.
    if (session === undefined || service === undefined) return {}
    delete session.record.subscriptions[uri]
    this.#release(session)
    const shared = this.#shared.get(service)?.get(uri)
    if (shared?.clients.has(session) === true) {
      this.#leaveShared(session, service, uri, shared)
      return {}
    }
    if (!session.subscribedOn(service)) this.#ownSubscribers.get(service)?.delete(session)
    const upstream = this.options.broker.ownSession(session, service)
    if (upstream !== undefined) await this.#tell(upstream, 'resources/unsubscribe', { uri }, true)
    return {}
  }

  /** After a client's own upstream session opened, moved or came back: its log level and subscriptions there. */
  async restoreClient (session: ClientSession, connection: UpstreamConnection, upstream: UpstreamSession): Promise<void> {
    const sets: Array<Promise<unknown>> = []
    if (session.logLevel !== undefined && upstream.initializeResult?.capabilities.logging !== undefined) {
      sets.push(this.#tell(upstream, 'logging/setLevel', { level: session.logLevel }))
    }
    const service = connection.definition.service
    const subscriptions = session.record.subscriptions
    for (const uri in subscriptions) {
      if (subscriptions[uri] !== service || this.#shared.get(service)?.get(uri)?.clients.has(session) === true) continue
      sets.push(this.#tell(upstream, 'resources/subscribe', { uri }))
    }
    await Promise.allSettled(sets)
  }

  /**
   * An upstream came up: a shared-only one gets the shared level; the shared subscriptions of its service that no
   * replica holds are subscribed there; clients whose own subscriptions could not move yet move there.
   */
  async upstreamUp (connection: UpstreamConnection): Promise<void> {
    const control = connection.control
    if (control === undefined) return
    const service = connection.definition.service
    const sets: Array<Promise<unknown>> = []
    if (connection.shared) sets.push(this.#setSharedLevel(connection))
    for (const [uri, entry] of this.#shared.get(service) ?? []) {
      if (entry.upstreamId !== undefined && entry.upstreamId !== connection.id && this.options.pool.get(entry.upstreamId)?.state === 'up') continue
      entry.upstreamId = connection.id
      sets.push(this.#tell(control, 'resources/subscribe', { uri }))
    }
    for (const client of this.#ownSubscribers.get(service) ?? []) this.options.broker.reopen(client, service)
    await Promise.allSettled(sets)
  }

  /** An upstream went down or away: the shared subscriptions it held move to another replica that is up. */
  upstreamLost (connection: UpstreamConnection): void {
    const service = connection.definition.service
    for (const [uri, entry] of this.#shared.get(service) ?? []) {
      if (entry.upstreamId !== connection.id) continue
      entry.upstreamId = undefined
      const other = this.#upReplica(service, connection.id)
      if (other?.control === undefined) continue
      entry.upstreamId = other.id
      this.#tell(other.control, 'resources/subscribe', { uri }).catch(() => {})
    }
  }

  /** A client session ended: it leaves the shared subscriptions (the last subscriber of a URI unsubscribes it). */
  clientEnded (session: ClientSession): void {
    this.#leveled.delete(session)
    const held = this.#held.get(session)
    if (held !== undefined) this.#release(session, held)
    const subscriptions = session.record.subscriptions
    for (const uri in subscriptions) this.#drop(session, uri)
  }

  /** What an ended session held for `uri`: it leaves the shared subscription, and is no longer an own subscriber. */
  #drop (session: ClientSession, uri: string): void {
    const service = session.record.subscriptions[uri]
    if (service === undefined) return
    this.#ownSubscribers.get(service)?.delete(session)
    const shared = this.#shared.get(service)?.get(uri)
    if (shared?.clients.has(session) === true) this.#leaveShared(session, service, uri, shared)
  }

  #leaveShared (session: ClientSession, service: string, uri: string, entry: SharedSubscription): void {
    entry.clients.delete(session)
    if (entry.clients.size > 0) return
    this.#shared.get(service)?.delete(uri)
    const control = entry.upstreamId === undefined ? undefined : this.options.pool.get(entry.upstreamId)?.control
    if (control !== undefined) this.#tell(control, 'resources/unsubscribe', { uri }).catch(() => {})
  }

  /** The only service that takes subscriptions, if there is exactly one. */
  #soleSubscribable (): string | undefined {
    let found: string | undefined
    for (const connection of this.options.pool.connections.values()) {
      const resources = connection.listing?.capabilities.resources as { subscribe?: unknown } | undefined
      if (resources?.subscribe !== true) continue
      const service = connection.definition.service
      if (found !== undefined && found !== service) return undefined
      found = service
    }
    return found
  }

  #upReplica (service: string, except: string): UpstreamConnection | undefined {
    for (const replica of this.options.registry.replicas(service)) {
      if (replica.id === except) continue
      const connection = this.options.pool.get(replica.id)
      if (connection?.state === 'up') return connection
    }
    return undefined
  }

  /** The most verbose level any client asked for, on a shared session (each client's own level filters for it). */
  #setSharedLevel (connection: UpstreamConnection): Promise<unknown> {
    const control = connection.control
    if (control?.initializeResult?.capabilities.logging === undefined) return Promise.resolve()
    let verbose: number = LOG_LEVELS.length
    for (const client of this.#leveled) verbose = Math.min(verbose, LOG_LEVELS.indexOf(client.logLevel as LogLevel))
    if (verbose === LOG_LEVELS.length) return Promise.resolve()
    return this.#tell(control, 'logging/setLevel', { level: LOG_LEVELS[verbose] })
  }

  /** A request of the gateway's own on an upstream session; failures are logged unless `strict` (then thrown). */
  async #tell (upstream: UpstreamSession, method: string, params: Params, strict = false): Promise<unknown> {
    try {
      return await upstream.request(method, params, { timeout: this.options.timeout })
    } catch (err) {
      if (strict) throw err
      this.options.log.warn({ upstream: upstream.serverId, method, err: (err as Error).message }, 'an upstream refused a setting the gateway passed on')
      return undefined
    }
  }
}
