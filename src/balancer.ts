import type { ClientContext } from './client-context.js'
import type { UpstreamDefinition } from './config/types.js'
import type { HealthMonitor } from './health.js'
import type { Registry } from './registry.js'

/**
 * Chooses the replica of a service that serves the next call: round-robin over the replicas that are up.
 * A replica with weight 0 is drained: it keeps its sessions' state but takes no new calls.
 */

export interface Balancer {
  /**
   * The replica for the next call of `context`'s client, skipping `exclude` (replicas that already failed this
   * call). Strategies that hash on the caller read the context.
   */
  pick (service: string, context: ClientContext, exclude?: ReadonlySet<string>): UpstreamDefinition | undefined
}

export class RoundRobinBalancer implements Balancer {
  readonly #next = new Map<string, number>()

  constructor (private readonly registry: Registry, private readonly health: HealthMonitor) {}

  pick (service: string, _context: ClientContext, exclude?: ReadonlySet<string>): UpstreamDefinition | undefined {
    const replicas = this.registry.replicas(service)
    const n = replicas.length
    const start = n > 1 ? (this.#next.get(service) ?? 0) % n : 0
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n
      const replica = replicas[i] as UpstreamDefinition
      if (replica.weight === 0 || !this.health.isUp(replica.id) || exclude?.has(replica.id) === true) continue
      if (n > 1) this.#next.set(service, i + 1)
      return replica
    }
    return undefined
  }
}
