import type { Context } from '@opentelemetry/api'
import type { Params } from '../schemas/jsonrpc.js'
import type { AccessPolicy, ItemKind } from './auth/access-policy.js'
import type { ClientContext } from './client-context.js'
import type { ClientStateSync } from './client-state.js'
import type { GatewayConfig } from './config/types.js'
import {
  ERR_ALREADY_INITIALIZED, ERR_INVALID_PARAMS, ERR_METHOD_NOT_FOUND, ERR_NOT_INITIALIZED, ERR_TOO_MANY_IN_FLIGHT,
  ERR_UNKNOWN_PROMPT, ERR_UNKNOWN_RESOURCE, ERR_UNKNOWN_TARGET, ERR_UNKNOWN_TOOL
} from './errors.js'
import type { ForwardOptions, Forwarder } from './forwarder.js'
import type { ListName, LiveCatalog } from './catalog/live-catalog.js'
import { FORWARDED_METHODS, negotiateProtocolVersion } from './protocol.js'
import type { SessionBroker } from './session-broker.js'
import { ClientSession } from './client-session.js'
import type { Registry } from './registry.js'
import type { UpstreamPool } from './upstream-pool.js'

/**
 * The MCP methods a client may call, and where each is served: initialize and the lists from the gateway itself
 * (the catalog, with its own cursors), tools, resources, prompts and completions by routing the name to its service
 * and forwarding, logging and subscriptions through the client-state sync, notifications where they belong. Each
 * caller sees and reaches only what its roles allow (AccessPolicy): the lists are filtered before they are paged, and
 * a name it may not see is answered as an unknown name.
 */

const CAPABILITIES = Object.freeze({
  tools: { listChanged: true },
  resources: { subscribe: true, listChanged: true },
  prompts: { listChanged: true },
  completions: {},
  logging: {}
})

/** What is wrong with the params of a forwarded request, in the types MCP gives them. */
function forwardedParamsProblem (method: string, params: Params | undefined): string | undefined {
  const meta = params?._meta
  if (meta !== undefined) {
    if (!isObject(meta)) return `${method}: params._meta must be an object`
    const token = meta.progressToken
    if (token !== undefined && typeof token !== 'string' && !Number.isSafeInteger(token)) return `${method}: _meta.progressToken must be a string or an integer`
  }
  if ((method === 'tools/call' || method === 'prompts/get') && params?.arguments !== undefined && !isObject(params.arguments)) {
    return `${method}: params.arguments must be an object`
  }
  return undefined
}

/** The answer to completion/complete for a service that offers no completions: no suggestions. */
const NO_COMPLETIONS = Object.freeze({ completion: { values: [], hasMore: false } })

export interface DispatcherOptions {
  config: GatewayConfig
  version: string
  catalog: LiveCatalog
  forwarder: Forwarder
  state: ClientStateSync
  broker: SessionBroker
  pool: UpstreamPool
  registry: Registry
  /** What each principal may see and call. */
  access: AccessPolicy
  /** The client completed initialization (notifications/initialized). */
  initialized: (session: ClientSession) => void
}

export class Dispatcher {
  constructor (private readonly options: DispatcherOptions) {}

  /**
   * A request addressed to one upstream by its id, sent as it is (the WebSocket envelope): no catalog, no balancing;
   * the forwarding hooks apply as to any call.
   */
  requestUpstream (session: ClientSession, upstreamId: string, method: string, params: Params | undefined, trace?: Context): Promise<unknown> {
    const connection = this.options.pool.get(upstreamId)
    // Addressed by upstream, not by the names a policy speaks of: only for callers who may see everything (or admins).
    const access = this.options.access.for(session.principal)
    if (connection === undefined || !(access.unrestricted || access.admin)) return Promise.reject(new ERR_UNKNOWN_TARGET(JSON.stringify(upstreamId)))
    // This request counts too: the in-flight table holds the forwarded ones already, the envelope's are counted here.
    const refused = this.#admit(session, method, params, session.inFlight.size + session.directInFlight + 1)
    if (refused !== undefined) return Promise.reject(refused)
    session.directInFlight++
    const done = () => { session.directInFlight-- }
    const call = this.options.forwarder.direct(session, connection, method, params, trace)
    call.then(done, done)
    return call
  }

  /**
   * Whether a request may travel: the params MCP types, checked before it does (an upstream SDK drops a request it
   * cannot read without answering), and the session's requests in flight (`inFlight`, this one included).
   */
  #admit (session: ClientSession | undefined, method: string, params: Params | undefined, inFlight: number): Error | undefined {
    const problem = forwardedParamsProblem(method, params)
    if (problem !== undefined) return new ERR_INVALID_PARAMS(problem)
    const max = this.options.config.limits.maxInFlight
    if (session !== undefined && inFlight > max) return new ERR_TOO_MANY_IN_FLIGHT(max)
    return undefined
  }

  /** Negotiates the session's protocol version and records what the client declared; returns the result. */
  initialize (session: ClientSession, params: Params | undefined): Record<string, unknown> {
    if (session.negotiated) throw new ERR_ALREADY_INITIALIZED(session.id)
    const protocolVersion = negotiateProtocolVersion(params?.protocolVersion)
    const capabilities = isObject(params?.capabilities) ? params.capabilities : {}
    const clientInfo = isObject(params?.clientInfo) && typeof params.clientInfo.name === 'string'
      ? params.clientInfo as { name: string, version: string }
      : { name: 'unknown-client', version: '0.0.0' }
    const record = session.record
    record.protocolVersion = protocolVersion
    record.capabilities = capabilities
    record.clientInfo = clientInfo
    const { config, version } = this.options
    const result: Record<string, unknown> = {
      protocolVersion,
      capabilities: this.#capabilities(),
      serverInfo: { name: config.name, version }
    }
    if (config.instructions !== undefined) result.instructions = config.instructions
    return result
  }

  /** A notification from a client. */
  notification (session: ClientSession, method: string, params: Params | undefined): void {
    switch (method) {
      case 'notifications/initialized':
        this.options.initialized(session)
        return
      case 'notifications/cancelled': {
        const requestId = params?.requestId
        if (typeof requestId === 'string' || typeof requestId === 'number') {
          session.inFlight.withdraw(requestId, typeof params?.reason === 'string' ? params.reason.slice(0, 500) : 'cancelled by the client')
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
        for (const upstream of this.options.broker.openSessionsOf(session)) upstream.notify(method).catch(() => {})
        for (const connection of this.options.pool.sharedOnly()) {
          if (connection.state === 'up') connection.control?.notify(method).catch(() => {})
        }
    }
  }

  /**
   * Serves one client request; resolves the JSON-RPC result — a RawResult when it can be forwarded as the text the
   * upstream wrote — or rejects with a coded error.
   */
  request (context: ClientContext, method: string, params: Params | undefined, options: ForwardOptions = {}): Promise<unknown> {
    const session = context instanceof ClientSession ? context : undefined
    if (session !== undefined && !session.negotiated && method !== 'ping') return Promise.reject(new ERR_NOT_INITIALIZED(method))
    if (FORWARDED_METHODS.has(method)) {
      const refused = this.#admit(session, method, params, session?.inFlight.size ?? 0)
      if (refused !== undefined) return Promise.reject(refused)
    }
    switch (method) {
      case 'tools/call': return this.#callTool(context, params, options)
      case 'tools/list': return this.page('tools', params, context)
      case 'resources/list': return this.page('resources', params, context)
      case 'resources/templates/list': return this.page('resourceTemplates', params, context)
      case 'prompts/list': return this.page('prompts', params, context)
      case 'resources/read': return this.#readResource(context, params, options)
      case 'prompts/get': return this.#getPrompt(context, params, options)
      case 'completion/complete': return this.#complete(context, params, options)
      case 'ping': return Promise.resolve({})
      case 'logging/setLevel': return this.options.state.setLevel(session, params)
      case 'resources/subscribe':
        if (typeof params?.uri === 'string' && !this.#sees(context, 'resources', params.uri)) return Promise.reject(new ERR_UNKNOWN_RESOURCE(params.uri))
        return this.options.state.subscribe(session, params)
      case 'resources/unsubscribe': return this.options.state.unsubscribe(session, params)
      default: return Promise.reject(new ERR_METHOD_NOT_FOUND(method))
    }
  }

  /** One page of a list from the catalog, as JSON text ready to send. */
  page (list: ListName, params: Params | undefined, context: ClientContext): Promise<unknown> {
    const access = this.options.access.for(context.principal)
    const kind: ItemKind = list === 'resourceTemplates' ? 'resources' : list
    const visible = access.unrestricted ? undefined : (name: string) => access.sees(kind, name)
    try {
      return Promise.resolve(this.options.catalog.list(list, params?.cursor, this.options.config.pageSize, visible))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  #callTool (context: ClientContext, params: Params | undefined, options: ForwardOptions): Promise<unknown> {
    const name = params?.name
    if (typeof name !== 'string') return Promise.reject(new ERR_INVALID_PARAMS('tools/call needs params.name, the name of a tool from tools/list'))
    const entry = this.options.catalog.tool(name)
    if (entry === undefined || !this.#sees(context, 'tools', name)) return Promise.reject(new ERR_UNKNOWN_TOOL(name))
    if (params?.task !== undefined) {
      // Task ids are not mapped through the gateway, so it does not advertise tasks: a task-augmented call would get
      // a CreateTaskResult it could never follow up. Refused plainly instead.
      return Promise.reject(new ERR_INVALID_PARAMS('this gateway does not support tasks (it does not advertise them); send tools/call without params.task'))
    }
    const annotations = entry.definition.annotations
    const readOnly = annotations?.readOnlyHint === true
    const idempotent = readOnly || annotations?.idempotentHint === true
    return this.options.forwarder.forward(context, { service: entry.service, method: 'tools/call', params: { ...params, name: entry.originalName }, name: entry.name, idempotent, readOnly }, options)
  }

  #readResource (context: ClientContext, params: Params | undefined, options: ForwardOptions): Promise<unknown> {
    const uri = params?.uri
    if (typeof uri !== 'string') return Promise.reject(new ERR_INVALID_PARAMS('resources/read needs params.uri'))
    const service = this.options.catalog.resourceOwner(uri)
    if (service === undefined || !this.#sees(context, 'resources', uri)) return Promise.reject(new ERR_UNKNOWN_RESOURCE(uri))
    return this.options.forwarder.forward(context, { service, method: 'resources/read', params: params as Params, idempotent: true, readOnly: true }, options)
  }

  #getPrompt (context: ClientContext, params: Params | undefined, options: ForwardOptions): Promise<unknown> {
    const name = params?.name
    if (typeof name !== 'string') return Promise.reject(new ERR_INVALID_PARAMS('prompts/get needs params.name, the name of a prompt from prompts/list'))
    const entry = this.options.catalog.prompt(name)
    if (entry === undefined || !this.#sees(context, 'prompts', name)) return Promise.reject(new ERR_UNKNOWN_PROMPT(name))
    return this.options.forwarder.forward(context, { service: entry.service, method: 'prompts/get', params: { ...params, name: entry.originalName }, name: entry.name, idempotent: true }, options)
  }

  #complete (context: ClientContext, params: Params | undefined, options: ForwardOptions): Promise<unknown> {
    const catalog = this.options.catalog
    const ref = params?.ref as { type?: unknown, name?: unknown, uri?: unknown } | undefined
    if (ref?.type === 'ref/prompt' && typeof ref.name === 'string') {
      const entry = catalog.prompt(ref.name)
      if (entry === undefined || !this.#sees(context, 'prompts', ref.name)) return Promise.reject(new ERR_UNKNOWN_PROMPT(ref.name))
      if (!this.#offersCompletions(entry.service)) return Promise.resolve(NO_COMPLETIONS)
      return this.options.forwarder.forward(context, {
        service: entry.service, method: 'completion/complete', params: { ...params, ref: { ...ref, name: entry.originalName } }, idempotent: true
      }, options)
    }
    if (ref?.type === 'ref/resource' && typeof ref.uri === 'string') {
      const service = catalog.template(ref.uri)?.service ?? catalog.resourceOwner(ref.uri)
      if (service === undefined || !this.#sees(context, 'resources', ref.uri)) return Promise.reject(new ERR_UNKNOWN_RESOURCE(ref.uri))
      if (!this.#offersCompletions(service)) return Promise.resolve(NO_COMPLETIONS)
      return this.options.forwarder.forward(context, { service, method: 'completion/complete', params: params as Params, idempotent: true }, options)
    }
    return Promise.reject(new ERR_INVALID_PARAMS('completion/complete needs params.ref: {type:"ref/prompt",name} or {type:"ref/resource",uri}'))
  }

  /** Whether a replica of the service that is up declared completions. */
  #offersCompletions (service: string): boolean {
    for (const replica of this.options.registry.replicas(service)) {
      const listing = this.options.pool.get(replica.id)?.listing
      if (listing !== undefined) return listing.capabilities.completions !== undefined
    }
    return true // nothing known: let the upstream answer
  }

  #sees (context: ClientContext, kind: ItemKind, name: string): boolean {
    return this.options.access.for(context.principal).sees(kind, name)
  }

  /**
   * What the gateway offers, the same whichever upstreams are up: a client learns the capabilities once, at
   * initialize, and upstreams come and go after. The gateway serves each itself — subscriptions and log levels are
   * kept and passed to the services that take them, completions routed to their service (an empty answer where it
   * has none) — so it can promise them all.
   */
  #capabilities (): Record<string, unknown> {
    return CAPABILITIES
  }
}

function isObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
