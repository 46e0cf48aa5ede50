import type { Balancer } from './balancer.js'
import { ClientSession, type OwnUpstreamSession } from './client-session.js'
import type { ClientContext } from './client-context.js'
import type { UpstreamDefinition } from './config/types.js'
import { ERR_UPSTREAM_UNAVAILABLE } from './errors.js'
import type { HealthMonitor } from './health.js'
import type { Logger } from './logger.js'
import type { Registry } from './registry.js'
import type { Relay } from './relay.js'
import type { UpstreamConnection } from './upstream/connection.js'
import { HttpSession } from './upstream/http.js'
import type { UpstreamSession } from './upstream/session.js'
import type { UpstreamPool } from './upstream-pool.js'

/**
 * Which upstream session serves a client's request — the cost model of the gateway. A client costs an upstream
 * nothing unless it needs state of its own there:
 *
 * - Clients that need nothing of their own share the gateway's own session with the upstream (server→client
 *   requests during a call still reach the right client: they travel on that call's answer stream).
 * - A client gets a session of its own on an upstream only when it needs one: it declared sampling, elicitation or
 *   roots, set a log level, or subscribed to a resource there; or the service is `sessionMode: "per-client"`.
 *   It is opened on first use, declares upstream what the client declared, and sticks to its replica (the client's
 *   "pick" for that service): the client's calls go there, and if the replica fails the session moves, its level
 *   and subscriptions with it.
 * - A GET stream is held for it only while something can flow on it to a listening client: the client has a stream
 *   open and a log level, a subscription, or roots there (servers ask for roots at any time, and again after
 *   roots/list_changed).
 * - It closes when idle for `idleTimeout` (it reopens on use). Each upstream holds at most `maxSessions` of them:
 *   the least recently used idle one makes room; with none idle the client's calls use the shared session.
 */

/** Client capabilities passed on to a client's own upstream sessions (tasks are not mapped, so not declared). */
const PASSED_CAPABILITIES = ['roots', 'sampling', 'elicitation']
/** A full upstream is logged at most this often. */
const FULL_WARNING_INTERVAL = 60_000

export interface SessionBrokerOptions {
  pool: UpstreamPool
  registry: Registry
  balancer: Balancer
  health: HealthMonitor
  relay: Relay
  /** A client's own upstream session opened, moved or came back empty: set its level and subscriptions there. */
  restore: (client: ClientSession, connection: UpstreamConnection, upstream: UpstreamSession) => Promise<void>
  /** A client's own session unused this long closes. */
  idleTimeout: number
  log: Logger
}

export class SessionBroker {
  /** Upstream id → the clients' own sessions there, least recently used first. */
  readonly #byUpstream = new Map<string, Map<ClientSession, OwnUpstreamSession>>()
  readonly #fullWarned = new Map<string, number>()
  #sweeper: NodeJS.Timeout | undefined

  constructor (private readonly options: SessionBrokerOptions) {}

  startSweeper (): void {
    if (this.#sweeper !== undefined) return
    const period = Math.max(1000, Math.min(30_000, Math.floor(this.options.idleTimeout / 2)))
    this.#sweeper = setInterval(() => this.sweep(Date.now()), period)
    this.#sweeper.unref()
  }

  stop (): void {
    clearInterval(this.#sweeper)
    this.#sweeper = undefined
  }

  /** How many client sessions are open (or opening) on each upstream. */
  counts (): Map<string, number> {
    const counts = new Map<string, number>()
    for (const [id, table] of this.#byUpstream) counts.set(id, table.size)
    return counts
  }

  /** Whether `client` needs a session of its own on this upstream (see the class comment). */
  needsOwn (client: ClientSession, connection: UpstreamConnection): boolean {
    if (connection.shared) return false
    if (connection.definition.sessionMode === 'per-client') return true
    return client.declared('sampling') || client.declared('elicitation') || client.declared('roots') ||
      client.logLevel !== undefined || client.subscribedOn(connection.definition.service)
  }

  /** Whether a call of `context` on this upstream goes through the shared session (the client keeps nothing there). */
  sharesSession (context: ClientContext, connection: UpstreamConnection): boolean {
    return !(context instanceof ClientSession) || !this.needsOwn(context, connection)
  }

  /**
   * The replica of `service` for a call of `context`: the one holding the client's own session there (sticky, while
   * it is up, not excluded and its circuit lets calls through — an open circuit is a failing replica, so the session
   * moves as it would from one that is down), else the balancer's choice.
   */
  replicaFor (context: ClientContext, service: string, exclude: ReadonlySet<string> | undefined): UpstreamDefinition | undefined {
    if (context instanceof ClientSession) {
      const picked = context.record.picks[service]
      if (picked !== undefined) {
        const definition = this.options.registry.get(picked)
        if (definition !== undefined && definition.service === service && exclude?.has(picked) !== true && this.options.health.isUp(picked) &&
          this.options.balancer.admits?.(picked) !== false) {
          return definition
        }
        this.#unpick(context, service, 'the replica failed; the session moves to another')
      }
    }
    return this.options.balancer.pick(service, context, exclude)
  }

  /**
   * The upstream session a request of `context` uses on this upstream: the client's own (opened on first use) when
   * it needs one, else the shared one. Once open it is returned as is, not as a promise, so a call on it costs no
   * extra turn of the event loop.
   */
  sessionFor (context: ClientContext, connection: UpstreamConnection): Promise<UpstreamSession> | UpstreamSession {
    if (!(context instanceof ClientSession) || !this.needsOwn(context, connection)) return shared(connection)
    return this.#own(context, connection) ?? shared(connection)
  }

  /**
   * The session a subscription of `client` on `service` goes through, opened if need be; `own` tells whether it is
   * the client's own (else the shared one, where the subscription is held for all its subscribers).
   */
  async subscriptionSession (client: ClientSession, service: string): Promise<{ upstream: UpstreamSession, connection: UpstreamConnection, own: boolean }> {
    const replica = this.replicaFor(client, service, undefined)
    if (replica === undefined) throw new ERR_UPSTREAM_UNAVAILABLE(service, this.options.pool.whyUnavailable(service))
    const connection = this.options.pool.get(replica.id) as UpstreamConnection
    const own = connection.shared ? undefined : this.#own(client, connection)
    if (own === undefined) return { upstream: await shared(connection), connection, own: false }
    return { upstream: await own, connection, own: true }
  }

  /** The client's own upstream sessions that are open. */
  openSessionsOf (client: ClientSession): UpstreamSession[] {
    const open: UpstreamSession[] = []
    for (const own of client.upstreams.values()) if (own.session !== undefined && !own.session.closed) open.push(own.session)
    return open
  }

  /** The client's own session on `service`, if one is open. */
  ownSession (client: ClientSession, service: string): UpstreamSession | undefined {
    const session = client.upstreams.get(service)?.session
    return session === undefined || session.closed ? undefined : session
  }

  /**
   * The client set a level, subscribed or opened its stream: the GET streams that now have a listener open.
   * Resolves once they listen, so what the client asked for next cannot pass them by.
   */
  streamsChanged (client: ClientSession): Promise<void> {
    const opening: Array<Promise<void>> = []
    for (const [service, own] of client.upstreams) {
      if (own.session !== undefined) opening.push(this.#listenIfWanted(client, service, own.session))
    }
    return Promise.all(opening).then(() => {})
  }

  /** A request on the client's own session failed: a session its upstream ended is forgotten (a new one opens). */
  dropClosed (context: ClientContext, connection: UpstreamConnection): void {
    if (!(context instanceof ClientSession)) return
    const own = context.upstreams.get(connection.definition.service)
    if (own?.upstreamId === connection.id && own.session?.closed === true) this.#close(own, 'the upstream ended it', true)
  }

  /** The client session ended: its own upstream sessions close. */
  clientEnded (client: ClientSession): void {
    for (const own of [...client.upstreams.values()]) this.#close(own, 'the client session ended', false)
  }

  /**
   * The upstream went down or away: its clients' sessions there are gone. Clients holding subscriptions on its
   * service move to another replica at once (their subscriptions with them); the others move on their next call.
   */
  upstreamLost (connection: UpstreamConnection): void {
    const table = this.#byUpstream.get(connection.id)
    if (table === undefined) return
    const service = connection.definition.service
    const moving: ClientSession[] = []
    for (const own of [...table.values()]) {
      this.#close(own, `upstream ${connection.id} is ${connection.state}`, false)
      if (own.client.subscribedOn(service)) moving.push(own.client)
    }
    this.#byUpstream.delete(connection.id)
    for (const client of moving) this.reopen(client, service)
  }

  /** Opens the client's own session on `service` now (to carry its subscriptions); failures are logged. */
  reopen (client: ClientSession, service: string): void {
    if (client.closed || client.upstreams.has(service)) return
    const replica = this.replicaFor(client, service, undefined)
    const connection = replica === undefined ? undefined : this.options.pool.get(replica.id)
    if (connection === undefined || connection.shared) return
    const opening = this.#own(client, connection)
    if (opening instanceof Promise) {
      opening.catch((err: Error) => {
        this.options.log.warn({ upstream: connection.id, client: client.id, err: err.message }, 'could not move a client\'s subscriptions to another replica')
      })
    }
  }

  /** Closes the client sessions unused for longer than idleTimeout that hold nothing (no call, no subscription). */
  sweep (now: number): number {
    let closed = 0
    for (const table of this.#byUpstream.values()) {
      const expired: OwnUpstreamSession[] = []
      for (const own of table.values()) {
        // Least recently used first: once one is recent enough, all that follow are too.
        if (now - own.lastUsed <= this.options.idleTimeout) break
        if (idle(own)) expired.push(own)
      }
      for (const own of expired) this.#close(own, 'idle', true)
      closed += expired.length
    }
    return closed
  }

  /** The client's own session on this upstream, opened if need be; undefined when the upstream is full. */
  #own (client: ClientSession, connection: UpstreamConnection): UpstreamSession | Promise<UpstreamSession> | undefined {
    const service = connection.definition.service
    const own = client.upstreams.get(service)
    if (own !== undefined) {
      // A direct request (by upstream id) to another replica than the one holding the client's session.
      if (own.upstreamId !== connection.id) return undefined
      const session = own.session
      if (session !== undefined && !session.closed) {
        this.#touch(own)
        return session
      }
      if (own.opening !== undefined) return own.opening
      // Its upstream ended it (its stream or socket closed): a new one replaces it.
      this.#close(own, 'replaced', true)
    }
    return this.#open(client, connection)
  }

  #open (client: ClientSession, connection: UpstreamConnection): Promise<UpstreamSession> | undefined {
    const definition = connection.definition
    const service = definition.service
    let table = this.#byUpstream.get(connection.id)
    if (table === undefined) this.#byUpstream.set(connection.id, table = new Map())
    if (table.size >= definition.maxSessions && !this.#evict(table)) {
      this.#warnFull(connection)
      return undefined
    }
    const own: OwnUpstreamSession = { client, service, upstreamId: connection.id, session: undefined, opening: undefined, lastUsed: Date.now() }
    client.upstreams.set(service, own)
    client.record.picks[service] = connection.id
    table.set(client, own)
    const capabilities: Record<string, unknown> = {}
    for (const name of PASSED_CAPABILITIES) if (client.capabilities[name] !== undefined) capabilities[name] = client.capabilities[name]
    own.opening = connection.openSession({
      capabilities,
      clientInfo: client.record.clientInfo ?? { name: 'unknown-client', version: '0.0.0' },
      protocolVersion: client.protocolVersion
    }, this.options.relay.forClient(client, service, definition.timeout)).then(async (upstream) => {
      if (upstream instanceof HttpSession) {
        // A forgotten session comes back empty: the client's level and subscriptions are set again.
        upstream.onReinitialized = () => { this.options.restore(client, connection, upstream).catch(() => {}) }
      }
      await this.options.restore(client, connection, upstream)
      own.opening = undefined
      if (client.upstreams.get(service) !== own) {
        // The client ended, or its session moved, while this one opened: it was never used.
        upstream.close('the client session ended').catch(() => {})
        throw new ERR_UPSTREAM_UNAVAILABLE(service, 'the client\'s session there closed while it opened', { sent: false, suspect: false })
      }
      own.session = upstream
      await this.#listenIfWanted(client, service, upstream)
      return upstream
    }, (err: unknown) => {
      own.opening = undefined
      this.#close(own, 'it failed to open', false)
      throw err
    })
    return own.opening
  }

  /** Closes the least recently used idle session of a full upstream; false when none is idle. */
  #evict (table: Map<ClientSession, OwnUpstreamSession>): boolean {
    for (const own of table.values()) {
      if (idle(own)) {
        this.#close(own, 'evicted to make room for another client', true)
        return true
      }
    }
    return false
  }

  /** Forgets and closes a client's own session; `keepPick`: the client's next one opens on the same replica. */
  #close (own: OwnUpstreamSession, reason: string, keepPick: boolean): void {
    const { client, service } = own
    if (client.upstreams.get(service) === own) client.upstreams.delete(service)
    if (!keepPick && client.record.picks[service] === own.upstreamId) delete client.record.picks[service]
    const table = this.#byUpstream.get(own.upstreamId)
    if (table?.get(client) === own) table.delete(client)
    own.session?.close(reason).catch(() => {})
  }

  /** The client's pick for `service` failed: its session there closes, the next one opens elsewhere. */
  #unpick (client: ClientSession, service: string, reason: string): void {
    const own = client.upstreams.get(service)
    if (own !== undefined) this.#close(own, reason, false)
    delete client.record.picks[service]
  }

  #touch (own: OwnUpstreamSession): void {
    own.lastUsed = Date.now()
    const table = this.#byUpstream.get(own.upstreamId)
    if (table === undefined) return
    table.delete(own.client)
    table.set(own.client, own)
  }

  #listenIfWanted (client: ClientSession, service: string, upstream: UpstreamSession): Promise<void> {
    if (!(upstream instanceof HttpSession) || !client.channel.open) return Promise.resolve()
    if (client.logLevel !== undefined || client.declared('roots') || client.subscribedOn(service)) return upstream.listen()
    return Promise.resolve()
  }

  #warnFull (connection: UpstreamConnection): void {
    const now = Date.now()
    if (now - (this.#fullWarned.get(connection.id) ?? 0) < FULL_WARNING_INTERVAL) return
    this.#fullWarned.set(connection.id, now)
    this.options.log.warn({ upstream: connection.id, maxSessions: connection.definition.maxSessions },
      'upstream holds its maximum of client sessions, none idle: clients that need their own use the shared session (raise maxSessions)')
  }
}

/** Nothing depends on it now: no call in flight, not opening, no subscription through it. */
function idle (own: OwnUpstreamSession): boolean {
  return own.opening === undefined && (own.session?.inFlight ?? 0) === 0 && !own.client.subscribedOn(own.service)
}

/** The session every client shares on this upstream, while it is up. */
function shared (connection: UpstreamConnection): UpstreamSession | Promise<UpstreamSession> {
  const control = connection.control
  if (control === undefined || connection.state !== 'up') {
    return Promise.reject(new ERR_UPSTREAM_UNAVAILABLE(connection.definition.service, `upstream ${connection.id} is ${connection.state}`,
      { sent: false, suspect: false }))
  }
  return control
}
