import type { JsonRpcNotification } from '../../schemas/jsonrpc.js'
import type { UpstreamDefaults, UpstreamDefinition } from '../config/types.js'
import { backoffDelay, jittered } from '../backoff.js'
import { ERR_UPSTREAM_UNAVAILABLE } from '../errors.js'
import type { Logger } from '../logger.js'
import type { ListKind, ServiceListing } from '../mcp-types.js'
import { LATEST_PROTOCOL_VERSION } from '../protocol.js'
import { HttpSession } from './http.js'
import { HttpUpstream } from './http-upstream.js'
import { listServer } from './listing.js'
import type { Pending } from './pending.js'
import type { ClientIdentity, IncomingRequest, SessionHandlers, UpstreamSession } from './session.js'
import { SseSession } from './sse.js'
import { StdioSession } from './stdio.js'
import { WebSocketSession } from './websocket.js'

/**
 * The gateway's own, long-lived relationship with one upstream: connect and initialize it, list what it offers,
 * keep that listing fresh (list_changed, re-initialization), ping it, and reconnect with backoff when it fails.
 * Clients' calls use sessions opened from here (`openSession`) but never wait on the reconnect loop.
 */

export type UpstreamState = 'connecting' | 'up' | 'down' | 'disabled' | 'stopped'

export interface ConnectionObserver {
  state (connection: UpstreamConnection): void
  listing (connection: UpstreamConnection): void
}

/** Where the gateway's own session sends what the server says that is not about its lists (see Relay). */
export interface ConnectionRelay {
  notification (connection: UpstreamConnection, message: JsonRpcNotification, via: Pending | undefined): void
  request (connection: UpstreamConnection, incoming: IncomingRequest): Promise<unknown>
}

export interface ConnectionOptions {
  defaults: UpstreamDefaults
  clientInfo: { name: string, version: string }
  /**
   * Declared by the gateway's own session. The catalog is listed from it, and some servers offer tools only to
   * clients that declare sampling, elicitation or roots, so the gateway declares what it can forward.
   */
  clientCapabilities?: Record<string, unknown>
  relay?: ConnectionRelay
  log: Logger
  observer: ConnectionObserver
  /** Wait between the steps of stopping a stdio server (stdin closed, SIGTERM, SIGKILL). */
  stopGrace?: number
  /** Deepest nesting accepted in what the upstream sends. */
  maxJsonDepth?: number
  /** Longest message accepted from the upstream (characters). */
  maxMessageLength?: number
}

/**
 * What a Streamable HTTP server answers an initialize POST with when it only speaks the legacy HTTP+SSE transport
 * (the spec's backwards-compatibility rule, 2025-11-25 wording): the client then tries GET and an `endpoint` event.
 */
const LEGACY_STATUSES = new Set([400, 404, 405])
const LIST_CHANGED: Record<string, ListKind> = {
  'notifications/tools/list_changed': 'tools',
  'notifications/resources/list_changed': 'resources',
  'notifications/prompts/list_changed': 'prompts'
}

export class UpstreamConnection {
  state: UpstreamState = 'stopped'
  /** Why the upstream is not up (the last failure), for logs, /status and errors. */
  reason: string | undefined
  since = Date.now()
  /** When its health check (a ping on the gateway's session) last ended, answered or not; undefined: never ran. */
  lastCheck: number | undefined
  listing: ServiceListing | undefined
  /** The gateway's own session, which every client without a session of its own here shares. */
  control: UpstreamSession | undefined
  readonly #log: Logger
  #http: HttpUpstream | undefined
  /** The HTTP upstream speaks the legacy HTTP+SSE transport: configured so, or learned by falling back to it. */
  #legacySse: boolean
  #attempts = 0
  #timer: NodeJS.Timeout | undefined
  #stopped = true
  #checking: Promise<void> | undefined
  #relisting: Promise<void> = Promise.resolve()
  /** A refresh is waiting to run, for these kinds. */
  #relistQueued = false
  readonly #relistKinds = new Set<ListKind>()

  constructor (readonly definition: UpstreamDefinition, private readonly options: ConnectionOptions) {
    this.#log = options.log.child({ upstream: definition.id })
    this.#legacySse = definition.transport === 'sse'
  }

  get id (): string {
    return this.definition.id
  }

  /** The transport in use: the configured one, or legacy SSE once a Streamable HTTP upstream fell back to it. */
  get transport (): UpstreamDefinition['transport'] {
    return this.#legacySse ? 'sse' : this.definition.transport
  }

  /**
   * Only one session serves every client: a stdio process is a single session, and `sessionMode: "shared"` asks
   * for sharing. Every other upstream can also give a client a session of its own (an SSE stream, a socket, an
   * Mcp-Session-Id).
   */
  get shared (): boolean {
    return this.definition.transport === 'stdio' || this.definition.sessionMode === 'shared'
  }

  /** The process id of a stdio upstream while it runs. */
  get pid (): number | undefined {
    return this.control instanceof StdioSession ? this.control.pid : undefined
  }

  /** Starts connecting; resolves once the first attempt has succeeded or failed (it never rejects). */
  start (): Promise<void> {
    if (!this.definition.enabled) {
      this.#setState('disabled', 'disabled (enabled: false)')
      return Promise.resolve()
    }
    this.#stopped = false
    return this.#connect()
  }

  /**
   * A session for one client: a new upstream session declaring what the client declared, with `handlers` for what
   * the server sends it (set before initialize: a server may ask for roots at once), or the shared one.
   */
  async openSession (identity: ClientIdentity, handlers: SessionHandlers): Promise<UpstreamSession> {
    if (this.state !== 'up' || this.control === undefined) {
      throw new ERR_UPSTREAM_UNAVAILABLE(this.definition.service, `upstream ${this.id} is ${this.state}: ${this.reason ?? 'not connected'}`)
    }
    if (this.shared) return this.control
    const session = this.#transportSession(this.#legacySse)
    session.handlers = handlers
    try {
      await session.initialize(identity, this.options.defaults.connectTimeout)
    } catch (err) {
      await session.close((err as Error).message)
      throw err
    }
    // No GET stream yet: the broker opens one once something can flow on it to a listening client.
    return session
  }

  /**
   * A client's call failed in a way that may mean the upstream is gone: check now instead of at the next ping,
   * so the catalog and the balancer learn it in one round trip.
   */
  suspect (): void {
    if (this.state === 'up') this.#check()
  }

  async close (): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    const control = this.control
    this.control = undefined
    this.listing = undefined
    this.#setState('stopped', 'stopped')
    await control?.close('the gateway is stopping this upstream')
    await this.#http?.close()
    this.#http = undefined
  }

  async #connect (): Promise<void> {
    this.#setState('connecting', this.reason)
    let session: UpstreamSession | undefined
    try {
      const identity: ClientIdentity = {
        capabilities: this.options.clientCapabilities ?? {},
        clientInfo: this.options.clientInfo,
        protocolVersion: LATEST_PROTOCOL_VERSION
      }
      session = this.#createSession(false)
      try {
        await session.initialize(identity, this.options.defaults.connectTimeout)
        if (session instanceof HttpSession) this.#legacySse = false
      } catch (err) {
        if (!this.#speaksLegacySse(session, err)) throw err
        await session.close((err as Error).message)
        session = this.#createSession(true)
        await this.#initializeLegacy(session, identity, err as Error)
      }
      const listing = await this.#list(session)
      if (this.#stopped) {
        await session.close('the gateway is stopping this upstream')
        return
      }
      this.control = session
      this.listing = listing
      this.#attempts = 0
      if (session instanceof HttpSession) {
        session.onReinitialized = () => this.#relist(['tools', 'resources', 'prompts'])
        // Its GET stream dropping is the first sign of an upstream going away: check at once, not at the next ping.
        session.onStreamLost = () => this.suspect()
        session.listen().catch(() => {})
      } else {
        // A process, stream or socket that ends on its own takes the upstream down at once, not at the next ping.
        const own = session
        const ended = own instanceof StdioSession ? own.exited : (own as SseSession | WebSocketSession).ended
        ended.then((reason) => { if (this.control === own) this.#lost(reason) })
      }
      this.#setState('up', undefined)
      this.#log.info({ tools: listing.tools.length, resources: listing.resources.length, prompts: listing.prompts.length, server: listing.serverInfo }, 'upstream is up')
      this.options.observer.listing(this)
      this.#schedule(jittered(this.options.defaults.healthInterval), () => this.#check())
    } catch (err) {
      const reason = (err as Error).message
      await session?.close(reason)
      this.#fail(reason)
    }
  }

  /** A Streamable HTTP upstream answered initialize as a legacy HTTP+SSE server does. */
  #speaksLegacySse (session: UpstreamSession, err: unknown): boolean {
    const status = (err as { upstreamStatus?: unknown }).upstreamStatus
    return this.definition.transport === 'streamable-http' && session instanceof HttpSession &&
      (err as { code?: unknown }).code === 'MCPGW_ERR_UPSTREAM_HTTP' && typeof status === 'number' && LEGACY_STATUSES.has(status)
  }

  /** The fallback: the same URL as a legacy HTTP+SSE stream; remembered for the sessions opened later. */
  async #initializeLegacy (session: UpstreamSession, identity: ClientIdentity, streamable: Error): Promise<void> {
    try {
      await session.initialize(identity, this.options.defaults.connectTimeout)
    } catch (err) {
      throw new ERR_UPSTREAM_UNAVAILABLE(this.definition.service, `upstream ${this.id} failed as Streamable HTTP (${streamable.message}) ` +
        `and as legacy HTTP+SSE (${(err as Error).message})`)
    }
    if (!this.#legacySse) this.#log.info({ url: this.definition.url }, 'upstream speaks the legacy HTTP+SSE transport')
    this.#legacySse = true
  }

  /** A session of this upstream's transport (`legacySse`: of an HTTP upstream, over the legacy transport). */
  #transportSession (legacySse: boolean): UpstreamSession {
    const session = this.#newSession(legacySse)
    if (this.options.maxJsonDepth !== undefined) session.maxJsonDepth = this.options.maxJsonDepth
    if (this.options.maxMessageLength !== undefined) session.maxMessageLength = this.options.maxMessageLength
    return session
  }

  #newSession (legacySse: boolean): UpstreamSession {
    switch (this.definition.transport) {
      case 'stdio':
        return new StdioSession(this.definition, this.#log, { stopGrace: this.options.stopGrace ?? 2000 })
      case 'websocket':
        return new WebSocketSession(this.definition)
      default:
        this.#http ??= new HttpUpstream(this.definition, {
          connectTimeout: this.options.defaults.connectTimeout,
          streamRetry: this.options.defaults.reconnectMin,
          streamRetryMax: this.options.defaults.reconnectMax
        })
        return legacySse ? new SseSession(this.#http) : new HttpSession(this.#http)
    }
  }

  /** The gateway's own session, with handlers that keep the listing fresh and relay the rest. */
  #createSession (legacySse: boolean): UpstreamSession {
    const session = this.#transportSession(legacySse || this.definition.transport === 'sse')
    const relay = this.options.relay
    session.handlers = {
      onNotification: (message, via) => {
        const kind = LIST_CHANGED[message.method]
        if (kind !== undefined) this.#relist([kind])
        else relay?.notification(this, message, via)
      },
      onRequest: (incoming) => {
        if (incoming.message.method === 'ping') return Promise.resolve({})
        if (relay !== undefined) return relay.request(this, incoming)
        return Promise.reject(Object.assign(new Error('unsupported'), {
          rpcError: { code: -32601, message: `Method not found: ${incoming.message.method}` }
        }))
      }
    }
    return session
  }

  #fail (reason: string): void {
    this.control = undefined
    this.listing = undefined
    if (this.#stopped) return
    // Never longer than a health interval: an upstream that answers again takes calls within one interval of it,
    // whatever the backoff had grown to.
    const { reconnectMin, reconnectMax, healthInterval } = this.options.defaults
    const delay = backoffDelay(this.#attempts++, reconnectMin, Math.max(reconnectMin, Math.min(reconnectMax, healthInterval)))
    this.#setState('down', reason)
    this.#log.warn({ reason, retryInMs: delay }, 'upstream is down')
    this.#schedule(delay, () => { this.#connect().catch(() => {}) })
  }

  #lost (reason: string): void {
    if (this.state !== 'up') return
    const control = this.control
    this.control = undefined
    control?.retire(reason).catch(() => {})
    this.#fail(reason)
  }

  #check (): void {
    this.#checking ??= this.#ping().finally(() => { this.#checking = undefined })
  }

  async #ping (): Promise<void> {
    const control = this.control
    if (this.state !== 'up' || control === undefined) return
    const { connectTimeout, healthInterval } = this.options.defaults
    try {
      await control.request('ping', undefined, { timeout: Math.min(connectTimeout, healthInterval) })
      this.lastCheck = Date.now()
    } catch (err) {
      this.lastCheck = Date.now()
      // A server that does not implement ping still answered: it is alive.
      if ((err as { rpcError?: unknown }).rpcError === undefined && this.control === control) {
        this.#lost(`health check failed: ${(err as Error).message}`)
        return
      }
    }
    if (this.control === control) this.#schedule(jittered(healthInterval), () => this.#check())
  }

  /**
   * Lists `kinds` again (a list_changed, a re-initialization). Requests coalesce: at most one refresh runs and one
   * waits, holding every kind asked for meanwhile, so a storm of list_changed costs two listings, not thousands.
   */
  #relist (kinds: ListKind[]): void {
    for (const kind of kinds) this.#relistKinds.add(kind)
    if (this.#relistQueued) return
    this.#relistQueued = true
    this.#relisting = this.#relisting.then(async () => {
      this.#relistQueued = false
      const wanted = [...this.#relistKinds]
      this.#relistKinds.clear()
      const control = this.control
      const listing = this.listing
      if (control === undefined || listing === undefined) return
      try {
        const fresh = await this.#list(control, wanted)
        if (this.control !== control) return
        const changed = wanted.filter(k => fresh.digests[k] !== listing.digests[k])
        if (changed.length === 0) return
        this.listing = fresh
        this.#log.info({ changed }, 'upstream lists changed')
        this.options.observer.listing(this)
      } catch (err) {
        this.#log.warn({ err: (err as Error).message, kinds: wanted }, 'could not refresh upstream lists')
      }
    })
  }

  /** Lists what the server offers, per the capabilities it declared; `kinds` limits a refresh. */
  #list (session: UpstreamSession, kinds?: ListKind[]): Promise<ServiceListing> {
    return listServer(session, { upstream: this.id, timeout: this.options.defaults.connectTimeout, log: this.#log }, this.listing, kinds)
  }

  #setState (state: UpstreamState, reason: string | undefined): void {
    if (this.state === state && this.reason === reason) return
    this.state = state
    this.reason = reason
    this.since = Date.now()
    this.options.observer.state(this)
  }

  #schedule (ms: number, fn: () => void): void {
    clearTimeout(this.#timer)
    if (this.#stopped) return
    this.#timer = setTimeout(fn, ms)
    this.#timer.unref()
  }
}
