import { createHash } from 'node:crypto'
import type { ClientContext } from '../client-context.js'
import type { UpstreamDefinition } from '../config/types.js'
import type { LoadFigures } from './load.js'

/**
 * How a service's next call picks among its eligible replicas (up, not drained, not tried by this call already).
 * Each strategy is a function of the eligible replicas and what it needs: its own small per-service state, the
 * load figures, the caller. All are O(replicas of the service): nothing grows with the number of upstreams.
 */

export type StrategyName =
  | 'round-robin' | 'least-connections' | 'weighted' | 'random' | 'ip-hash' | 'consistent-hash' | 'health-based' | 'peak-ewma'

/** What a consistent hash is keyed on: the client's address, its principal, or its session. */
export type HashOn = 'address' | 'principal' | 'session'

export interface PickInput {
  readonly replicas: readonly UpstreamDefinition[]
  readonly context: ClientContext
  readonly load: (id: string) => LoadFigures
  readonly hashOn: HashOn
  readonly random: () => number
}

export interface Strategy {
  pick (input: PickInput): UpstreamDefinition
}

export function createStrategy (name: StrategyName): Strategy {
  switch (name) {
    case 'round-robin': return new RoundRobin()
    case 'least-connections': return new LeastConnections()
    case 'weighted': return new SmoothWeighted()
    case 'random': return { pick: weightedRandom }
    case 'ip-hash':
    case 'consistent-hash': return { pick: rendezvous }
    case 'health-based': return { pick: healthBased }
    case 'peak-ewma': return { pick: peakEwma }
  }
}

/** In turn. */
class RoundRobin implements Strategy {
  #next = 0

  pick ({ replicas }: PickInput): UpstreamDefinition {
    const replica = replicas[this.#next % replicas.length] as UpstreamDefinition
    this.#next = (this.#next + 1) % 1_000_000_007
    return replica
  }
}

/** Fewest calls in flight; ties taken in turn, so idle replicas share the load instead of the first taking it all. */
class LeastConnections implements Strategy {
  #turn = 0

  pick ({ replicas, load }: PickInput): UpstreamDefinition {
    const n = replicas.length
    const start = this.#turn++ % n
    let best = replicas[start] as UpstreamDefinition
    let fewest = load(best.id).inFlight
    for (let k = 1; k < n; k++) {
      const replica = replicas[(start + k) % n] as UpstreamDefinition
      const inFlight = load(replica.id).inFlight
      if (inFlight < fewest) {
        best = replica
        fewest = inFlight
      }
    }
    return best
  }
}

/**
 * Smooth weighted round-robin (nginx's): each pick adds every replica's weight to its credit, takes the replica with
 * the most, and charges it the total — 3:1 weights give a b a a, never a a a b.
 */
class SmoothWeighted implements Strategy {
  readonly #credit = new Map<string, number>()

  pick ({ replicas }: PickInput): UpstreamDefinition {
    let total = 0
    let best: UpstreamDefinition | undefined
    let bestCredit = -Infinity
    for (const replica of replicas) {
      const credit = (this.#credit.get(replica.id) ?? 0) + replica.weight
      this.#credit.set(replica.id, credit)
      total += replica.weight
      if (credit > bestCredit) {
        best = replica
        bestCredit = credit
      }
    }
    const chosen = best as UpstreamDefinition
    this.#credit.set(chosen.id, bestCredit - total)
    // Replicas that left keep no credit.
    if (this.#credit.size > replicas.length * 2) for (const id of this.#credit.keys()) if (!replicas.some(r => r.id === id)) this.#credit.delete(id)
    return chosen
  }
}

/** At random, in proportion to weight. */
function weightedRandom ({ replicas, random }: PickInput): UpstreamDefinition {
  let total = 0
  for (const replica of replicas) total += replica.weight
  let at = random() * total
  for (const replica of replicas) {
    at -= replica.weight
    if (at < 0) return replica
  }
  return replicas[replicas.length - 1] as UpstreamDefinition
}

/**
 * Rendezvous (highest random weight) hashing on the caller: each replica scores hash(key, replica), the highest
 * wins. A replica that leaves moves only the callers it had; one that joins takes only its share. Weighted by
 * `weight` (score = −weight / ln(u) for the hash as u in (0, 1)). A caller with no key (no address, principal or
 * session) is spread at random.
 */
function rendezvous (input: PickInput): UpstreamDefinition {
  const key = hashKey(input.context, input.hashOn)
  if (key === undefined) return weightedRandom(input)
  let best = input.replicas[0] as UpstreamDefinition
  let bestScore = -Infinity
  for (const replica of input.replicas) {
    const u = unitHash(key + '\0' + replica.id)
    const score = -replica.weight / Math.log(u)
    if (score > bestScore) {
      best = replica
      bestScore = score
    }
  }
  return best
}

/**
 * Scored by health: latency EWMA and error rate together (a replica failing half its calls counts as ten times as
 * slow), picked at random in proportion to 1/score, so the best gets most but the others keep being measured.
 */
function healthBased (input: PickInput): UpstreamDefinition {
  const { replicas, load, random } = input
  const scores = replicas.map(r => {
    const figures = load(r.id)
    return r.weight / ((figures.latencyMs + 1) * (1 + 20 * figures.errorRate))
  })
  let total = 0
  for (const score of scores) total += score
  let at = random() * total
  for (let i = 0; i < replicas.length; i++) {
    at -= scores[i] as number
    if (at < 0) return replicas[i] as UpstreamDefinition
  }
  return replicas[replicas.length - 1] as UpstreamDefinition
}

/**
 * Power of two choices over peak EWMA (Finagle, Linkerd): two replicas drawn at random in proportion to weight, the
 * one with the lower latency × (calls in flight + 1) wins. Uneven load sorts itself out — a replica that slows down or
 * piles up calls loses every comparison — without the herd that "always the best" causes; the latency of a replica
 * that was avoided fades (load.ts), so it is tried again in time.
 */
function peakEwma (input: PickInput): UpstreamDefinition {
  const { replicas, load } = input
  if (replicas.length === 1) return replicas[0] as UpstreamDefinition
  const a = weightedRandom(input)
  let b = weightedRandom(input)
  for (let k = 0; b === a && k < 4; k++) b = weightedRandom(input)
  if (b === a) b = replicas[(replicas.indexOf(a) + 1) % replicas.length] as UpstreamDefinition
  return cost(load(a.id)) <= cost(load(b.id)) ? a : b
}

function cost (figures: LoadFigures): number {
  return (figures.latencyMs + 1) * (figures.inFlight + 1) * (1 + 20 * figures.errorRate)
}

function hashKey (context: ClientContext, on: HashOn): string | undefined {
  if (on === 'principal' && context.principal !== null) return context.principal.kind + ':' + context.principal.id
  if (on === 'session') {
    const id = (context as { id?: unknown }).id
    if (typeof id === 'string') return 'session:' + id
  }
  return context.address === undefined ? undefined : 'address:' + context.address
}

/** A hash of `text` as a number in (0, 1). */
function unitHash (text: string): number {
  const digest = createHash('sha1').update(text).digest()
  return (digest.readUInt32BE(0) + 1) / 4_294_967_297
}
