import { type HashOn, type Strategy, type StrategyName, createStrategy } from './balancing/strategies.js'
import { UpstreamLoad } from './balancing/load.js'
import type { ClientContext } from './client-context.js'
import type { BalancerSettings, UpstreamDefinition } from './config/types.js'
import type { HealthMonitor } from './health.js'
import type { Registry } from './registry.js'

/**
 * Chooses the replica of a service that serves the next call, by the service's strategy (`balancer.strategy` on
 * its servers, else the gateway's `balancer`; see balancing/strategies.ts) among the replicas that are up, not
 * drained (weight 0: a drained replica keeps its sessions' state but takes no new calls) and not tried by this call
 * already. The load figures the strategies read come from the forwarder (`load`). A client's own upstream session
 * stays on the replica it was opened on whatever the strategy: the session broker asks only when it has none.
 */

export interface Balancer {
  /**
   * The replica for the next call of `context`'s client, skipping `exclude` (replicas that already failed this
   * call). Strategies that hash on the caller read the context.
   */
  pick (service: string, context: ClientContext, exclude?: ReadonlySet<string>): UpstreamDefinition | undefined
  /** Calls in flight and latencies per upstream, kept by the forwarder, read by the strategies. */
  readonly load?: UpstreamLoad
}

interface ServiceStrategy {
  readonly name: StrategyName
  readonly hashOn: HashOn
  readonly strategy: Strategy
}

export class ServiceBalancer implements Balancer {
  readonly load = new UpstreamLoad()
  readonly #services = new Map<string, ServiceStrategy>()
  readonly #figures = (id: string) => this.load.figures(id)

  constructor (
    private readonly registry: Registry,
    private readonly health: HealthMonitor,
    private readonly defaults: BalancerSettings = { strategy: 'peak-ewma', hashOn: 'address' },
    private readonly random: () => number = Math.random
  ) {
    registry.onChange((change) => {
      if (change.type === 'removed') this.load.forget(change.server.id)
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
    return chosen.strategy.pick({ replicas: eligible, context, load: this.#figures, hashOn: chosen.hashOn, random: this.random })
  }

  /** The strategy a service uses now (its own setting, or the default), kept until its servers change. */
  #strategyOf (service: string): ServiceStrategy {
    let chosen = this.#services.get(service)
    if (chosen === undefined) {
      const settings = this.registry.serviceOptions(service).balancer ?? this.defaults
      const hashOn = settings.strategy === 'ip-hash' ? 'address' : settings.hashOn
      chosen = { name: settings.strategy, hashOn, strategy: createStrategy(settings.strategy) }
      this.#services.set(service, chosen)
    }
    return chosen
  }

  #eligible (replica: UpstreamDefinition, exclude: ReadonlySet<string> | undefined): boolean {
    return replica.weight > 0 && this.health.isUp(replica.id) && exclude?.has(replica.id) !== true
  }
}
