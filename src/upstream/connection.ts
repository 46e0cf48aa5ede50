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
 * keep that listing fresh (list_changed, re-initialization), check its health, and reconnect with backoff when it
 * fails. Clients' calls use sessions opened from here (`openSession`) but never wait on the reconnect loop.
 *
 * Health (`healthCheck`): every `intervalMs` (jittered) an MCP ping on the gateway's own session, or an HTTP GET of
 * `path`. `unhealthyThreshold` failures in a row take it down (each failure is checked again after
 * `retryIntervalMs`, not a whole interval later); a check made because a call failed, or because the session's
 * process, stream or socket ended, decides at once — the failure was the first sign. Down, it reconnects with
 * backoff never longer than `intervalMs`, and sooner when a call wants it (`wake`); reconnecting is a check, and
 * once back after a failure, `healthyThreshold` checks in a row must pass before it takes calls again.
 */

export type UpstreamState = 'connecting' | 'up' | 'down' | 'disabled' | 'stopped'

/** How a health check ended. */
export interface HealthCheckResult {
  /** When it ended (ms since the epoch). */
  readonly at: number
  readonly ok: boolean
  readonly ms: number
  readonly error?: string
}

/** What an HTTP GET check reads of a body at most: health pages are short, and nothing of it is used. */
const CHECK_BODY_LIMIT = 64 * 1024

export interface ConnectionObserver {
  state (connection: UpstreamConnection): void
  listing (connection: UpstreamConnection): void
  /** The server sent a list_changed (told before the lists are fetched again). */
  listChanged? (connection: UpstreamConnection, kind: ListKind): void
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

/** An MCP ping on the gateway's session; a server that answers it with a JSON-RPC error still answered: it is alive. */
async function pingCheck (control: UpstreamSession, timeout: number): Promise<void> {
  try {
    await control.request('ping', undefined, { timeout, check: true })
  } catch (err) {
    if ((err as { rpcError?: unknown }).rpcError === undefined) throw err
  }
}

export class UpstreamConnection {
  state: UpstreamState = 'stopped'
  /** Why the upstream is not up (the last failure), for logs, /status and errors. */
  reason: string | undefined
  since = Date.now()
  /** The last health check (undefined: none ran yet). */
  lastCheck: HealthCheckResult | undefined
  /** Health checks failed in a row while up. */
  failedChecks = 0
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
  /** A failed call asked for the running check: its failure decides at once. */
  #suspected = false
  /** It was up since it started: coming back after a failure, it must pass `healthyThreshold` checks. */
  #wasUp = false
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
    if (this.state !== 'up') return
    this.#suspected = true
    this.#check()
  }

  /**
   * A call wanted this upstream while it is down: reconnect now instead of at the end of the backoff ("reconnect
   * on use"), at most once per `reconnectMin`. The call itself does not wait for it.
   */
  wake (): void {
    if (this.state !== 'down' || this.#stopped || Date.now() - this.since < this.options.defaults.reconnectMin) return
    clearTimeout(this.#timer)
    this.#connect().catch(() => {})
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
      // A health page that fails keeps it out, reconnected or not.
      if (this.definition.healthCheck.path !== undefined) {
        await this.#probe(session).catch((err: unknown) => { throw new Error(`health check failed: ${(err as Error).message}`) })
      }
      this.control = session
      this.listing = listing
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
      // Reconnecting was one check passed; at the first start it is all it takes (as Envoy's health checker does).
      if (this.#wasUp && this.definition.healthCheck.healthyThreshold > 1) this.#prove(session, 1)
      else this.#up()
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
        if (kind !== undefined) {
          this.options.observer.listChanged?.(this, kind)
          this.#relist([kind])
        } else relay?.notification(this, message, via)
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

  #up (): void {
    const listing = this.listing as ServiceListing
    this.#wasUp = true
    // Only now: an upstream that reconnects but fails to prove itself healthy keeps backing off.
    this.#attempts = 0
    this.failedChecks = 0
    this.#setState('up', undefined)
    this.#log.info({ tools: listing.tools.length, resources: listing.resources.length, prompts: listing.prompts.length, server: listing.serverInfo }, 'upstream is up')
    this.options.observer.listing(this)
    // The first check anywhere in half to one and a half intervals: upstreams that came up together (start-up, a
    // network blip) are not checked together ever after; the ±10% of the next ones keeps them spread.
    this.#schedule(Math.round(this.definition.healthCheck.intervalMs * (0.5 + Math.random())), () => this.#check())
  }

  /** Connected again after a failure, `passed` checks passed: it takes calls once `healthyThreshold` have. */
  #prove (control: UpstreamSession, passed: number): void {
    const { healthyThreshold, retryIntervalMs } = this.definition.healthCheck
    this.#setState('connecting', `proving healthy: ${passed} of ${healthyThreshold} checks passed`)
    this.#schedule(jittered(retryIntervalMs), () => {
      this.#probe(control).then(() => {
        if (this.control !== control) return
        if (passed + 1 >= healthyThreshold) this.#up()
        else this.#prove(control, passed + 1)
      }, (err: unknown) => {
        if (this.control === control) this.#lost(`health check failed while proving healthy: ${(err as Error).message}`)
      })
    })
  }

  #fail (reason: string): void {
    this.control = undefined
    this.listing = undefined
    if (this.#stopped) return
    // Never longer than a health interval: an upstream that answers again takes calls within one interval of it,
    // whatever the backoff had grown to.
    const { reconnectMin, reconnectMax } = this.options.defaults
    const delay = backoffDelay(this.#attempts++, reconnectMin, Math.max(reconnectMin, Math.min(reconnectMax, this.definition.healthCheck.intervalMs)))
    this.#setState('down', reason)
    this.#log.warn({ reason, retryInMs: delay }, 'upstream is down')
    this.#schedule(delay, () => { this.#connect().catch(() => {}) })
  }

  /** The gateway's session is gone or failing (while up, or while proving healthy): down, and reconnect. */
  #lost (reason: string): void {
    if (this.control === undefined || this.#stopped) return
    const control = this.control
    this.control = undefined
    control?.retire(reason).catch(() => {})
    this.#fail(reason)
  }

  #check (): void {
    this.#checking ??= this.#runCheck().finally(() => {
      this.#checking = undefined
      this.#suspected = false
    })
  }

  async #runCheck (): Promise<void> {
    const control = this.control
    if (this.state !== 'up' || control === undefined) return
    const { intervalMs, retryIntervalMs, unhealthyThreshold } = this.definition.healthCheck
    try {
      await this.#probe(control)
    } catch (err) {
      if (this.control !== control) return
      const failed = ++this.failedChecks
      const reason = `health check failed${failed > 1 ? ` ${failed} times in a row` : ''}: ${(err as Error).message}`
      if (this.#suspected || failed >= unhealthyThreshold) {
        this.#lost(reason)
        return
      }
      this.#log.warn({ reason, unhealthyThreshold }, 'upstream health check failed; checking again')
      this.#schedule(jittered(retryIntervalMs), () => this.#check())
      return
    }
    if (this.control !== control) return
    this.failedChecks = 0
    this.#schedule(jittered(intervalMs), () => this.#check())
  }

  /** One health check: rejects when it failed, and records how it ended in `lastCheck`. */
  async #probe (control: UpstreamSession): Promise<void> {
    const { timeoutMs, intervalMs, path } = this.definition.healthCheck
    const timeout = Math.min(timeoutMs, intervalMs)
    const started = performance.now()
    try {
      if (path !== undefined && this.#http !== undefined) await this.#getCheck(this.#http, path, timeout)
      else await pingCheck(control, timeout)
      this.lastCheck = { at: Date.now(), ok: true, ms: Math.round(performance.now() - started) }
    } catch (err) {
      this.lastCheck = { at: Date.now(), ok: false, ms: Math.round(performance.now() - started), error: (err as Error).message }
      throw err
    }
  }

  /** An HTTP GET of `path` on a connection of its own, with the upstream's configured headers: 2xx passes. */
  async #getCheck (http: HttpUpstream, path: string, timeout: number): Promise<void> {
    const client = http.checkClient()
    try {
      const res = await client.request({
        method: 'GET', path, headers: http.headers, headersTimeout: timeout, bodyTimeout: timeout, signal: AbortSignal.timeout(timeout), reset: true
      })
      await res.body.dump({ limit: CHECK_BODY_LIMIT }).catch(() => {})
      if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`GET ${path} answered HTTP ${res.statusCode}`)
    } finally {
      client.destroy().catch(() => {})
    }
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
