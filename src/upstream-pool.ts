import type { GatewayConfig, UpstreamDefinition } from './config/types.js'
import type { HealthMonitor } from './health.js'
import type { Logger } from './logger.js'
import type { ListKind } from './mcp-types.js'
import { onlyWeightChanged, type Registry, type RegistryChange } from './registry.js'
import { type ConnectionRelay, UpstreamConnection } from './upstream/connection.js'

/**
 * The gateway's connections to its upstreams: one UpstreamConnection per registered upstream, started and stopped
 * as the registry changes, each state change reported to the health monitor and to the engine's listeners, and
 * what /status shows of them. It knows nothing of clients.
 */

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

/** What the rest of the engine learns of the connections. */
export interface PoolListener {
  /** A connection's state changed (it came up, went down, …). */
  state (connection: UpstreamConnection): void
  /** What a connection lists changed. */
  listing (connection: UpstreamConnection): void
  /** The upstream said one of its lists changed (whether or not the listing did: the result cache listens). */
  listChanged? (connection: UpstreamConnection, kind: ListKind): void
  /** A connection was removed (its upstream was unregistered or is being replaced); it is closing. */
  removed (connection: UpstreamConnection): void
}

export interface UpstreamPoolOptions {
  config: GatewayConfig
  registry: Registry
  health: HealthMonitor
  log: Logger
  clientInfo: { name: string, version: string }
  /** Declared by the gateway's own sessions: everything it can forward to a client that supports it. */
  clientCapabilities: Record<string, unknown>
  relay: ConnectionRelay
  listener: PoolListener
}

/** How many registered upstreams are in each state that /health distinguishes. */
export interface StateCounts {
  total: number
  up: number
  disabled: number
  /** Down, connecting, or about to connect. */
  down: number
}

export class UpstreamPool {
  readonly #connections = new Map<string, UpstreamConnection>()
  /** The connections whose one session every client shares (stdio, sessionMode "shared"): few, and asked often. */
  readonly #sharedOnly = new Set<UpstreamConnection>()
  /** Upstream id → the last state its connection reported, and the tallies kept from them. */
  readonly #states = new Map<string, string>()
  #up = 0
  #disabled = 0
  #stopWatchingRegistry: (() => void) | undefined

  constructor (private readonly options: UpstreamPoolOptions) {}

  get connections (): ReadonlyMap<string, UpstreamConnection> {
    return this.#connections
  }

  get (id: string): UpstreamConnection | undefined {
    return this.#connections.get(id)
  }

  /** The connections whose one session every client shares (stdio, `sessionMode: "shared"`). */
  sharedOnly (): ReadonlySet<UpstreamConnection> {
    return this.#sharedOnly
  }

  /** Upstreams by state, kept as states change: what /health answers without walking a thousand upstreams. */
  counts (): StateCounts {
    const total = this.options.registry.size
    return { total, up: this.#up, disabled: this.#disabled, down: Math.max(0, total - this.#up - this.#disabled) }
  }

  /**
   * Connects every registered upstream and follows the registry from now on. Resolves when each has connected or
   * failed once, or after `wait` ms, whichever is first: a slow upstream joins later, it never delays start-up.
   */
  async start (wait: number): Promise<void> {
    this.#stopWatchingRegistry = this.options.registry.onChange((change) => this.#registryChanged(change))
    const first = this.options.registry.list().map(definition => this.#connect(definition))
    if (first.length === 0 || wait === 0) return
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all(first),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, wait) })
    ])
    clearTimeout(timer)
  }

  async close (): Promise<void> {
    this.#stopWatchingRegistry?.()
    await Promise.all([...this.#connections.values()].map(c => c.close()))
    this.#connections.clear()
  }

  /** Every registered upstream as /status and the admin API show it (no credentials). */
  reports (): UpstreamReport[] {
    return this.options.registry.list().map((definition) => {
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

  /** Why no replica of `service` can take a call, for the error the client gets. */
  /** A call found no replica of `service` to take it: those down and waiting out their backoff try again now. */
  wake (service: string): void {
    for (const replica of this.options.registry.replicas(service)) this.#connections.get(replica.id)?.wake()
  }

  whyUnavailable (service: string): string {
    const replicas = this.options.registry.replicas(service)
    if (replicas.length === 0) return 'it is not registered'
    return replicas.map(r => {
      const c = this.#connections.get(r.id)
      return r.weight === 0 ? `${r.id} is drained (weight 0)` : `${r.id} is ${c?.state ?? 'stopped'}${c?.reason !== undefined ? ` (${c.reason})` : ''}`
    }).join('; ')
  }

  #connect (definition: UpstreamDefinition): Promise<void> {
    const { config, health, listener } = this.options
    const connection = new UpstreamConnection(definition, {
      defaults: config.upstreamDefaults,
      clientInfo: this.options.clientInfo,
      clientCapabilities: this.options.clientCapabilities,
      relay: this.options.relay,
      maxJsonDepth: config.limits.maxJsonDepth,
      maxMessageLength: config.limits.maxUpstreamMessage,
      log: this.options.log,
      observer: {
        state: (c) => {
          if (this.#connections.get(c.id) !== c) return
          this.#tally(c.id, c.state)
          health.update({ id: c.id, service: c.definition.service, state: c.state, reason: c.reason, since: c.since })
          listener.state(c)
        },
        listing: (c) => { if (this.#connections.get(c.id) === c) listener.listing(c) },
        listChanged: (c, kind) => { if (this.#connections.get(c.id) === c) listener.listChanged?.(c, kind) }
      }
    })
    this.#connections.set(definition.id, connection)
    if (connection.shared) this.#sharedOnly.add(connection)
    return connection.start()
  }

  async #disconnect (id: string): Promise<void> {
    const connection = this.#connections.get(id)
    if (connection === undefined) return
    this.#connections.delete(id)
    this.#sharedOnly.delete(connection)
    this.#tally(id, undefined)
    this.options.health.remove(id)
    this.options.listener.removed(connection)
    await connection.close()
  }

  #tally (id: string, state: string | undefined): void {
    const before = this.#states.get(id)
    if (before === 'up') this.#up--
    else if (before === 'disabled') this.#disabled--
    if (state === 'up') this.#up++
    else if (state === 'disabled') this.#disabled++
    if (state === undefined) this.#states.delete(id)
    else this.#states.set(id, state)
  }

  #registryChanged (change: RegistryChange): void {
    const id = change.server.id
    this.options.log.info({ upstream: id, change: change.type }, 'registry changed')
    if (change.type === 'added') {
      this.#connect(change.server).catch(() => {})
    } else if (change.type === 'removed') {
      this.#disconnect(id).catch(() => {})
    } else if (!onlyWeightChanged(change.previous, change.server)) {
      // Connect what the registry holds once the old connection is closed — not this change's definition: changes
      // in quick succession (disable, then enable) each close, and only the last one's definition may connect.
      this.#disconnect(id).then(() => {
        const current = this.options.registry.get(id)
        if (current !== undefined && !this.#connections.has(id)) return this.#connect(current)
      }).catch(() => {})
    }
    // A new weight alone (a drain) keeps the connection and its sessions: the balancer reads weights from the registry.
  }
}

/**
 * Where an upstream lives, safe to show anyone who can reach /status: arguments and query strings often carry
 * tokens, so a stdio server shows its command and how many arguments it has, a URL loses its query.
 */
function publicTarget (definition: UpstreamDefinition): string {
  if (definition.url !== undefined) {
    const url = new URL(definition.url)
    return url.origin + url.pathname + (url.search === '' ? '' : '?…')
  }
  const count = definition.args.length
  return count === 0 ? definition.command as string : `${definition.command as string} (+${count} argument${count === 1 ? '' : 's'})`
}
