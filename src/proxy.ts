import { performance } from 'node:perf_hooks'
import type { Context } from '@opentelemetry/api'
import type { JsonRpcId, Params } from '../schemas/jsonrpc.js'
import type { Balancer } from './balancer.js'
import { AuditLog } from './audit.js'
import { AccessPolicy } from './auth/access-policy.js'
import { ANONYMOUS, type ClientContext, samePrincipal } from './client-context.js'
import { ClientStateSync } from './client-state.js'
import type { CacheSettings, GatewayConfig } from './config/types.js'
import { Dispatcher } from './dispatcher.js'
import { ERR_SHUTTING_DOWN } from './errors.js'
import { type CallHooks, type CallObserver, type ForwardedCall, Forwarder, type ForwardOptions } from './forwarder.js'
import type { HealthMonitor } from './health.js'
import { type ListName, LiveCatalog } from './catalog/live-catalog.js'
import type { Logger } from './logger.js'
import type { RateLimiter } from './limits/rate-limiter.js'
import type { ServiceListing, Tool } from './mcp-types.js'
import { RawResult, resultValue } from './raw-result.js'
import type { Registry } from './registry.js'
import { Relay } from './relay.js'
import { SessionBroker } from './session-broker.js'
import type { ClientChannel, ClientSession, Peer } from './client-session.js'
import { SessionStore } from './session-store.js'
import type { ClientEndpoint, RequestHandle } from './transport/endpoint.js'
import type { UpstreamConnection } from './upstream/connection.js'
import { type UpstreamHealthReport, upstreamHealth } from './upstream-health.js'
import { type CacheObserver, ResultCache } from './result-cache.js'
import { FileLayer } from './result-cache/file-layer.js'
import { RedisLayer } from './result-cache/redis-layer.js'
import { globMatcher } from './naming.js'
import type { McpTracing, TraceCarrier } from './tracing.js'
import { errorType } from './mcp-semconv.js'
import { type StateCounts, UpstreamPool, type UpstreamReport } from './upstream-pool.js'

/**
 * The gateway's engine, behind one facade: its lifecycle (start, drain, close), the programmatic API
 * (`callTool`, `listTools`, …) and the endpoint the client transports serve. It composes the pieces that do the
 * work — the upstream pool, the live catalog, the session broker, the client-state sync, the forwarder and the
 * dispatcher — and knows nothing of HTTP.
 */

export type { CallOutcome } from './forwarder.js'
export type { UpstreamReport } from './upstream-pool.js'

export type { UpstreamHealthReport } from './upstream-health.js'
export interface ProxyObserver extends CallObserver {
  sessions (count: number): void
  /** The result cache's hits, misses and stores (metrics). */
  readonly cache?: CacheObserver
  /** A client request was answered after `seconds`; `errorType` as the MCP conventions say (undefined: success). */
  serverOperation? (method: string, seconds: number, errorType: string | undefined): void
}

export interface ProxyOptions {
  config: GatewayConfig
  registry: Registry
  health: HealthMonitor
  balancer: Balancer
  log: Logger
  version: string
  observer?: ProxyObserver
  /** Counts every client request against the rate limits (see RateLimiter). */
  limiter?: RateLimiter | null
  /** Spans per client request and upstream attempt; undefined: tracing is off. */
  tracing?: McpTracing | undefined
}

/** Options of a programmatic call. */
export type CallContext = ForwardOptions & {
  /** Who is calling (defaults to ANONYMOUS). */
  client?: ClientContext
  /** The trace context of the HTTP request that asked for the call (REST), if any. */
  carrier?: TraceCarrier | undefined
}

/** What the gateway's own sessions declare upstream: everything it can forward to a client that supports it. */
const FORWARDABLE_CAPABILITIES = Object.freeze({ roots: { listChanged: true }, sampling: {}, elicitation: { form: {}, url: {} } })

const LIST_METHODS: Readonly<Record<ListName, string>> = {
  tools: 'tools/list', resources: 'resources/list', resourceTemplates: 'resources/templates/list', prompts: 'prompts/list'
}

export class McpProxy implements ClientEndpoint {
  readonly sessions: SessionStore
  readonly #pool: UpstreamPool
  readonly #catalog: LiveCatalog
  /** The result cache, when configured (`cache`, or a server's own). */
  readonly cache: ResultCache | undefined
  readonly #relay: Relay
  readonly #broker: SessionBroker
  readonly #state: ClientStateSync
  readonly #forwarder: Forwarder
  readonly #dispatcher: Dispatcher
  readonly #config: GatewayConfig
  readonly #registry: Registry
  readonly #observer: ProxyObserver | undefined
  readonly #tracing: McpTracing | undefined
  readonly #balancer: Balancer
  /** Set when clients authenticate: their requests are logged. */
  readonly #audit: AuditLog | undefined
  readonly #limiter: RateLimiter | undefined
  #started = false
  #closing = false
  #draining = false

  constructor (options: ProxyOptions) {
    const { config, registry, log } = options
    this.#config = config
    this.#registry = registry
    this.#observer = options.observer
    this.#tracing = options.tracing
    this.#balancer = options.balancer
    this.#audit = config.auth === null ? undefined : new AuditLog(log.child({ component: 'audit' }))
    this.#limiter = options.limiter ?? undefined
    this.sessions = new SessionStore({
      idleTimeout: config.sessions.idleTimeout,
      max: config.sessions.max,
      maxPerAddress: config.sessions.maxPerAddress,
      maxPerPrincipal: config.sessions.maxPerPrincipal,
      onEnd: (session) => this.#sessionEnded(session)
    })
    this.#catalog = new LiveCatalog({
      naming: config,
      log,
      broadcast: (message) => { for (const session of this.sessions.all()) if (session.negotiated) session.channel.send(message) }
    })
    this.#relay = new Relay({
      log,
      logListeners: () => this.#state.logListeners(),
      subscribers: (service, uri) => this.#state.subscribers(service, uri),
      resourceUpdated: (service, uri) => this.cache?.resourceUpdated(service, uri)
    })
    this.#pool = new UpstreamPool({
      config,
      registry,
      health: options.health,
      log,
      clientInfo: { name: config.name, version: options.version },
      clientCapabilities: FORWARDABLE_CAPABILITIES,
      relay: {
        notification: (c, message, via) => this.#relay.sharedNotification(c.id, c.definition.service, message, via, c.shared),
        request: (c, incoming) => this.#relay.sharedRequest(c.id, c.definition.service, incoming.session, incoming, c.definition.timeout)
      },
      listener: {
        state: (c) => {
          if (c.state === 'up') {
            this.#state.upstreamUp(c).catch(() => {})
            // Updates sent while the gateway was not connected were not heard: what this instance kept may be stale.
            this.cache?.resourcesChanged(c.definition.service, false)
          } else this.#upstreamLost(c)
          this.#refreshService(c.definition.service)
        },
        listing: (c) => this.#refreshService(c.definition.service),
        listChanged: (c, kind) => { if (kind === 'resources') this.cache?.resourcesChanged(c.definition.service, true) },
        removed: (c) => {
          this.#upstreamLost(c)
          this.#refreshService(c.definition.service)
        }
      }
    })
    this.#broker = new SessionBroker({
      pool: this.#pool,
      registry,
      balancer: options.balancer,
      health: options.health,
      relay: this.#relay,
      restore: (client, connection, upstream) => this.#state.restoreClient(client, connection, upstream),
      idleTimeout: config.upstreamDefaults.sessionIdleTimeout,
      log
    })
    this.#state = new ClientStateSync({
      pool: this.#pool,
      registry,
      broker: this.#broker,
      resourceOwner: (uri) => this.#catalog.resourceOwner(uri),
      timeout: config.upstreamDefaults.connectTimeout,
      maxSubscriptions: config.limits.maxSubscriptions,
      maxSubscriptionsTotal: config.limits.maxSubscriptionsTotal,
      log
    })
    this.#forwarder = new Forwarder({
      pool: this.#pool,
      registry,
      broker: this.#broker,
      observer: options.observer,
      balancer: options.balancer,
      retryBudget: config.retryBudget,
      hedging: config.hedging ?? undefined,
      tracing: options.tracing,
      callEnded: config.accessLog ? accessLogger(log.child({ component: 'access' })) : undefined
    })
    this.#dispatcher = new Dispatcher({
      config,
      version: options.version,
      catalog: this.#catalog,
      forwarder: this.#forwarder,
      state: this.#state,
      broker: this.#broker,
      pool: this.#pool,
      registry,
      access: new AccessPolicy(config.auth?.roles ?? null),
      initialized: (session) => this.sessions.initialized(session)
    })
    const limits = this.#limiter?.callHooks((service, name) => this.#catalog.toolName(service, name))
    if (limits !== undefined) this.#forwarder.addHooks(limits)
    // After the limits: a call refused by a limit is not answered from the cache either.
    if (config.cache !== null) {
      this.cache = this.#resultCache(config.cache, options.observer, log.child({ component: 'cache' }))
      this.#forwarder.addHooks(this.cache)
    }
  }

  /** The merged catalog as clients see it now. */
  get catalog (): LiveCatalog {
    return this.#catalog
  }

  get connections (): ReadonlyMap<string, UpstreamConnection> {
    return this.#pool.connections
  }

  /** Adds hooks to the forwarding pipeline (see CallHooks): authorization, limits and the cache plug in here. */
  addHooks (hooks: CallHooks): void {
    this.#forwarder.addHooks(hooks)
  }

  /**
   * Connects every registered upstream. Resolves when each has connected or failed once, or after `wait` ms
   * (`startupWait` by default), whichever is first: a slow upstream joins the catalog later, it never delays
   * start-up, and it never fails it.
   */
  async start (wait = this.#config.startupWait): Promise<void> {
    if (this.#started) return
    this.#started = true
    this.sessions.startSweeper()
    this.#broker.startSweeper()
    await this.cache?.start()
    await this.#pool.start(wait)
  }

  /**
   * Shutdown is coming: readiness (`draining`) turns false so load balancers stop sending new clients, while
   * everything is still served until beginShutdown.
   */
  drain (): void {
    this.#draining = true
  }

  /** Set from drain() (or shutdown) on: /health/ready answers 503. */
  get draining (): boolean {
    return this.#draining || this.#closing
  }

  /** Refuses new sessions and calls, and ends every client stream so in-flight HTTP work can drain. */
  beginShutdown (): void {
    this.#closing = true
    for (const session of this.sessions.all()) session.channel.close()
  }

  async close (): Promise<void> {
    this.#closing = true
    this.#catalog.close()
    this.sessions.closeAll()
    this.#broker.stop()
    await this.#pool.close()
    await this.cache?.close()
  }

  // --- the endpoint the client transports serve ------------------------------------------------------------------

  openSession (channel: ClientChannel, peer: Peer = { address: undefined }): ClientSession {
    if (this.#closing) throw new ERR_SHUTTING_DOWN()
    const session = this.sessions.create(channel, peer)
    this.#observer?.sessions(this.sessions.size)
    return session
  }

  findSession (id: string, peer: Peer): ClientSession | undefined {
    const session = this.sessions.get(id)
    // Another caller presenting the id learns nothing: as for an id that does not exist.
    if (session === undefined || !samePrincipal(session.principal, peer.principal ?? null)) return undefined
    // The same caller, as its credential says now: roles and scopes that changed apply from this request on.
    if (peer.principal !== undefined && peer.principal !== null) session.record.principal = peer.principal
    this.sessions.touch(session)
    return session
  }

  initialize (session: ClientSession, params: Params | undefined): Record<string, unknown> {
    if (this.#closing) throw new ERR_SHUTTING_DOWN()
    if (this.#audit === undefined) return this.#dispatcher.initialize(session, params)
    const started = performance.now()
    try {
      const result = this.#dispatcher.initialize(session, params)
      this.#audit.record(session, 'initialize', params, started)
      return result
    } catch (err) {
      this.#audit.record(session, 'initialize', params, started, err)
      throw err
    }
  }

  request (session: ClientSession, method: string, params: Params | undefined, handle?: RequestHandle): Promise<unknown> {
    if (this.#closing) return Promise.reject(new ERR_SHUTTING_DOWN())
    const served = this.#served(session, method, params, handle?.requestId, handle?.carrier, trace =>
      this.#admitted(session, method, () => this.#dispatcher.request(session, method, params, trace === undefined ? handle ?? {} : { ...handle, trace })))
    return this.#audit === undefined ? served : this.#audit.track(session, method, params, served)
  }

  notification (session: ClientSession, method: string, params: Params | undefined): void {
    this.#dispatcher.notification(session, method, params)
  }

  requestUpstream (session: ClientSession, upstreamId: string, method: string, params: Params | undefined): Promise<unknown> {
    if (this.#closing) return Promise.reject(new ERR_SHUTTING_DOWN())
    const served = this.#served(session, method, params, undefined, undefined, trace =>
      this.#admitted(session, method, () => this.#dispatcher.requestUpstream(session, upstreamId, method, params, trace)))
    return this.#audit === undefined ? served : this.#audit.track(session, `${upstreamId}: ${method}`, params, served)
  }

  streamOpened (session: ClientSession): void {
    this.#broker.streamsChanged(session)
  }

  endSession (id: string): boolean {
    return this.sessions.delete(id)
  }

  // --- programmatic API ----------------------------------------------------------------------------------------

  listTools (cursor?: string): Promise<{ tools: Tool[], nextCursor?: string }> {
    return this.#list('tools', cursor) as Promise<{ tools: Tool[], nextCursor?: string }>
  }

  /** One page of a list as the JSON text clients are sent (for callers that only pass it on). */
  listJson (list: ListName, cursor?: string, client: ClientContext = ANONYMOUS, carrier?: TraceCarrier): Promise<string> {
    const params = cursor === undefined ? undefined : { cursor }
    const served = this.#served(client, LIST_METHODS[list], params, undefined, carrier, () =>
      this.#admitted(client, LIST_METHODS[list], () => this.#dispatcher.page(list, params, client)))
    const audited = this.#audit === undefined ? served : this.#audit.track(client, LIST_METHODS[list], undefined, served)
    return audited.then(page => (page as RawResult).resultText)
  }

  callTool (name: string, args: Record<string, unknown> = {}, context: CallContext = {}): Promise<unknown> {
    return this.#call('tools/call', { name, arguments: args }, context).then(resultValue)
  }

  /** The same, as JSON text: the upstream's own bytes when it can, for callers that only pass the result on. */
  callToolJson (name: string, args: Record<string, unknown> = {}, context: CallContext = {}): Promise<string> {
    return this.#call('tools/call', { name, arguments: args }, context)
      .then(result => result instanceof RawResult ? result.resultText : JSON.stringify(result))
  }

  listResources (cursor?: string): Promise<unknown> {
    return this.#list('resources', cursor)
  }

  listResourceTemplates (cursor?: string): Promise<unknown> {
    return this.#list('resourceTemplates', cursor)
  }

  readResource (uri: string, context: CallContext = {}): Promise<unknown> {
    return this.#call('resources/read', { uri }, context).then(resultValue)
  }

  listPrompts (cursor?: string): Promise<unknown> {
    return this.#list('prompts', cursor)
  }

  getPrompt (name: string, args: Record<string, string> = {}, context: CallContext = {}): Promise<unknown> {
    return this.#call('prompts/get', { name, arguments: args }, context).then(resultValue)
  }

  // --- operations ----------------------------------------------------------------------------------------------

  /** Every registered upstream as /status and the admin API show it (no credentials). */
  upstreams (): UpstreamReport[] {
    return this.#pool.reports()
  }

  /** The cache as the forwarder's hooks see it: rules per service and tool, the caller's scope, the listing's digest. */
  #resultCache (settings: CacheSettings, observer: ProxyObserver | undefined, log: Logger): ResultCache {
    const rules = settings.tools.map(rule => ({ matches: globMatcher([rule.pattern]), rule: { ttlMs: rule.ttlMs, force: rule.force } }))
    const roles = this.#config.auth?.roles != null
    const redis = this.#config.redis
    return new ResultCache({
      maxBytes: settings.maxBytes,
      redis: settings.redis && redis !== null ? new RedisLayer({ ...redis, maxEntryBytes: settings.maxEntryBytes, log }) : undefined,
      file: settings.dir === null
        ? undefined
        : new FileLayer({
          dir: settings.dir,
          maxDirBytes: settings.maxDirBytes,
          maxEntryBytes: settings.maxEntryBytes,
          log,
          changed: (bytes) => observer?.cache?.layerBytes?.('file', bytes)
        }),
      ruleFor: (service, tool) => this.#registry.serviceOptions(service).cache ?? rules.find(r => r.matches(tool))?.rule,
      resourceRuleFor: (service) => {
        const rule = this.#registry.serviceOptions(service).cache
        return rule?.resources === true ? rule : undefined
      },
      scopeOf: (context, service) => {
        const replicas = this.#registry.replicas(service)
        const connection = replicas[0] === undefined ? undefined : this.#pool.get(replicas[0].id)
        // A caller with a session of its own there may get answers of its own (its roots, its state).
        if (connection === undefined || !this.#broker.sharesSession(context, connection)) return undefined
        const principal = context.principal
        // Upstreams that get the caller's identity may answer each caller differently.
        if (replicas.some(r => r.forwardIdentity)) return principal === null ? 'anonymous' : `principal:${principal.kind}:${principal.id}`
        return roles && principal !== null ? `roles:${[...principal.roles].sort().join(',')}` : 'all'
      },
      // The listing the catalog shows for the service: a change to it is a new generation of keys.
      listingOf: (service) => this.#catalogListing(service)?.digests.tools,
      readOnly: (call) => call.readOnly === true,
      observer: observer?.cache
    })
  }

  /** Each upstream's health as /upstream/health shows it (see upstream-health.ts). */
  upstreamHealth (): UpstreamHealthReport[] {
    return upstreamHealth(this.#pool, this.#balancer, this.#forwarder.gates)
  }

  /** How many upstreams are up, disabled, down: /health's figures, kept as states change. */
  upstreamCounts (): StateCounts {
    return this.#pool.counts()
  }

  #list (list: ListName, cursor: string | undefined): Promise<unknown> {
    return this.#dispatcher.page(list, cursor === undefined ? undefined : { cursor }, ANONYMOUS).then(resultValue)
  }

  #call (method: string, params: Params, context: CallContext): Promise<unknown> {
    if (this.#closing) return Promise.reject(new ERR_SHUTTING_DOWN())
    const client = context.client ?? ANONYMOUS
    const served = this.#served(client, method, params, undefined, context.carrier, trace =>
      this.#admitted(client, method, () => this.#dispatcher.request(client, method, params, trace === undefined ? context : { ...context, trace })))
    return this.#audit === undefined ? served : this.#audit.track(client, method, params, served)
  }

  /**
   * One client request served: inside its SERVER span when tracing is on (`serve` gets the span's context, to pass
   * to the forwarder), and told to the observer when it settles (mcp_server_operation_duration_seconds).
   */
  #served<T> (client: ClientContext, method: string, params: Params | undefined, requestId: JsonRpcId | undefined, carrier: TraceCarrier | undefined,
    serve: (trace: Context | undefined) => Promise<T>): Promise<T> {
    const started = performance.now()
    const tracing = this.#tracing
    const served = tracing === undefined ? serve(undefined) : tracing.serve(client, method, params, requestId, carrier, this.#traceTarget(method, params), serve)
    const observer = this.#observer
    if (observer?.serverOperation === undefined) return served
    return served.then((result) => {
      observer.serverOperation?.(method, (performance.now() - started) / 1000, errorType(result))
      return result
    }, (err: unknown) => {
      observer.serverOperation?.(method, (performance.now() - started) / 1000, errorType(undefined, err))
      throw err
    })
  }

  /** The tool or prompt a request names, when the catalog has it (what its span may be named by). */
  #traceTarget (method: string, params: Params | undefined): string | undefined {
    const name = params?.name
    if (typeof name !== 'string') return undefined
    if (method === 'tools/call') return this.#catalog.tool(name) !== undefined ? name : undefined
    if (method === 'prompts/get') return this.#catalog.prompt(name) !== undefined ? name : undefined
    return undefined
  }

  /** `serve` once the rate limits admit the request (at once when none is configured or the counters are local). */
  #admitted<T> (client: ClientContext, method: string, serve: () => Promise<T>): Promise<T> {
    const admitted = this.#limiter?.admit(client, method)
    return admitted === undefined ? serve() : admitted.then(serve)
  }

  /** What a service offers the catalog: the listing of its first replica (registration order) that is up. */
  #catalogListing (service: string): ServiceListing | undefined {
    const replica = this.#registry.replicas(service).find(r => this.#pool.get(r.id)?.state === 'up')
    return replica === undefined ? undefined : this.#pool.get(replica.id)?.listing
  }

  #refreshService (service: string): void {
    const listing = this.#catalogListing(service)
    if (listing === undefined) {
      this.#catalog.set(service, undefined)
      return
    }
    const options = this.#registry.serviceOptions(service)
    this.#catalog.set(service, { service, listing, tools: options.tools, prompts: options.prompts })
  }

  /** An upstream went down or away: the client sessions on it are gone, what they held moves. */
  #upstreamLost (connection: UpstreamConnection): void {
    this.#broker.upstreamLost(connection)
    this.#state.upstreamLost(connection)
  }

  #sessionEnded (session: ClientSession): void {
    this.#observer?.sessions(this.sessions.size)
    this.#state.clientEnded(session)
    this.#broker.clientEnded(session)
  }
}

/** One line per forwarded call: who, what, on which upstream, how it ended, how long it took (accessLog). */
function accessLogger (log: Logger): (call: ForwardedCall, outcome: string, ms: number) => void {
  return (call, outcome, ms) => {
    log.info({
      principal: call.context.principal?.id ?? null,
      method: call.method,
      ...(call.name !== undefined ? { name: call.name } : {}),
      service: call.service,
      ...(call.on !== undefined ? { upstream: call.on } : {}),
      outcome,
      ms: Math.round(ms * 10) / 10
    }, 'call')
  }
}
