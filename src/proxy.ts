import { performance } from 'node:perf_hooks'
import type { JsonRpcId, JsonRpcNotification, Params } from '../schemas/jsonrpc.js'
import type { Balancer } from './balancer.js'
import { Cancellation } from './cancellation.js'
import { Catalog, type NamedEntry } from './catalog.js'
import type { GatewayConfig } from './config/types.js'
import { paginate } from './cursor.js'
import {
  ERR_ALREADY_INITIALIZED, ERR_INVALID_PARAMS, ERR_METHOD_NOT_FOUND, ERR_NOT_INITIALIZED, ERR_SHUTTING_DOWN,
  ERR_UNKNOWN_PROMPT, ERR_UNKNOWN_RESOURCE, ERR_UNKNOWN_TARGET, ERR_UNKNOWN_TOOL, ERR_UPSTREAM_UNAVAILABLE
} from './errors.js'
import type { HealthMonitor } from './health.js'
import { notificationMessage, progressTokenOf } from './jsonrpc.js'
import type { Logger } from './logger.js'
import type { ListKind, Tool } from './mcp-types.js'
import { negotiateProtocolVersion } from './protocol.js'
import { RawResult, resultValue } from './raw-result.js'
import type { Registry, RegistryChange } from './registry.js'
import { type CallOrigin, Relay } from './relay.js'
import { type ClientChannel, type ClientSession, LOG_LEVELS, type LogLevel, SessionStore } from './sessions.js'
import { LegacySseTransport } from './transport/legacy-sse.js'
import { StreamableHttpTransport } from './transport/streamable-http.js'
import { WebSocketTransport } from './transport/websocket.js'
import { UpstreamConnection } from './upstream/connection.js'
import { HttpSession } from './upstream/http.js'
import { UpstreamSession } from './upstream/session.js'

/**
 * The gateway's engine: it keeps a connection to every upstream, merges what they offer into the catalog, holds
 * the client sessions, and serves MCP requests — from the catalog when it can, by forwarding to the owning service
 * (through the balancer) when it must. It knows nothing of HTTP: routes and the programmatic API both call it.
 */

export type CallOutcome = 'success' | 'tool_error' | 'rpc_error' | 'timeout' | 'cancelled' | 'unavailable' | 'failure'

export interface ProxyObserver {
  upstreamCall (server: string, method: string, outcome: CallOutcome, seconds: number): void
  sessions (count: number): void
}

export interface ProxyOptions {
  config: GatewayConfig
  registry: Registry
  health: HealthMonitor
  balancer: Balancer
  log: Logger
  version: string
  observer?: ProxyObserver
}

export interface CallContext {
  /** Aborting it cancels the call, upstream too (for programmatic callers). */
  signal?: AbortSignal
  /** The same, without an EventTarget: what the transports use on the hot path. */
  cancel?: Cancellation
  /** The client's id for this request: what the upstream sends about it travels with it (its answer stream). */
  requestId?: JsonRpcId
  /** For callers without a session: receives the call's progress notifications. */
  related?: (message: JsonRpcNotification) => void
}

export interface UpstreamReport {
  id: string
  service: string
  transport: string
  target: string
  state: string
  reason?: string
  since: string
  enabled: boolean
  weight: number
  tags: string[]
  pid?: number
  server?: { name: string, version: string }
  protocolVersion?: string
  tools: number
  resources: number
  resourceTemplates: number
  prompts: number
}

/** One forwarded request, across the replicas it may try. */
interface Call {
  session: ClientSession | undefined
  origin: CallOrigin | undefined
  service: string
  method: string
  params: Params
  cancel: Cancellation | undefined
  onProgress: ((p: Params) => void) | undefined
  idempotent: boolean
  tried: Set<string> | undefined
}

export interface InitializeParams {
  protocolVersion?: unknown
  capabilities?: unknown
  clientInfo?: unknown
}

const LIST_CHANGED: Record<ListKind, string> = {
  tools: 'notifications/tools/list_changed',
  resources: 'notifications/resources/list_changed',
  prompts: 'notifications/prompts/list_changed'
}

const STREAM_KEEP_ALIVE = 15_000

/** What the gateway's own sessions declare upstream: everything it can forward to a client that supports it. */
const FORWARDABLE_CAPABILITIES = Object.freeze({ roots: { listChanged: true }, sampling: {}, elicitation: { form: {}, url: {} } })
/** Client capabilities passed on to a client's own upstream sessions (tasks are not mapped, so not declared). */
const PASSED_CAPABILITIES = ['roots', 'sampling', 'elicitation']

/** Errors that mean the request never reached the upstream: trying another replica is always safe. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'MCPGW_ERR_UPSTREAM_UNAVAILABLE'])
/** Errors after which the upstream may be gone: its health is checked at once. */
const SUSPICIOUS = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CLOSED',
  'UND_ERR_HEADERS_TIMEOUT', 'MCPGW_ERR_UPSTREAM_CLOSED', 'MCPGW_ERR_UPSTREAM_TIMEOUT'
])

export class McpProxy {
  readonly sessions: SessionStore
  /** The client side of the Streamable HTTP transport, for the `/mcp` route. */
  readonly streamableHttp: StreamableHttpTransport
  /** The client side of the legacy HTTP+SSE transport, for `/sse` and `/messages`. */
  readonly legacySse: LegacySseTransport
  /** The client side of MCP over WebSocket, for `/ws`. */
  readonly websocket: WebSocketTransport
  readonly #connections = new Map<string, UpstreamConnection>()
  readonly #relay: Relay
  /** Subscriptions made through shared sessions: upstream id → uri → the clients subscribed. */
  readonly #sharedSubscriptions = new Map<string, Map<string, Set<ClientSession>>>()
  readonly #config: GatewayConfig
  readonly #registry: Registry
  readonly #health: HealthMonitor
  readonly #balancer: Balancer
  readonly #log: Logger
  readonly #observer: ProxyObserver | undefined
  readonly #version: string
  #catalog: Catalog
  #dirty = false
  #announcing = false
  #announced: Record<ListKind, string>
  #started = false
  #closing = false
  #stopWatchingRegistry: (() => void) | undefined

  constructor (options: ProxyOptions) {
    this.#config = options.config
    this.#registry = options.registry
    this.#health = options.health
    this.#balancer = options.balancer
    this.#log = options.log
    this.#observer = options.observer
    this.#version = options.version
    this.#catalog = new Catalog([], this.#config)
    this.#announced = this.#catalog.signatures
    this.sessions = new SessionStore({
      idleTimeout: this.#config.sessions.idleTimeout,
      max: this.#config.sessions.max,
      onEnd: (session) => this.#sessionEnded(session)
    })
    this.#relay = new Relay({
      log: this.#log,
      clients: () => this.sessions.all(),
      subscribers: (upstreamId, uri) => this.#sharedSubscriptions.get(upstreamId)?.get(uri) ?? []
    })
    this.streamableHttp = new StreamableHttpTransport(this, {
      keepAliveInterval: STREAM_KEEP_ALIVE,
      events: { maxEvents: this.#config.sessions.replayEvents, maxBytes: this.#config.sessions.replayBytes }
    })
    this.legacySse = new LegacySseTransport(this, { keepAliveInterval: STREAM_KEEP_ALIVE })
    this.websocket = new WebSocketTransport(this, { pingInterval: 2 * STREAM_KEEP_ALIVE })
  }

  /** The merged catalog, rebuilt on first read after any upstream's listing changed. */
  get catalog (): Catalog {
    if (this.#dirty) {
      this.#dirty = false
      this.#catalog = this.#buildCatalog()
    }
    return this.#catalog
  }

  get connections (): ReadonlyMap<string, UpstreamConnection> {
    return this.#connections
  }

  /**
   * Connects every registered upstream. Resolves when each has connected or failed once, or after
   * `startupWait` ms, whichever is first: a slow upstream joins the catalog later, it never delays start-up.
   */
  async start (): Promise<void> {
    if (this.#started) return
    this.#started = true
    this.#stopWatchingRegistry = this.#registry.onChange((change) => this.#registryChanged(change))
    const first = this.#registry.list().map(def => this.#connect(def))
    this.sessions.startSweeper()
    if (first.length === 0 || this.#config.startupWait === 0) return
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all(first),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, this.#config.startupWait) })
    ])
    clearTimeout(timer)
  }

  /** Refuses new sessions and calls, and ends every client stream so in-flight HTTP work can drain. */
  beginShutdown (): void {
    this.#closing = true
    for (const session of this.sessions.all()) session.channel.close()
  }

  async close (): Promise<void> {
    this.#closing = true
    this.#stopWatchingRegistry?.()
    this.sessions.closeAll()
    await Promise.all([...this.#connections.values()].map(c => c.close()))
    this.#connections.clear()
  }

  // --- MCP lifecycle -------------------------------------------------------------------------------------------

  /** A new client session reached through `channel`; it serves nothing but initialize until initialized. */
  openSession (channel: ClientChannel): ClientSession {
    if (this.#closing) throw new ERR_SHUTTING_DOWN()
    const session = this.sessions.create(channel)
    this.#observer?.sessions(this.sessions.size)
    return session
  }

  /** Negotiates the session's protocol version and records what the client declared; returns the result. */
  initialize (session: ClientSession, params: InitializeParams | undefined): Record<string, unknown> {
    if (this.#closing) throw new ERR_SHUTTING_DOWN()
    if (session.init !== undefined) throw new ERR_ALREADY_INITIALIZED(session.id)
    const protocolVersion = negotiateProtocolVersion(params?.protocolVersion)
    const capabilities = isObject(params?.capabilities) ? params.capabilities : {}
    const clientInfo = isObject(params?.clientInfo) && typeof params.clientInfo.name === 'string'
      ? params.clientInfo as { name: string, version: string }
      : { name: 'unknown-client', version: '0.0.0' }
    session.init = { protocolVersion, capabilities, clientInfo }
    const result: Record<string, unknown> = {
      protocolVersion,
      capabilities: this.#capabilities(),
      serverInfo: { name: this.#config.name, version: this.#version }
    }
    if (this.#config.instructions !== undefined) result.instructions = this.#config.instructions
    return result
  }

  endSession (id: string): boolean {
    const ended = this.sessions.delete(id)
    if (ended) this.#observer?.sessions(this.sessions.size)
    return ended
  }

  /** A notification from a client. */
  notification (session: ClientSession, method: string, params: Params | undefined): void {
    switch (method) {
      case 'notifications/initialized':
        session.initialized = true
        return
      case 'notifications/cancelled': {
        const requestId = params?.requestId
        if (typeof requestId === 'string' || typeof requestId === 'number') {
          session.inFlight.get(requestId)?.cancel(typeof params?.reason === 'string' ? params.reason : 'cancelled by the client')
        }
        return
      }
      case 'notifications/progress': {
        // Progress on a request an upstream sent the client: back to that upstream, under its own token.
        const route = session.progressRoute(params?.progressToken)
        if (route !== undefined) route.session.notify(method, { ...params, progressToken: route.token }).catch(() => {})
        return
      }
      case 'notifications/roots/list_changed':
        for (const upstream of this.#openUpstreamSessions(session)) upstream.notify(method).catch(() => {})
        for (const connection of this.#connections.values()) {
          if (connection.shared && connection.state === 'up') connection.control?.notify(method).catch(() => {})
        }
    }
  }

  /**
   * Serves one client request; resolves the JSON-RPC result — a RawResult when it can be forwarded as the text the
   * upstream wrote (see resultValue) — or rejects with a coded error.
   */
  request (session: ClientSession | undefined, method: string, params: Params | undefined, context: CallContext = {}): Promise<unknown> {
    if (this.#closing) return Promise.reject(new ERR_SHUTTING_DOWN())
    if (session?.init === undefined && session !== undefined && method !== 'ping') return Promise.reject(new ERR_NOT_INITIALIZED(method))
    switch (method) {
      case 'tools/call': return this.#callTool(session, params, context)
      case 'tools/list': return this.#page('tools', params)
      case 'resources/list': return this.#page('resources', params)
      case 'resources/templates/list': return this.#page('resourceTemplates', params)
      case 'prompts/list': return this.#page('prompts', params)
      case 'resources/read': return this.#readResource(session, params, context)
      case 'prompts/get': return this.#getPrompt(session, params, context)
      case 'completion/complete': return this.#complete(session, params, context)
      case 'ping': return Promise.resolve({})
      case 'logging/setLevel': return this.#setLevel(session, params)
      case 'resources/subscribe': return this.#subscribe(session, params)
      case 'resources/unsubscribe': return this.#unsubscribe(session, params)
      default: return Promise.reject(new ERR_METHOD_NOT_FOUND(method))
    }
  }

  /**
   * A request addressed to one upstream server by id, with the server's own names (the WebSocket envelope): no
   * catalog, no balancing. It travels on the client's own session there, like any call.
   */
  requestUpstream (session: ClientSession, upstreamId: string, method: string, params: Params | undefined): Promise<unknown> {
    if (this.#closing) return Promise.reject(new ERR_SHUTTING_DOWN())
    const connection = this.#connections.get(upstreamId)
    if (connection === undefined) return Promise.reject(new ERR_UNKNOWN_TARGET(JSON.stringify(upstreamId)))
    const started = performance.now()
    const upstream = this.#sessionFor(session, connection)
    const options = { timeout: connection.definition.timeout }
    const answer = upstream instanceof UpstreamSession ? upstream.request(method, params, options) : upstream.then(u => u.request(method, params, options))
    return answer.then((result) => {
      this.#observe(upstreamId, method, 'success', started)
      return result
    }, (err: unknown) => {
      this.#observe(upstreamId, method, outcomeOf(err), started)
      throw wrapNetworkError(err, upstreamId)
    })
  }

  // --- programmatic API ----------------------------------------------------------------------------------------

  listTools (cursor?: string): Promise<{ tools: Tool[], nextCursor?: string }> {
    return this.#page('tools', cursor === undefined ? undefined : { cursor }) as Promise<{ tools: Tool[], nextCursor?: string }>
  }

  callTool (name: string, args: Record<string, unknown> = {}, context: CallContext = {}): Promise<unknown> {
    return this.request(undefined, 'tools/call', { name, arguments: args }, context).then(resultValue)
  }

  /** The same, as JSON text: the upstream's own bytes when it can, for callers that only pass the result on. */
  callToolJson (name: string, args: Record<string, unknown> = {}, context: CallContext = {}): Promise<string> {
    return this.request(undefined, 'tools/call', { name, arguments: args }, context)
      .then(result => result instanceof RawResult ? result.resultText : JSON.stringify(result))
  }

  listResources (cursor?: string): Promise<unknown> {
    return this.#page('resources', cursor === undefined ? undefined : { cursor })
  }

  listResourceTemplates (cursor?: string): Promise<unknown> {
    return this.#page('resourceTemplates', cursor === undefined ? undefined : { cursor })
  }

  readResource (uri: string, context: CallContext = {}): Promise<unknown> {
    return this.request(undefined, 'resources/read', { uri }, context).then(resultValue)
  }

  listPrompts (cursor?: string): Promise<unknown> {
    return this.#page('prompts', cursor === undefined ? undefined : { cursor })
  }

  getPrompt (name: string, args: Record<string, string> = {}, context: CallContext = {}): Promise<unknown> {
    return this.request(undefined, 'prompts/get', { name, arguments: args }, context).then(resultValue)
  }

  // --- operations ----------------------------------------------------------------------------------------------

  /** Every registered upstream as /status and the admin API show it (no credentials). */
  upstreams (): UpstreamReport[] {
    return this.#registry.list().map((definition) => {
      const connection = this.#connections.get(definition.id)
      const listing = connection?.listing
      const report: UpstreamReport = {
        id: definition.id,
        service: definition.service,
        transport: connection?.transport ?? definition.transport,
        target: publicTarget(definition),
        // No connection yet: it was just registered (or replaced) and is about to connect.
        state: connection?.state ?? (definition.enabled ? 'connecting' : 'disabled'),
        since: new Date(connection?.since ?? Date.now()).toISOString(),
        enabled: definition.enabled,
        weight: definition.weight,
        tags: [...definition.tags],
        tools: listing?.tools.length ?? 0,
        resources: listing?.resources.length ?? 0,
        resourceTemplates: listing?.resourceTemplates.length ?? 0,
        prompts: listing?.prompts.length ?? 0
      }
      if (connection?.reason !== undefined) report.reason = connection.reason
      if (connection?.pid !== undefined) report.pid = connection.pid
      if (listing !== undefined) {
        report.server = listing.serverInfo
        report.protocolVersion = listing.protocolVersion
      }
      return report
    })
  }

  // --- serving ---------------------------------------------------------------------------------------------------

  #page (list: 'tools' | 'resources' | 'resourceTemplates' | 'prompts', params: Params | undefined): Promise<unknown> {
    try {
      const catalog = this.catalog
      const cursor = params?.cursor
      const size = this.#config.pageSize
      const out: Record<string, unknown> = {}
      let next: string | undefined
      if (list === 'tools' || list === 'prompts') {
        const { page, nextCursor } = paginate<NamedEntry<unknown>>(list, catalog[list], e => e.name, cursor, size)
        out[list] = page.map(e => e.definition)
        next = nextCursor
      } else {
        const entries = list === 'resources' ? catalog.resources : catalog.templates
        const { page, nextCursor } = paginate<{ key: string, definition: unknown }>(list, entries, e => e.key, cursor, size)
        out[list] = page.map(e => e.definition)
        next = nextCursor
      }
      if (next !== undefined) out.nextCursor = next
      return Promise.resolve(out)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  #callTool (session: ClientSession | undefined, params: Params | undefined, context: CallContext): Promise<unknown> {
    const name = params?.name
    if (typeof name !== 'string') return Promise.reject(new ERR_INVALID_PARAMS('tools/call needs params.name, the name of a tool from tools/list'))
    const entry = this.catalog.tool(name)
    if (entry === undefined) return Promise.reject(new ERR_UNKNOWN_TOOL(name))
    if (params?.task !== undefined) {
      // Task ids are not mapped through the gateway, so it does not advertise tasks: a task-augmented call would get
      // a CreateTaskResult it could never follow up. Refused plainly instead.
      return Promise.reject(new ERR_INVALID_PARAMS('this gateway does not support tasks (it does not advertise them); send tools/call without params.task'))
    }
    const annotations = entry.definition.annotations
    const idempotent = annotations?.readOnlyHint === true || annotations?.idempotentHint === true
    return this.#forward(session, entry.service, 'tools/call', { ...params, name: entry.originalName }, context, idempotent)
  }

  #readResource (session: ClientSession | undefined, params: Params | undefined, context: CallContext): Promise<unknown> {
    const uri = params?.uri
    if (typeof uri !== 'string') return Promise.reject(new ERR_INVALID_PARAMS('resources/read needs params.uri'))
    const service = this.catalog.resourceOwner(uri)
    if (service === undefined) return Promise.reject(new ERR_UNKNOWN_RESOURCE(uri))
    return this.#forward(session, service, 'resources/read', params as Params, context, true)
  }

  #getPrompt (session: ClientSession | undefined, params: Params | undefined, context: CallContext): Promise<unknown> {
    const name = params?.name
    if (typeof name !== 'string') return Promise.reject(new ERR_INVALID_PARAMS('prompts/get needs params.name, the name of a prompt from prompts/list'))
    const entry = this.catalog.prompt(name)
    if (entry === undefined) return Promise.reject(new ERR_UNKNOWN_PROMPT(name))
    return this.#forward(session, entry.service, 'prompts/get', { ...params, name: entry.originalName }, context, true)
  }

  #complete (session: ClientSession | undefined, params: Params | undefined, context: CallContext): Promise<unknown> {
    const ref = params?.ref as { type?: unknown, name?: unknown, uri?: unknown } | undefined
    if (ref?.type === 'ref/prompt' && typeof ref.name === 'string') {
      const entry = this.catalog.prompt(ref.name)
      if (entry === undefined) return Promise.reject(new ERR_UNKNOWN_PROMPT(ref.name))
      return this.#forward(session, entry.service, 'completion/complete', { ...params, ref: { ...ref, name: entry.originalName } }, context, true)
    }
    if (ref?.type === 'ref/resource' && typeof ref.uri === 'string') {
      const service = this.catalog.template(ref.uri)?.service ?? this.catalog.resourceOwner(ref.uri)
      if (service === undefined) return Promise.reject(new ERR_UNKNOWN_RESOURCE(ref.uri))
      return this.#forward(session, service, 'completion/complete', params as Params, context, true)
    }
    return Promise.reject(new ERR_INVALID_PARAMS('completion/complete needs params.ref: {type:"ref/prompt",name} or {type:"ref/resource",uri}'))
  }

  /**
   * Sends a request to a replica of `service`. A replica that fails before the request reached it is skipped for
   * the next one; one that fails after is retried elsewhere only when `idempotent` (read-only or idempotent tool,
   * reads of resources and prompts).
   */
  #forward (session: ClientSession | undefined, service: string, method: string, params: Params, context: CallContext, idempotent: boolean): Promise<unknown> {
    const token = progressTokenOf(params)
    const requestId = context.requestId
    const origin: CallOrigin | undefined = session !== undefined && requestId !== undefined ? { client: session, requestId } : undefined
    let onProgress: ((p: Params) => void) | undefined
    if (token !== undefined) {
      const related = context.related
      if (origin !== undefined) {
        onProgress = (p) => origin.client.notify('notifications/progress', { ...p, progressToken: token }, origin.requestId)
      } else if (related !== undefined) {
        onProgress = (p) => related(notificationMessage('notifications/progress', { ...p, progressToken: token }))
      } else {
        // Nobody can receive progress: do not let the client's token reach a session others share.
        const { progressToken: _, ...meta } = params._meta as Params
        params = { ...params, _meta: meta }
      }
    }
    const cancel = context.cancel ?? (context.signal !== undefined ? Cancellation.fromSignal(context.signal) : undefined)
    return this.#attempt({ session, origin, service, method, params, cancel, onProgress, idempotent, tried: undefined })
  }

  /** One try on one replica; on a failure that allows it, the next try on another. */
  #attempt (call: Call): Promise<unknown> {
    const replica = this.#balancer.pick(call.service, call.tried)
    if (replica === undefined) {
      return Promise.reject(new ERR_UPSTREAM_UNAVAILABLE(call.service,
        call.tried === undefined ? this.#whyUnavailable(call.service) : 'every replica failed this call'))
    }
    const connection = this.#connections.get(replica.id) as UpstreamConnection
    const started = performance.now()
    const options = { timeout: replica.timeout, cancel: call.cancel, onProgress: call.onProgress, raw: true, origin: call.origin }
    const upstream = this.#sessionFor(call.session, connection)
    const answer = upstream instanceof UpstreamSession
      ? upstream.request(call.method, call.params, options)
      : upstream.then(u => u.request(call.method, call.params, options), (err: Error) => { throw notSent(err) })
    return answer.then((result) => {
      const toolError = result instanceof RawResult ? result.isToolError : (result as { isError?: unknown } | undefined)?.isError === true
      this.#observe(replica.id, call.method, toolError ? 'tool_error' : 'success', started)
      return result
    }, (err: unknown) => {
      const code = (err as { code?: string }).code ?? ''
      this.#observe(replica.id, call.method, outcomeOf(err), started)
      if (SUSPICIOUS.has(code) || (code === 'MCPGW_ERR_UPSTREAM_HTTP' && (err as { statusCode?: number }).statusCode === 502)) connection.suspect()
      this.#dropClosedSession(call.session, connection)
      const mayRetry = (err as { notSent?: boolean }).notSent === true || NOT_SENT.has(code) ||
        (call.idempotent && SUSPICIOUS.has(code) && code !== 'MCPGW_ERR_UPSTREAM_TIMEOUT')
      if (!mayRetry || call.cancel?.requested === true || this.#registry.replicas(call.service).length < 2) {
        throw wrapNetworkError(err, replica.id)
      }
      call.tried ??= new Set()
      call.tried.add(replica.id)
      return this.#attempt(call)
    })
  }

  /** A client's own upstream session that closed is forgotten, so its next call opens a new one. */
  #dropClosedSession (session: ClientSession | undefined, connection: UpstreamConnection): void {
    const entry = session?.upstreams.get(connection.id)
    if (entry === undefined || entry instanceof Promise) return
    if (entry.closed && entry !== connection.control) session?.upstreams.delete(connection.id)
  }

  /**
   * The upstream session a client's calls use on this replica: its own (opened on first use) or the shared one.
   * Once open it is returned as is, not as a promise, so a call on it costs no extra turn of the event loop.
   */
  #sessionFor (session: ClientSession | undefined, connection: UpstreamConnection): Promise<UpstreamSession> | UpstreamSession {
    if (session === undefined || connection.shared) {
      const control = connection.control
      if (control === undefined || connection.state !== 'up') {
        return Promise.reject(new ERR_UPSTREAM_UNAVAILABLE(connection.definition.service, `upstream ${connection.id} is ${connection.state}`))
      }
      return control
    }
    const entry = session.upstreams.get(connection.id)
    // A session the upstream ended (its stream or socket closed) is replaced by a new one, not reused.
    if (entry !== undefined && !(entry instanceof UpstreamSession && entry.closed)) return entry
    const init = session.init
    const capabilities: Record<string, unknown> = {}
    for (const name of PASSED_CAPABILITIES) if (init?.capabilities[name] !== undefined) capabilities[name] = init.capabilities[name]
    const opening: Promise<UpstreamSession> = connection.openSession({
      capabilities,
      clientInfo: init?.clientInfo ?? { name: 'unknown-client', version: '0.0.0' },
      protocolVersion: session.protocolVersion
    }, this.#relay.forClient(session, connection.definition.service, connection.definition.timeout)).then(async (upstream) => {
      if (upstream instanceof HttpSession) {
        // A forgotten session comes back empty: the client's level and subscriptions are set again.
        upstream.onReinitialized = () => { this.#restoreClientState(session, connection, upstream).catch(() => {}) }
      }
      await this.#restoreClientState(session, connection, upstream)
      if (session.closed) upstream.close('the client session ended').catch(() => {})
      else if (session.upstreams.get(connection.id) === opening) session.upstreams.set(connection.id, upstream)
      return upstream
    }, (err: unknown) => {
      if (session.upstreams.get(connection.id) === opening) session.upstreams.delete(connection.id)
      throw err
    })
    session.upstreams.set(connection.id, opening)
    return opening
  }

  // --- logging and subscriptions -----------------------------------------------------------------------------

  /**
   * logging/setLevel: remembered for the client (log messages are filtered to it), passed to every upstream session
   * opened for it, and to shared sessions as the most verbose level any client asked for.
   */
  async #setLevel (session: ClientSession | undefined, params: Params | undefined): Promise<unknown> {
    const level = params?.level
    if (!LOG_LEVELS.includes(level as LogLevel)) {
      throw new ERR_INVALID_PARAMS(`logging/setLevel needs params.level, one of ${LOG_LEVELS.join(', ')}; got ${JSON.stringify(level)}`)
    }
    if (session === undefined) throw new ERR_INVALID_PARAMS('logging/setLevel needs a client session')
    session.logLevel = level as LogLevel
    const sets: Array<Promise<unknown>> = []
    for (const upstream of this.#openUpstreamSessions(session)) {
      if (upstream.initializeResult?.capabilities.logging !== undefined) sets.push(this.#tell(upstream, 'logging/setLevel', { level }))
    }
    for (const connection of this.#connections.values()) {
      if (connection.shared) sets.push(this.#setSharedLevel(connection))
    }
    await Promise.allSettled(sets)
    return {}
  }

  /** resources/subscribe: through the client's own session with the owning service, or the shared one (once per URI). */
  async #subscribe (session: ClientSession | undefined, params: Params | undefined): Promise<unknown> {
    const uri = params?.uri
    if (typeof uri !== 'string') throw new ERR_INVALID_PARAMS('resources/subscribe needs params.uri')
    if (session === undefined) throw new ERR_INVALID_PARAMS('resources/subscribe needs a client session')
    if (session.subscriptions.has(uri)) return {}
    const service = this.catalog.resourceOwner(uri)
    if (service === undefined) throw new ERR_UNKNOWN_RESOURCE(uri)
    const replica = this.#balancer.pick(service)
    if (replica === undefined) throw new ERR_UPSTREAM_UNAVAILABLE(service, this.#whyUnavailable(service))
    const connection = this.#connections.get(replica.id) as UpstreamConnection
    if (connection.shared) {
      let table = this.#sharedSubscriptions.get(replica.id)
      if (table === undefined) this.#sharedSubscriptions.set(replica.id, table = new Map())
      let subscribers = table.get(uri)
      if (subscribers === undefined) {
        await this.#tell(await this.#sessionFor(undefined, connection), 'resources/subscribe', { uri }, true)
        table.set(uri, subscribers = new Set())
      }
      subscribers.add(session)
    } else {
      await this.#tell(await this.#sessionFor(session, connection), 'resources/subscribe', { uri }, true)
    }
    session.subscriptions.set(uri, replica.id)
    return {}
  }

  async #unsubscribe (session: ClientSession | undefined, params: Params | undefined): Promise<unknown> {
    const uri = params?.uri
    if (typeof uri !== 'string') throw new ERR_INVALID_PARAMS('resources/unsubscribe needs params.uri')
    const upstreamId = session?.subscriptions.get(uri)
    if (session === undefined || upstreamId === undefined) return {}
    session.subscriptions.delete(uri)
    const connection = this.#connections.get(upstreamId)
    if (connection === undefined) return {}
    if (connection.shared) {
      const subscribers = this.#sharedSubscriptions.get(upstreamId)?.get(uri)
      subscribers?.delete(session)
      if (subscribers?.size === 0) this.#unsubscribeShared(upstreamId, uri)
      return {}
    }
    const entry = session.upstreams.get(upstreamId)
    if (entry !== undefined) await this.#tell(await entry, 'resources/unsubscribe', { uri }, true)
    return {}
  }

  #unsubscribeShared (upstreamId: string, uri: string): void {
    this.#sharedSubscriptions.get(upstreamId)?.delete(uri)
    const control = this.#connections.get(upstreamId)?.control
    if (control !== undefined) this.#tell(control, 'resources/unsubscribe', { uri }).catch(() => {})
  }

  /** The most verbose level any client asked for, on a shared session (each client's own level filters for it). */
  #setSharedLevel (connection: UpstreamConnection): Promise<unknown> {
    const control = connection.control
    if (control?.initializeResult?.capabilities.logging === undefined) return Promise.resolve()
    let verbose: number = LOG_LEVELS.length
    for (const client of this.sessions.all()) {
      if (client.logLevel !== undefined) verbose = Math.min(verbose, LOG_LEVELS.indexOf(client.logLevel))
    }
    if (verbose === LOG_LEVELS.length) return Promise.resolve()
    return this.#tell(control, 'logging/setLevel', { level: LOG_LEVELS[verbose] })
  }

  /** After a client's upstream session opened or came back: its log level and subscriptions there. */
  async #restoreClientState (session: ClientSession, connection: UpstreamConnection, upstream: UpstreamSession): Promise<void> {
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
  async #restoreSharedState (connection: UpstreamConnection): Promise<void> {
    const control = connection.control
    if (control === undefined) return
    const sets: Array<Promise<unknown>> = [this.#setSharedLevel(connection)]
    for (const uri of this.#sharedSubscriptions.get(connection.id)?.keys() ?? []) sets.push(this.#tell(control, 'resources/subscribe', { uri }))
    await Promise.allSettled(sets)
  }

  /** A request of the gateway's own on an upstream session; failures are logged unless `strict` (then thrown). */
  async #tell (upstream: UpstreamSession, method: string, params: Params, strict = false): Promise<unknown> {
    try {
      return await upstream.request(method, params, { timeout: this.#config.upstreamDefaults.connectTimeout })
    } catch (err) {
      if (strict) throw err
      this.#log.warn({ upstream: upstream.serverId, method, err: (err as Error).message }, 'an upstream refused a setting the gateway passed on')
      return undefined
    }
  }

  /** The upstream sessions already open for a client. */
  #openUpstreamSessions (session: ClientSession): UpstreamSession[] {
    const open: UpstreamSession[] = []
    for (const entry of session.upstreams.values()) if (entry instanceof UpstreamSession && !entry.closed) open.push(entry)
    return open
  }

  #observe (server: string, method: string, outcome: CallOutcome, started: number): void {
    this.#observer?.upstreamCall(server, method, outcome, (performance.now() - started) / 1000)
  }

  #capabilities (): Record<string, unknown> {
    const capabilities: Record<string, unknown> = {
      tools: { listChanged: true },
      resources: { listChanged: true },
      prompts: { listChanged: true }
    }
    for (const connection of this.#connections.values()) {
      const upstream = connection.listing?.capabilities
      if (upstream === undefined) continue
      if (upstream.completions !== undefined) capabilities.completions = {}
      if (upstream.logging !== undefined) capabilities.logging = {}
      if ((upstream.resources as { subscribe?: unknown } | undefined)?.subscribe === true) {
        capabilities.resources = { subscribe: true, listChanged: true }
      }
    }
    return capabilities
  }

  #whyUnavailable (service: string): string {
    const replicas = this.#registry.replicas(service)
    if (replicas.length === 0) return 'it is not registered'
    return replicas.map(r => {
      const c = this.#connections.get(r.id)
      return r.weight === 0 ? `${r.id} is drained (weight 0)` : `${r.id} is ${c?.state ?? 'stopped'}${c?.reason !== undefined ? ` (${c.reason})` : ''}`
    }).join('; ')
  }

  // --- upstream bookkeeping --------------------------------------------------------------------------------------

  #connect (definition: GatewayConfig['servers'][number]): Promise<void> {
    const connection = new UpstreamConnection(definition, {
      defaults: this.#config.upstreamDefaults,
      clientInfo: { name: this.#config.name, version: this.#version },
      clientCapabilities: FORWARDABLE_CAPABILITIES,
      relay: {
        notification: (c, message, via) => this.#relay.sharedNotification(c.id, c.definition.service, message, via),
        request: (c, incoming) => this.#relay.sharedRequest(c.id, c.definition.service, incoming.session, incoming, c.definition.timeout)
      },
      log: this.#log,
      observer: {
        state: (c) => {
          if (this.#connections.get(c.id) !== c) return
          this.#health.update({ id: c.id, service: c.definition.service, state: c.state, reason: c.reason, since: c.since })
          if (c.state === 'up' && c.shared) this.#restoreSharedState(c).catch(() => {})
          this.#listingChanged()
        },
        listing: (c) => { if (this.#connections.get(c.id) === c) this.#listingChanged() }
      }
    })
    this.#connections.set(definition.id, connection)
    return connection.start()
  }

  async #disconnect (id: string): Promise<void> {
    const connection = this.#connections.get(id)
    if (connection === undefined) return
    this.#connections.delete(id)
    this.#health.remove(id)
    this.#sharedSubscriptions.delete(id)
    for (const session of this.sessions.all()) {
      const entry = session.upstreams.get(id)
      if (entry === undefined) continue
      session.upstreams.delete(id)
      Promise.resolve(entry).then(u => u.close('the upstream was removed'), () => {}).catch(() => {})
    }
    this.#listingChanged()
    await connection.close()
  }

  #registryChanged (change: RegistryChange): void {
    const id = change.server.id
    this.#log.info({ upstream: id, change: change.type }, 'registry changed')
    if (change.type === 'added') {
      this.#connect(change.server).catch(() => {})
    } else if (change.type === 'removed') {
      this.#disconnect(id).catch(() => {})
    } else {
      this.#disconnect(id).then(() => this.#connect(change.server)).catch(() => {})
    }
  }

  #sessionEnded (session: ClientSession): void {
    this.#observer?.sessions(this.sessions.size)
    for (const [uri, upstreamId] of session.subscriptions) {
      const subscribers = this.#sharedSubscriptions.get(upstreamId)?.get(uri)
      if (subscribers === undefined) continue
      subscribers.delete(session)
      if (subscribers.size === 0) this.#unsubscribeShared(upstreamId, uri)
    }
    for (const [id, entry] of session.upstreams) {
      const connection = this.#connections.get(id)
      Promise.resolve(entry).then((upstream) => {
        if (upstream !== connection?.control) return upstream.close('the client session ended')
      }, () => {}).catch(() => {})
    }
    session.upstreams.clear()
  }

  /** Marks the catalog stale and, once the current burst of changes is over, tells clients what changed. */
  #listingChanged (): void {
    this.#dirty = true
    if (this.#announcing) return
    this.#announcing = true
    setImmediate(() => {
      this.#announcing = false
      const signatures = this.catalog.signatures
      for (const kind of ['tools', 'resources', 'prompts'] as const) {
        if (signatures[kind] === this.#announced[kind]) continue
        const message = JSON.stringify(notificationMessage(LIST_CHANGED[kind]))
        for (const session of this.sessions.all()) if (session.init !== undefined) session.channel.send(message)
      }
      this.#announced = signatures
    })
  }

  #buildCatalog (): Catalog {
    const sources = []
    for (const service of this.#registry.services()) {
      const replica = this.#registry.replicas(service).find(r => this.#connections.get(r.id)?.state === 'up')
      const listing = replica === undefined ? undefined : this.#connections.get(replica.id)?.listing
      if (listing === undefined) continue
      const options = this.#registry.serviceOptions(service)
      sources.push({ service, listing, tools: options.tools, prompts: options.prompts })
    }
    const catalog = new Catalog(sources, this.#config)
    const collisions = catalog.collisions
    if (collisions.tools.length + collisions.prompts.length + collisions.resources.length > 0) {
      this.#log.warn({ collisions }, 'name collisions in the catalog were resolved (see /status)')
    }
    return catalog
  }
}

/**
 * Where an upstream lives, safe to show anyone who can reach /status: arguments and query strings often carry
 * tokens, so a stdio server shows its command and how many arguments it has, a URL loses its query.
 */
function publicTarget (definition: GatewayConfig['servers'][number]): string {
  if (definition.url !== undefined) {
    const url = new URL(definition.url)
    return url.origin + url.pathname + (url.search === '' ? '' : '?…')
  }
  const count = definition.args.length
  return count === 0 ? definition.command as string : `${definition.command as string} (+${count} argument${count === 1 ? '' : 's'})`
}

/** Marks an error that happened before the request was sent (opening the session failed): always safe to retry. */
function notSent (err: Error): Error {
  return Object.assign(err, { notSent: true })
}

function outcomeOf (err: unknown): CallOutcome {
  const e = err as { code?: string, rpcError?: unknown }
  if (e.rpcError !== undefined) return 'rpc_error'
  switch (e.code) {
    case 'MCPGW_ERR_UPSTREAM_TIMEOUT': return 'timeout'
    case 'MCPGW_ERR_REQUEST_CANCELLED': return 'cancelled'
    case 'MCPGW_ERR_UPSTREAM_UNAVAILABLE': case 'ECONNREFUSED': return 'unavailable'
    default: return 'failure'
  }
}

/** Raw socket errors become coded errors that name the upstream. */
function wrapNetworkError (err: unknown, serverId: string): unknown {
  const code = (err as { code?: string }).code
  if (typeof code === 'string' && code.startsWith('MCPGW_ERR_')) return err
  if ((err as { rpcError?: unknown }).rpcError !== undefined) return err
  return new ERR_UPSTREAM_UNAVAILABLE(serverId, `${(err as Error).message}${code !== undefined ? ` (${code})` : ''}`)
}

function isObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
