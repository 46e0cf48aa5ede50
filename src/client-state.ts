import type { Params } from '../schemas/jsonrpc.js'
import type { Balancer } from './balancer.js'
import { ERR_INVALID_PARAMS, ERR_UNKNOWN_RESOURCE, ERR_UPSTREAM_UNAVAILABLE } from './errors.js'
import type { Logger } from './logger.js'
import type { SessionBroker } from './session-broker.js'
import { type ClientSession, LOG_LEVELS, type LogLevel } from './sessions.js'
import type { UpstreamConnection } from './upstream/connection.js'
import type { UpstreamSession } from './upstream/session.js'
import type { UpstreamPool } from './upstream-pool.js'

/**
 * What clients set that upstreams must keep knowing: log levels (logging/setLevel) and resource subscriptions.
 * Each is passed to the upstream session that serves the client — its own, or the shared one, where the most
 * verbose level any client asked for is set and a URI is subscribed once for all its subscribers — and set again
 * whenever that session is new or came back empty (a reconnect, a re-initialization).
 */

export interface ClientStateOptions {
  pool: UpstreamPool
  broker: SessionBroker
  balancer: Balancer
  clients: () => Iterable<ClientSession>
  /** The service that serves a URI, per the catalog. */
  resourceOwner: (uri: string) => string | undefined
  /** Deadline of the gateway's own requests (setLevel, subscribe). */
  timeout: number
  log: Logger
}

export class ClientStateSync {
  /** Subscriptions made through shared sessions: upstream id → uri → the clients subscribed. */
  readonly #shared = new Map<string, Map<string, Set<ClientSession>>>()

  constructor (private readonly options: ClientStateOptions) {}

  /** The clients subscribed to `uri` through the shared session of `upstreamId`. */
  subscribers (upstreamId: string, uri: string): Iterable<ClientSession> {
    return this.#shared.get(upstreamId)?.get(uri) ?? []
  }

  /**
   * logging/setLevel: remembered for the client (log messages are filtered to it), passed to every upstream session
   * opened for it, and to shared sessions as the most verbose level any client asked for.
   */
  async setLevel (session: ClientSession | undefined, params: Params | undefined): Promise<unknown> {
    const level = params?.level
    if (!LOG_LEVELS.includes(level as LogLevel)) {
      throw new ERR_INVALID_PARAMS(`logging/setLevel needs params.level, one of ${LOG_LEVELS.join(', ')}; got ${JSON.stringify(level)}`)
    }
    if (session === undefined) throw new ERR_INVALID_PARAMS('logging/setLevel needs a client session')
    session.logLevel = level as LogLevel
    const sets: Array<Promise<unknown>> = []
    for (const upstream of this.options.broker.openSessionsOf(session)) {
      if (upstream.initializeResult?.capabilities.logging !== undefined) sets.push(this.#tell(upstream, 'logging/setLevel', { level }))
    }
    for (const connection of this.options.pool.connections.values()) {
      if (connection.shared) sets.push(this.#setSharedLevel(connection))
    }
    await Promise.allSettled(sets)
    return {}
  }

  /** resources/subscribe: through the client's own session with the owning service, or the shared one (once per URI). */
  async subscribe (session: ClientSession | undefined, params: Params | undefined): Promise<unknown> {
    const uri = params?.uri
    if (typeof uri !== 'string') throw new ERR_INVALID_PARAMS('resources/subscribe needs params.uri')
    if (session === undefined) throw new ERR_INVALID_PARAMS('resources/subscribe needs a client session')
    if (session.subscriptions.has(uri)) return {}
    const service = this.options.resourceOwner(uri)
    if (service === undefined) throw new ERR_UNKNOWN_RESOURCE(uri)
    const replica = this.options.balancer.pick(service, session)
    if (replica === undefined) throw new ERR_UPSTREAM_UNAVAILABLE(service, this.options.pool.whyUnavailable(service))
    const connection = this.options.pool.get(replica.id) as UpstreamConnection
    if (connection.shared) {
      let table = this.#shared.get(replica.id)
      if (table === undefined) this.#shared.set(replica.id, table = new Map())
      let subscribers = table.get(uri)
      if (subscribers === undefined) {
        await this.#tell(await this.options.broker.sessionFor(undefined, connection), 'resources/subscribe', { uri }, true)
        table.set(uri, subscribers = new Set())
      }
      subscribers.add(session)
    } else {
      await this.#tell(await this.options.broker.sessionFor(session, connection), 'resources/subscribe', { uri }, true)
    }
    session.subscriptions.set(uri, replica.id)
    return {}
  }

  async unsubscribe (session: ClientSession | undefined, params: Params | undefined): Promise<unknown> {
    const uri = params?.uri
    if (typeof uri !== 'string') throw new ERR_INVALID_PARAMS('resources/unsubscribe needs params.uri')
    const upstreamId = session?.subscriptions.get(uri)
    if (session === undefined || upstreamId === undefined) return {}
    session.subscriptions.delete(uri)
    const connection = this.options.pool.get(upstreamId)
    if (connection === undefined) return {}
    if (connection.shared) {
      const subscribers = this.#shared.get(upstreamId)?.get(uri)
      subscribers?.delete(session)
      if (subscribers?.size === 0) this.#unsubscribeShared(upstreamId, uri)
      return {}
    }
    const entry = session.upstreams.get(upstreamId)
    if (entry !== undefined) await this.#tell(await entry, 'resources/unsubscribe', { uri }, true)
    return {}
  }

  /** After a client's upstream session opened or came back: its log level and subscriptions there. */
  async restoreClient (session: ClientSession, connection: UpstreamConnection, upstream: UpstreamSession): Promise<void> {
    const sets: Array<Promise<unknown>> = []
    if (session.logLevel !== undefined && upstream.initializeResult?.capabilities.logging !== undefined) {
      sets.push(this.#tell(upstream, 'logging/setLevel', { level: session.logLevel }))
    }
    for (const [uri, upstreamId] of session.subscriptions) {
      if (upstreamId === connection.id) sets.push(this.#tell(upstream, 'resources/subscribe', { uri }))
    }
    await Promise.allSettled(sets)
  }

  /** After a shared session (re)connected: the level and the subscriptions its clients hold. */
  async restoreShared (connection: UpstreamConnection): Promise<void> {
    const control = connection.control
    if (control === undefined) return
    const sets: Array<Promise<unknown>> = [this.#setSharedLevel(connection)]
    for (const uri of this.#shared.get(connection.id)?.keys() ?? []) sets.push(this.#tell(control, 'resources/subscribe', { uri }))
    await Promise.allSettled(sets)
  }

  /** A client session ended: its shared subscriptions go (the last subscriber of a URI unsubscribes it). */
  clientEnded (session: ClientSession): void {
    for (const [uri, upstreamId] of session.subscriptions) {
      const subscribers = this.#shared.get(upstreamId)?.get(uri)
      if (subscribers === undefined) continue
      subscribers.delete(session)
      if (subscribers.size === 0) this.#unsubscribeShared(upstreamId, uri)
    }
  }

  /** The upstream is gone: nothing is subscribed through it any more. */
  connectionRemoved (id: string): void {
    this.#shared.delete(id)
  }

  #unsubscribeShared (upstreamId: string, uri: string): void {
    this.#shared.get(upstreamId)?.delete(uri)
    const control = this.options.pool.get(upstreamId)?.control
    if (control !== undefined) this.#tell(control, 'resources/unsubscribe', { uri }).catch(() => {})
  }

  /** The most verbose level any client asked for, on a shared session (each client's own level filters for it). */
  #setSharedLevel (connection: UpstreamConnection): Promise<unknown> {
    const control = connection.control
    if (control?.initializeResult?.capabilities.logging === undefined) return Promise.resolve()
    let verbose: number = LOG_LEVELS.length
    for (const client of this.options.clients()) {
      if (client.logLevel !== undefined) verbose = Math.min(verbose, LOG_LEVELS.indexOf(client.logLevel))
    }
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
