import type { JsonRpcNotification, Params } from '../schemas/jsonrpc.js'
import { ERR_CAPABILITY_NOT_DECLARED, ERR_NO_CLIENT, RpcCode } from './errors.js'
import type { Logger } from './logger.js'
import type { ClientSession } from './client-session.js'
import type { Pending, RequestOrigin } from './upstream/pending.js'
import type { IncomingRequest, SessionHandlers, UpstreamSession } from './upstream/session.js'

/**
 * Server→client traffic: what an upstream sends that is not an answer — requests (sampling, elicitation, roots,
 * ping) and notifications (log messages, resource updates, elicitation completion, …) — delivered to the client it
 * concerns, and the client's answers carried back.
 *
 * On a session opened for one client the client is known, and Streamable HTTP upstreams even say which call it is
 * about (the message arrives on that call's answer stream), so it travels on that call's stream downstream too. On
 * a session every client shares (a stdio server, a `stateless` service) the call is known only when the message
 * arrives on its answer stream; otherwise a request goes to the client of the most recent call in flight that can
 * answer it (the upstream protocol carries no link between a request and the call that caused it).
 */

/** Who a forwarded call serves: the client session and its request id. */
export interface CallOrigin extends RequestOrigin {
  readonly client: ClientSession
}

/** Server→client requests, and the client capability each needs. */
const NEEDS: ReadonlyMap<string, string> = new Map([
  ['sampling/createMessage', 'sampling'],
  ['elicitation/create', 'elicitation'],
  ['roots/list', 'roots']
])

export interface RelayOptions {
  log: Logger
  /** The clients that asked for log messages (for those of shared sessions that belong to no call). */
  logListeners: () => Iterable<ClientSession>
  /** Clients subscribed to `uri` of `service` through a shared session. */
  subscribers: (service: string, uri: string) => Iterable<ClientSession>
  /** Told of every resources/updated an upstream sends, on any session (the result cache's invalidation). */
  resourceUpdated?: (service: string, uri: string) => void
}

export class Relay {
  /** URL-mode elicitations forwarded from shared sessions, so their completion reaches the same client. */
  readonly #elicitations = new Map<string, ClientSession>()

  constructor (private readonly options: RelayOptions) {}

  /**
   * Handlers for an upstream session opened for one client. What arrives outside a call's answer stream (legacy SSE
   * and WebSocket upstreams have only one stream) belongs to the client's most recent call on that session, if any.
   */
  forClient (client: ClientSession, service: string, timeout: number): SessionHandlers {
    return {
      onNotification: (message, via) => {
        if (message.method === 'notifications/resources/updated') this.#updated(service, message)
        this.#deliver(client, service, message, originOf(via)?.requestId)
      },
      onRequest: (incoming) => {
        const origin = originOf(incoming.via) ?? (incoming.session.inFlightOrigins().at(-1) as CallOrigin | undefined)
        return this.#ask(client, service, incoming, timeout, origin?.requestId)
      }
    }
  }

  /**
   * A notification on a shared session. `sharedOnly`: the upstream has no other sessions (stdio, sessionMode
   * "shared"), so log messages that belong to no call are for every client that asked for them; on other upstreams
   * those clients hear their own sessions instead.
   */
  sharedNotification (upstreamId: string, service: string, message: JsonRpcNotification, via: Pending | undefined, sharedOnly: boolean): void {
    const origin = originOf(via)
    const params = message.params as Params | undefined
    if (message.method === 'notifications/resources/updated') {
      this.#updated(service, message)
      for (const client of this.options.subscribers(service, String(params?.uri))) client.notify(message.method, params)
      return
    }
    if (message.method === 'notifications/elicitation/complete') {
      const id = String(params?.elicitationId)
      const client = this.#elicitations.get(id) ?? origin?.client
      this.#elicitations.delete(id)
      if (client !== undefined) client.notify(message.method, params)
      return
    }
    if (origin !== undefined) {
      this.#deliver(origin.client, service, message, origin.requestId)
      return
    }
    if (message.method === 'notifications/message' && sharedOnly) {
      // Not tied to a call: every client that asked for log messages (logging/setLevel) gets it.
      for (const client of this.options.logListeners()) this.#deliver(client, service, message, undefined)
      return
    }
    this.options.log.debug({ upstream: upstreamId, method: message.method }, 'notification of a shared session not tied to a client; dropped')
  }

  /** A request on a session every client shares. */
  sharedRequest (upstreamId: string, service: string, session: UpstreamSession, incoming: IncomingRequest, timeout: number): Promise<unknown> {
    const method = incoming.message.method
    if (method === 'ping') return Promise.resolve({})
    const capability = NEEDS.get(method)
    let origin = originOf(incoming.via)
    if (origin === undefined && capability !== undefined) {
      // The most recent call in flight whose client can answer; failing that, the most recent call at all (its
      // client is then told it did not declare what the upstream asks, and so is the upstream).
      const origins = (session.inFlightOrigins() as CallOrigin[]).filter(o => !o.client.closed)
      origin = origins.findLast(o => o.client.declared(capability)) ?? origins.at(-1)
    }
    const client = origin?.client
    if (client === undefined) {
      // roots/list outside any call (a server asks right after initialize): the gateway itself has no roots.
      if (method === 'roots/list') return Promise.resolve({ roots: [] })
      return Promise.reject(Object.assign(new ERR_NO_CLIENT(method, upstreamId), {
        rpcError: { code: RpcCode.InternalError, message: `No client of the gateway can answer ${method} now` }
      }))
    }
    const elicitationId = (incoming.message.params as Params | undefined)?.elicitationId
    if (method === 'elicitation/create' && typeof elicitationId === 'string') this.#elicitations.set(elicitationId, client)
    return this.#ask(client, service, incoming, timeout, origin?.requestId)
  }

  #updated (service: string, message: JsonRpcNotification): void {
    const uri = (message.params as Params | undefined)?.uri
    if (typeof uri === 'string') this.options.resourceUpdated?.(service, uri)
  }

  #deliver (client: ClientSession, service: string, message: JsonRpcNotification, relatedTo: string | number | undefined): void {
    const params = message.params as Params | undefined
    switch (message.method) {
      case 'notifications/message': {
        if (!client.wantsLog(params?.level)) return
        // The service is named, so a client reading logs of many servers knows whose they are.
        const logger = typeof params?.logger === 'string' ? `${service}/${params.logger}` : service
        client.notify(message.method, { ...params, logger }, relatedTo)
        return
      }
      case 'notifications/resources/updated':
        if (client.subscribed(String(params?.uri))) client.notify(message.method, params)
        return
      case 'notifications/tools/list_changed':
      case 'notifications/resources/list_changed':
      case 'notifications/prompts/list_changed':
        // The catalog follows the gateway's own session with the service; it announces changes to every client.
        return
      default:
        client.notify(message.method, params, relatedTo)
    }
  }

  /**
   * Forwards a server→client request to `client`, if it declared what it needs, and resolves the answer. It travels
   * with the client's call `relatedTo` (on that call's answer stream) when there is one.
   */
  #ask (client: ClientSession, service: string, incoming: IncomingRequest, timeout: number, relatedTo: string | number | undefined): Promise<unknown> {
    const { message, cancel } = incoming
    if (message.method === 'ping') return Promise.resolve({})
    const capability = NEEDS.get(message.method)
    if (capability === undefined) {
      return Promise.reject(Object.assign(new Error('unsupported'), {
        rpcError: { code: RpcCode.MethodNotFound, message: `Method not found: ${message.method.slice(0, 100)} (the gateway forwards sampling, elicitation and roots)` }
      }))
    }
    const params = message.params as Params | undefined
    const urlMode = message.method === 'elicitation/create' && params?.mode === 'url'
    if (!client.declared(capability, urlMode ? 'url' : undefined)) {
      const err = new ERR_CAPABILITY_NOT_DECLARED(urlMode ? 'elicitation.url' : capability, message.method)
      return Promise.reject(Object.assign(err, { rpcError: { code: RpcCode.MethodNotFound, message: err.message } }))
    }
    let forwarded = params
    const token = (params?._meta as Params | undefined)?.progressToken
    let route: string | undefined
    if (typeof token === 'string' || typeof token === 'number') {
      route = client.routeProgress(token, incoming.session)
      forwarded = { ...params, _meta: { ...(params?._meta as Params), progressToken: route } }
    }
    const asked = client.request(message.method, forwarded, { timeout, cancel, ...(relatedTo !== undefined ? { relatedTo } : {}) })
    if (route !== undefined) {
      const routed = route
      asked.then(() => client.dropProgressRoute(routed), () => client.dropProgressRoute(routed))
    }
    this.options.log.debug({ service, method: message.method, client: client.id }, 'forwarded a server request to its client')
    return asked
  }
}

function originOf (via: Pending | undefined): CallOrigin | undefined {
  return via?.origin as CallOrigin | undefined
}
