import { ERR_ADDRESS_SESSION_LIMIT, ERR_PRINCIPAL_SESSION_LIMIT, ERR_SESSION_LIMIT } from './errors.js'
import type { Principal } from './client-context.js'
import { type ClientChannel, ClientSession, type ClientTransport, type Peer } from './client-session.js'
import { RecencyList } from './recency-list.js'

/**
 * The open client sessions, least recently used first. The store is bounded (`max`, and optionally
 * `maxPerAddress` and `maxPerPrincipal`), but a full store never locks newcomers out while idle sessions exist: it reclaims, first the
 * sessions that never completed initialization, then the idle ones (no stream open, nothing in flight), least
 * recently used first. Their clients get 404 on their next request and initialize again, as the spec provides.
 * Sessions idle for longer than `idleTimeout` are ended by a sweeper.
 */

/** See SessionStore.connections. */
export interface ConnectionFigures {
  readonly sessions: number
  readonly byTransport: Readonly<Record<ClientTransport, number>>
  readonly listening: number
  readonly initializing: number
  readonly ownUpstreamSessions: number
  readonly clients: Array<{ name: string, sessions: number }>
}

export interface SessionStoreOptions {
  idleTimeout: number
  max: number
  /** Sessions one remote address may hold; 0: no limit. */
  maxPerAddress: number
  /** Sessions one authenticated principal may hold; 0: no limit. */
  maxPerPrincipal?: number
  /** Called for every session that ends (deleted, expired, reclaimed or closed with the store). */
  onEnd: (session: ClientSession, why: 'deleted' | 'expired' | 'reclaimed' | 'closed') => void
}

export class SessionStore {
  readonly #sessions = new Map<string, ClientSession>()
  /** The same sessions, least recently used first: touching one makes it the youngest. */
  readonly #recency = new RecencyList<ClientSession>()
  /** Sessions whose client never sent notifications/initialized, oldest first. */
  readonly #uninitialized = new Set<ClientSession>()
  readonly #perAddress = new Map<string, number>()
  readonly #perPrincipal = new Map<string, number>()
  #sweeper: NodeJS.Timeout | undefined

  constructor (private readonly options: SessionStoreOptions) {}

  get size (): number {
    return this.#sessions.size
  }

  /**
   * Who is connected, for the dashboard and /stats: sessions by transport, how many can be sent something now (a
   * stream or socket open), how many are still initializing, the upstream sessions opened for single clients, and
   * the `limit` client applications (clientInfo.name) with the most sessions. One pass over the sessions, when asked.
   */
  connections (limit: number): ConnectionFigures {
    const byTransport: Record<ClientTransport, number> = { 'streamable-http': 0, sse: 0, websocket: 0 }
    const byClient = new Map<string, number>()
    let listening = 0
    let ownUpstreamSessions = 0
    for (const session of this.#sessions.values()) {
      byTransport[session.channel.transport]++
      if (session.channel.open) listening++
      ownUpstreamSessions += session.upstreams.size
      // Client-chosen: clipped, and only the top few reported.
      const name = (session.record.clientInfo?.name ?? 'unknown').slice(0, 100)
      byClient.set(name, (byClient.get(name) ?? 0) + 1)
    }
    const clients = [...byClient].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, limit).map(([name, sessions]) => ({ name, sessions }))
    return { sessions: this.#sessions.size, byTransport, listening, initializing: this.#uninitialized.size, ownUpstreamSessions, clients }
  }

  create (channel: ClientChannel, peer: Peer): ClientSession {
    const { max, maxPerAddress, maxPerPrincipal = 0 } = this.options
    const address = peer.address
    const owner = principalKey(peer.principal ?? null)
    // Room is made among the newcomer's own sessions first, so one tenant's flood ends another's idle sessions
    // only when it has none of its own left to give.
    const own = owner === undefined ? undefined : (s: ClientSession) => principalKey(s.principal) === owner
    const reclaim = (among: ((s: ClientSession) => boolean) | undefined) =>
      (own !== undefined && this.#reclaim(among === undefined ? own : s => among(s) && own(s))) || this.#reclaim(among)
    if (maxPerAddress > 0 && address !== undefined && (this.#perAddress.get(address) ?? 0) >= maxPerAddress) {
      if (!reclaim(s => s.address === address)) throw new ERR_ADDRESS_SESSION_LIMIT(maxPerAddress)
    }
    if (maxPerPrincipal > 0 && own !== undefined && (this.#perPrincipal.get(owner as string) ?? 0) >= maxPerPrincipal) {
      if (!this.#reclaim(own)) throw new ERR_PRINCIPAL_SESSION_LIMIT(peer.principal?.id, maxPerPrincipal)
    }
    if (this.#sessions.size >= max && !reclaim(undefined)) throw new ERR_SESSION_LIMIT(max)
    const session = new ClientSession(channel, peer)
    this.#sessions.set(session.id, session)
    this.#recency.touch(session)
    this.#uninitialized.add(session)
    if (address !== undefined) increment(this.#perAddress, address)
    if (owner !== undefined) increment(this.#perPrincipal, owner)
    return session
  }

  get (id: string): ClientSession | undefined {
    return this.#sessions.get(id)
  }

  /** The session was used: it moves to the young end. */
  touch (session: ClientSession): void {
    session.lastSeen = Date.now()
    if (this.#sessions.get(session.id) === session) this.#recency.touch(session)
  }

  /** The client completed initialization (notifications/initialized). */
  initialized (session: ClientSession): void {
    session.initialized = true
    this.#uninitialized.delete(session)
  }

  delete (id: string): boolean {
    const session = this.#sessions.get(id)
    if (session === undefined) return false
    this.#end(session, 'deleted')
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
    const expired: ClientSession[] = []
    for (const session of this.#sessions.values()) {
      if (now - session.lastSeen > this.options.idleTimeout && !busy(session)) expired.push(session)
    }
    for (const session of expired) this.#end(session, 'expired')
    return expired.length
  }

  closeAll (): void {
    clearInterval(this.#sweeper)
    this.#sweeper = undefined
    for (const session of [...this.#sessions.values()]) this.#end(session, 'closed')
  }

  /**
   * Makes room by ending one session (among those `candidate` accepts, when given): one that never completed
   * initialization and has nothing in flight, else the least recently used idle one. False when every candidate
   * is busy.
   */
  #reclaim (candidate: ((session: ClientSession) => boolean) | undefined): boolean {
    for (const session of this.#uninitialized) {
      if ((candidate === undefined || candidate(session)) && session.inFlight.size === 0) {
        this.#end(session, 'reclaimed')
        return true
      }
    }
    const skipped: ClientSession[] = []
    let victim: ClientSession | undefined
    for (const session of this.#recency.oldestFirst()) {
      if (candidate !== undefined && !candidate(session)) continue
      if (!busy(session)) {
        victim = session
        break
      }
      skipped.push(session)
    }
    // A busy session is in use: treating it as just used keeps the next search from walking past it again.
    for (const session of skipped) this.#recency.touch(session)
    if (victim === undefined) return false
    this.#end(victim, 'reclaimed')
    return true
  }

  #end (session: ClientSession, why: 'deleted' | 'expired' | 'reclaimed' | 'closed'): void {
    if (this.#sessions.get(session.id) !== session) return
    this.#sessions.delete(session.id)
    this.#recency.delete(session)
    this.#uninitialized.delete(session)
    if (session.address !== undefined) decrement(this.#perAddress, session.address)
    const owner = principalKey(session.principal)
    if (owner !== undefined) decrement(this.#perPrincipal, owner)
    session.end()
    this.options.onEnd(session, why)
  }
}

/** A session in use: its client holds a stream open, or a call is in flight. */
function busy (session: ClientSession): boolean {
  return session.channel.open || session.inFlight.size > 0
}

function increment (counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1)
}

function decrement (counts: Map<string, number>, key: string): void {
  const count = (counts.get(key) ?? 1) - 1
  if (count <= 0) counts.delete(key)
  else counts.set(key, count)
}

/** Who a session belongs to, for the per-principal cap; undefined for the anonymous caller (no auth). */
function principalKey (principal: Principal | null): string | undefined {
  return principal === null ? undefined : principal.kind + ':' + principal.id
}
