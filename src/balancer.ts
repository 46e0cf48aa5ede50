import { CircuitBreakers, type CircuitListener, type CircuitReport, type CircuitSettings } from './balancing/circuit.js'
import { type HashOn, type Strategy, type StrategyName, createStrategy } from './balancing/strategies.js'
import { type LoadFigures, UpstreamLoad } from './balancing/load.js'
import { type LatencyPercentiles, LatencyWindows } from './balancing/latency-window.js'
import { DEFAULT_OUTLIERS, type Ejection, type EjectionReport, OutlierDetector, type OutlierSettings } from './balancing/outliers.js'
import { ERR_CIRCUIT_OPEN } from './errors.js'
import type { ClientContext } from './client-context.js'
import type { BalancerSettings, UpstreamDefinition } from './config/types.js'
import type { HealthMonitor } from './health.js'
import type { Registry } from './registry.js'

/**
 * Chooses the replica of a service that serves the next call, by the service's strategy (`balancer.strategy` on
 * its servers, else the gateway's `balancer`; see balancing/strategies.ts) among the replicas that are up, not
 * drained (weight 0: a drained replica keeps its sessions' state but takes no new calls), whose circuit breaker lets
 * calls through (balancing/circuit.ts), not ejected as an outlier (balancing/outliers.ts) and not tried by this
 * call already. What the strategies and breakers read
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
  /** What the balancer knows of an upstream: its load figures, latency percentiles, circuit and ejection. */
  figures? (id: string): UpstreamFigures
  /**
   * Whether a call may go to this upstream now as far as its circuit and outlier ejection are concerned (for
   * sessions stuck to it, and for calls that waited for a slot).
   */
  admits? (id: string): boolean
  /** The `q` quantile of the upstream's recent latency, and the calls it is computed from (for hedging). */
  latencyQuantile? (id: string, q: number): { ms: number, samples: number }
}

export interface UpstreamFigures {
  readonly load: LoadFigures
  readonly latency: LatencyPercentiles
  readonly circuit: CircuitReport
  readonly ejection: EjectionReport
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
  outliers?: OutlierSettings
  onEjection?: (id: string, ejection: Ejection) => void
  random?: () => number
  /** The clock the load figures fade by (performance.now). */
  now?: () => number
}

export class ServiceBalancer implements Balancer {
  readonly load = new UpstreamLoad()
  readonly circuits: CircuitBreakers
  readonly outliers: OutlierDetector
  readonly latency = new LatencyWindows()
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
    this.outliers = new OutlierDetector(options.outliers ?? DEFAULT_OUTLIERS, (id) => {
      const service = registry.get(id)?.service
      return service === undefined ? [id] : registry.replicas(service).map(r => r.id)
    }, options.onEjection, Date.now, (id) => (registry.get(id)?.weight ?? 0) > 0 && health.isUp(id) && this.circuits.report(id).state !== 'open')
    this.attempts = {
      started: (id) => {
        this.load.started(id)
        this.circuits.started(id)
      },
      finished: (id, ms, failed) => {
        // Removed while the call ran: nothing is kept for it (its records are gone and stay gone).
        if (!this.load.finished(id, ms, failed)) return
        this.outliers.record(id, failed)
        if (failed) {
          this.circuits.failed(id)
        } else {
          this.circuits.succeeded(id)
          this.latency.record(id, ms)
        }
      },
      abandoned: (id) => {
        this.load.abandoned(id)
        this.circuits.abandoned(id)
      }
    }
    health.onChange((current, previous) => {
      if (current.state === 'up' && previous !== undefined && previous.state !== 'up') {
        this.circuits.reconnected(current.id)
        this.outliers.reconnected(current.id)
      }
    })
    registry.onChange((change) => {
      if (change.type === 'removed') {
        this.load.forget(change.server.id)
        this.circuits.forget(change.server.id)
        this.outliers.forget(change.server.id)
        this.latency.forget(change.server.id)
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
    let eligible = replicas.filter(r => this.#eligible(r, exclude))
    // Panic mode (Envoy's name): with every usable replica ejected — the others went down after the ejections —
    // ejection is ignored rather than the service emptied.
    if (eligible.length === 0) eligible = replicas.filter(r => this.#eligible(r, exclude, true))
    if (eligible.length <= 1) return eligible[0]
    const chosen = this.#strategyOf(service)
    return chosen.strategy.pick({ replicas: eligible, context, load: this.#figures, hashOn: chosen.hashOn, random: this.#random })
  }

  admits (id: string): boolean {
    return !this.outliers.ejected(id) && this.circuits.allows(id)
  }

  figures (id: string): UpstreamFigures {
    return {
      load: this.load.figures(id, this.#now()),
      latency: this.latency.percentiles(id),
      circuit: this.circuits.report(id),
      ejection: this.outliers.report(id)
    }
  }

  latencyQuantile (id: string, q: number): { ms: number, samples: number } {
    return this.latency.quantile(id, q)
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

  #eligible (replica: UpstreamDefinition, exclude: ReadonlySet<string> | undefined, panic = false): boolean {
    return replica.weight > 0 && this.health.isUp(replica.id) && exclude?.has(replica.id) !== true && (panic || !this.outliers.ejected(replica.id)) &&
      this.circuits.allows(replica.id)
  }
}
