import { CircuitBreakers, type CircuitListener, type CircuitReport, type CircuitSettings } from './balancing/circuit.js'
import { type HashOn, type Strategy, type StrategyName, createStrategy } from './balancing/strategies.js'
import { type LoadFigures, UpstreamLoad } from './balancing/load.js'
import { ERR_CIRCUIT_OPEN } from './errors.js'
import type { ClientContext } from './client-context.js'
import type { BalancerSettings, UpstreamDefinition } from './config/types.js'
import type { HealthMonitor } from './health.js'
import type { Registry } from './registry.js'

/**
 * Chooses the replica of a service that serves the next call, by the service's strategy (`balancer.strategy` on
 * its servers, else the gateway's `balancer`; see balancing/strategies.ts) among the replicas that are up, not
 * drained (weight 0: a drained replica keeps its sessions' state but takes no new calls), whose circuit breaker lets
 * calls through (balancing/circuit.ts) and not tried by this call already. What the strategies and breakers read
 * comes from the forwarder (`attempts`). A client's own upstream session stays on the replica it was opened on
 * whatever the strategy: the session broker asks only when it has none.
 */

/** Told of every attempt to call an upstream and how it ended (`failed`: the upstream failed, not answered). */
export interface AttemptObserver {
  started (id: string): void
  finished (id: string, ms: number, failed: boolean): void
  /** The attempt ended without telling anything of the upstream (the client cancelled it, it never left). */
  abandoned (id: string): void
}

export const DEFAULT_CIRCUIT: CircuitSettings = Object.freeze({ failureThreshold: 5, openMs: 5000, maxOpenMs: 60_000, halfOpenCalls: 1 })

export interface Balancer {
  /**
   * The replica for the next call of `context`'s client, skipping `exclude` (replicas that already failed this
   * call). Strategies that hash on the caller read the context.
   */
  pick (service: string, context: ClientContext, exclude?: ReadonlySet<string>): UpstreamDefinition | undefined
  /** Where the forwarder reports its attempts: load figures and circuit breakers. */
  readonly attempts?: AttemptObserver
  /** Why nothing can be picked when it is the breakers' doing (every usable replica's circuit is open). */
  unavailable? (service: string): Error | undefined
  /** What the balancer knows of an upstream: its load figures and its circuit. */
  figures? (id: string): { load: LoadFigures, circuit: CircuitReport }
  /** Whether a call may go to this upstream now as far as its circuit is concerned (for sessions stuck to it). */
  admits? (id: string): boolean
}

interface ServiceStrategy {
  readonly name: StrategyName
  readonly hashOn: HashOn
  readonly strategy: Strategy
}

export interface ServiceBalancerOptions {
  defaults?: BalancerSettings
  circuit?: CircuitSettings
  onCircuit?: CircuitListener
  random?: () => number
  /** The clock the load figures fade by (performance.now). */
  now?: () => number
}

export class ServiceBalancer implements Balancer {
  readonly load = new UpstreamLoad()
  readonly circuits: CircuitBreakers
  readonly attempts: AttemptObserver
  readonly #services = new Map<string, ServiceStrategy>()
  readonly #figures = (id: string) => this.load.figures(id, this.#now())
  readonly #now: () => number
  readonly #defaults: BalancerSettings
  readonly #random: () => number

  constructor (private readonly registry: Registry, private readonly health: HealthMonitor, options: ServiceBalancerOptions = {}) {
    this.#defaults = options.defaults ?? { strategy: 'peak-ewma', hashOn: 'address' }
    this.#random = options.random ?? Math.random
    this.#now = options.now ?? (() => performance.now())
    this.circuits = new CircuitBreakers(options.circuit ?? DEFAULT_CIRCUIT, options.onCircuit)
    this.attempts = {
      started: (id) => {
        this.load.started(id)
        this.circuits.started(id)
      },
      finished: (id, ms, failed) => {
        this.load.finished(id, ms, failed)
        if (failed) this.circuits.failed(id)
        else this.circuits.succeeded(id)
      },
      abandoned: (id) => {
        this.load.abandoned(id)
        this.circuits.abandoned(id)
      }
    }
    registry.onChange((change) => {
      if (change.type === 'removed') {
        this.load.forget(change.server.id)
        this.circuits.forget(change.server.id)
      }
      this.#services.delete(change.server.service)
      if (change.type === 'updated') this.#services.delete(change.previous.service)
    })
  }

  pick (service: string, context: ClientContext, exclude?: ReadonlySet<string>): UpstreamDefinition | undefined {
    const replicas = this.registry.replicas(service)
    // One replica (most services): no strategy to ask, nothing to allocate.
    if (replicas.length === 1) {
      const only = replicas[0] as UpstreamDefinition
      return this.#eligible(only, exclude) ? only : undefined
    }
    const eligible = replicas.filter(r => this.#eligible(r, exclude))
    if (eligible.length <= 1) return eligible[0]
    const chosen = this.#strategyOf(service)
    return chosen.strategy.pick({ replicas: eligible, context, load: this.#figures, hashOn: chosen.hashOn, random: this.#random })
  }

  admits (id: string): boolean {
    return this.circuits.allows(id)
  }

  figures (id: string): { load: LoadFigures, circuit: CircuitReport } {
    return { load: this.load.figures(id, this.#now()), circuit: this.circuits.report(id) }
  }

  unavailable (service: string): Error | undefined {
    let retryAfterMs: number | undefined
    for (const replica of this.registry.replicas(service)) {
      if (replica.weight === 0 || !this.health.isUp(replica.id)) continue
      const circuit = this.circuits.report(replica.id)
      if (circuit.state === 'closed') return undefined
      retryAfterMs = Math.min(retryAfterMs ?? Infinity, circuit.retryAfterMs ?? 0)
    }
    return retryAfterMs === undefined ? undefined : new ERR_CIRCUIT_OPEN(service, retryAfterMs)
  }

  /** The strategy a service uses now (its own setting, or the default), kept until its servers change. */
  #strategyOf (service: string): ServiceStrategy {
    let chosen = this.#services.get(service)
    if (chosen === undefined) {
      const settings = this.registry.serviceOptions(service).balancer ?? this.#defaults
      const hashOn = settings.strategy === 'ip-hash' ? 'address' : settings.hashOn
      chosen = { name: settings.strategy, hashOn, strategy: createStrategy(settings.strategy) }
      this.#services.set(service, chosen)
    }
    return chosen
  }

  #eligible (replica: UpstreamDefinition, exclude: ReadonlySet<string> | undefined): boolean {
    return replica.weight > 0 && this.health.isUp(replica.id) && exclude?.has(replica.id) !== true && this.circuits.allows(replica.id)
  }
}
