import type { UpstreamState } from './upstream/connection.js'

/**
 * The health of every upstream as the gateway last saw it. Connections report their state here; the balancer only
 * picks replicas that are up, and listeners (metrics, the catalog) learn of every change.
 */

export interface UpstreamHealth {
  id: string
  service: string
  state: UpstreamState
  /** Why it is not up. */
  reason: string | undefined
  /** When the state last changed (ms since the epoch). */
  since: number
}

export class HealthMonitor {
  readonly #states = new Map<string, UpstreamHealth>()
  readonly #listeners = new Set<(health: UpstreamHealth, previous: UpstreamHealth | undefined) => void>()

  update (health: UpstreamHealth): void {
    const previous = this.#states.get(health.id)
    this.#states.set(health.id, health)
    for (const listener of this.#listeners) listener(health, previous)
  }

  remove (id: string): void {
    const previous = this.#states.get(id)
    if (previous === undefined) return
    this.#states.delete(id)
    const gone: UpstreamHealth = { ...previous, state: 'stopped', reason: 'removed', since: Date.now() }
    for (const listener of this.#listeners) listener(gone, previous)
  }

  isUp (id: string): boolean {
    return this.#states.get(id)?.state === 'up'
  }

  get (id: string): UpstreamHealth | undefined {
    return this.#states.get(id)
  }

  all (): UpstreamHealth[] {
    return [...this.#states.values()]
  }

  onChange (listener: (health: UpstreamHealth, previous: UpstreamHealth | undefined) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }
}
