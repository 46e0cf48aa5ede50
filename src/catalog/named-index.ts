import type { NameFilter } from '../../schemas/config.js'
import { candidateName, type Collision, collisionName, globMatcher, nameIdentity, type NamingOptions } from '../naming.js'
import { memberHash, type MemberHash, SetDigest } from './set-digest.js'
import { pageAfter, SortedMap } from './sorted-map.js'

/**
 * The tools (or the prompts) of every service under the names clients see, kept incrementally: replacing one
 * service's items costs in proportion to those items (and to the few entries of other services that share their
 * names), never to the size of the catalog.
 *
 * Each item claims a candidate name (naming.ts: its rename, or its name, prefixed by `prefixMode`). The first
 * claimant in a fixed order — services alphabetically, then each upstream's own order — holds the candidate; every
 * later one gets a hashed name and is reported as a collision. So nothing disappears and no outcome depends on
 * which upstream connected first.
 */

export interface NamedItem {
  name: string
  description?: string
  [key: string]: unknown
}

export interface NamedEntry<T> {
  /** The name clients see. */
  readonly name: string
  readonly service: string
  /** The upstream's own name. */
  readonly originalName: string
  /** What clients are shown: the upstream's definition under the exposed name (and description override). */
  readonly definition: T
}

/** What one service contributes. */
export interface NamedSource<T> {
  items: readonly T[]
  filter?: NameFilter | undefined
  /** Changes whenever any item changes (the listing's digest for this kind). */
  digest: string
}

/** One item of one service, as the index holds it. */
class Claim<T extends NamedItem> implements NamedEntry<T> {
  /** '' while it holds no name. */
  name = ''
  candidate = ''
  definition: T
  /** The definition as JSON, made on first use (a page of a list is these joined). */
  #json: string | undefined
  hash: MemberHash | undefined

  constructor (
    readonly service: string,
    readonly originalName: string,
    /** Its position in the upstream's list: the tie-breaker within a service. */
    readonly order: number,
    readonly item: T,
    readonly rename: string | undefined,
    readonly description: string | undefined,
    readonly digest: string
  ) {
    this.definition = item
  }

  get json (): string {
    this.#json ??= JSON.stringify(this.definition)
    return this.#json
  }

  named (name: string): void {
    this.name = name
    this.definition = { ...this.item, name, ...(this.description !== undefined ? { description: this.description } : {}) }
    this.#json = undefined
    this.hash = memberHash(name + '\0' + this.service + '\0' + this.originalName + '\0' + this.digest + '\0' + (this.description ?? ''))
  }
}

/** Claim order: services alphabetically, then the upstream's own order. */
function before<T extends NamedItem> (a: Claim<T>, b: Claim<T>): boolean {
  return a.service < b.service || (a.service === b.service && a.order < b.order)
}

export class NamedIndex<T extends NamedItem> {
  readonly digest = new SetDigest()
  readonly #byService = new Map<string, Array<Claim<T>>>()
  /** Candidate name → its claimants, in claim order. */
  readonly #claims = new Map<string, Array<Claim<T>>>()
  /** Exposed name → the claim that holds it. */
  readonly #exposed = new Map<string, Claim<T>>()
  readonly #sorted = new SortedMap<string, Claim<T>>()
  /** Candidates with more than one claimant. */
  readonly #collided = new Set<string>()
  /** For "conditional" prefixes: an upstream name (not renamed) → how many items of each service carry it. */
  readonly #originals = new Map<string, Map<string, number>>()
  readonly #byOriginal = new Map<string, Set<Claim<T>>>()

  constructor (private readonly naming: NamingOptions, private readonly hidden: (item: T) => boolean = () => false) {}

  get size (): number {
    return this.#exposed.size
  }

  get (name: string): NamedEntry<T> | undefined {
    return this.#exposed.get(name)
  }

  /** The name clients see for a service's item (by its upstream name); undefined when it holds none. Scans the service. */
  nameOf (service: string, originalName: string): string | undefined {
    const claim = this.#byService.get(service)?.find(c => c.originalName === originalName)
    return claim === undefined || claim.name === '' ? undefined : claim.name
  }

  /** Up to `size` entries in name order, after `after` (exclusive), that `visible` lets through; `more` when others follow. */
  page (after: string | undefined, size: number, visible?: (key: string) => boolean): { entries: Array<NamedEntry<T> & { json: string }>, more: boolean } {
    return pageAfter(this.#sorted, after, size, visible)
  }

  /** Every entry in name order. */
  * all (): IterableIterator<NamedEntry<T>> {
    for (const [, claim] of this.#sorted.entries()) yield claim
  }

  collisions (): Collision[] {
    const collisions: Collision[] = []
    for (const candidate of [...this.#collided].sort()) {
      const [kept, ...renamed] = this.#claims.get(candidate) as Array<Claim<T>>
      for (const claim of renamed) {
        collisions.push({
          name: candidate,
          kept: { service: (kept as Claim<T>).service, original: (kept as Claim<T>).originalName },
          renamed: { service: claim.service, original: claim.originalName, name: claim.name }
        })
      }
    }
    return collisions
  }

  /** Replaces what `service` contributes (undefined: nothing); returns how many of its items collided. */
  replace (service: string, source: NamedSource<T> | undefined): number {
    const affected = new Set<string>()
    const reshared = new Set<string>()
    for (const claim of this.#byService.get(service) ?? []) {
      this.#unclaim(claim, affected)
      if (claim.rename === undefined) this.#countOriginal(claim, -1, reshared)
    }
    this.#byService.delete(service)
    const claims = source === undefined ? [] : this.#claimsOf(service, source)
    for (const claim of claims) if (claim.rename === undefined) this.#countOriginal(claim, 1, reshared)
    if (claims.length > 0) this.#byService.set(service, claims)
    for (const claim of claims) {
      claim.candidate = this.#candidate(claim)
      this.#claim(claim, affected)
    }
    // "conditional": a name that became shared (or stopped being) changes the names of every service carrying it.
    for (const original of reshared) {
      for (const claim of this.#byOriginal.get(original) ?? []) {
        const candidate = this.#candidate(claim)
        if (candidate === claim.candidate) continue
        this.#unclaim(claim, affected)
        claim.candidate = candidate
        this.#claim(claim, affected)
      }
    }
    for (const candidate of affected) this.#resolve(candidate)
    let collided = 0
    for (const claim of claims) if (claim.name !== claim.candidate) collided++
    return collided
  }

  #claimsOf (service: string, source: NamedSource<T>): Array<Claim<T>> {
    const { filter } = source
    const allow = filter?.allow !== undefined ? globMatcher(filter.allow) : undefined
    const deny = filter?.deny !== undefined ? globMatcher(filter.deny) : undefined
    const claims: Array<Claim<T>> = []
    source.items.forEach((item, order) => {
      if (allow !== undefined && !allow(item.name)) return
      if (deny?.(item.name) === true || this.hidden(item)) return
      claims.push(new Claim(service, item.name, order, item, filter?.rename?.[item.name], filter?.descriptions?.[item.name], source.digest))
    })
    return claims
  }

  #candidate (claim: Claim<T>): string {
    const { prefixMode, separator } = this.naming
    const prefixed = prefixMode === 'always' || (prefixMode === 'conditional' && (this.#originals.get(claim.originalName)?.size ?? 0) > 1)
    return candidateName(claim.service, claim.originalName, claim.rename, prefixed, separator)
  }

  /** Counts an item under its upstream name; a name whose number of services crosses one is `reshared`. */
  #countOriginal (claim: Claim<T>, delta: 1 | -1, reshared: Set<string>): void {
    const original = claim.originalName
    let services = this.#originals.get(original)
    if (services === undefined) this.#originals.set(original, services = new Map())
    const before = services.size
    const count = (services.get(claim.service) ?? 0) + delta
    if (count > 0) services.set(claim.service, count)
    else services.delete(claim.service)
    if (services.size === 0) this.#originals.delete(original)
    if ((before > 1) !== (services.size > 1)) reshared.add(original)
    let carriers = this.#byOriginal.get(original)
    if (delta === 1) {
      if (carriers === undefined) this.#byOriginal.set(original, carriers = new Set())
      carriers.add(claim)
    } else {
      carriers?.delete(claim)
      if (carriers?.size === 0) this.#byOriginal.delete(original)
    }
  }

  #claim (claim: Claim<T>, affected: Set<string>): void {
    let claimants = this.#claims.get(claim.candidate)
    if (claimants === undefined) this.#claims.set(claim.candidate, claimants = [])
    let at = claimants.length
    while (at > 0 && before(claim, claimants[at - 1] as Claim<T>)) at--
    claimants.splice(at, 0, claim)
    affected.add(claim.candidate)
  }

  #unclaim (claim: Claim<T>, affected: Set<string>): void {
    const claimants = this.#claims.get(claim.candidate)
    if (claimants !== undefined) {
      claimants.splice(claimants.indexOf(claim), 1)
      if (claimants.length === 0) this.#claims.delete(claim.candidate)
    }
    affected.add(claim.candidate)
    this.#unname(claim)
  }

  /** Gives every claimant of `candidate` its name: the first the candidate, the others a hashed one. */
  #resolve (candidate: string): void {
    const claimants = this.#claims.get(candidate)
    if (claimants === undefined || claimants.length < 2) this.#collided.delete(candidate)
    else this.#collided.add(candidate)
    if (claimants === undefined) return
    const wanted = claimants.map((claim, i) => i === 0 ? candidate : collisionName(candidate, nameIdentity(claim.service, claim.originalName)))
    claimants.forEach((claim, i) => { if (claim.name !== wanted[i]) this.#unname(claim) })
    claimants.forEach((claim, i) => { if (claim.name === '') this.#name(claim, wanted[i] as string, i === 0) })
  }

  /**
   * Gives a claim its name. A candidate's first claimant takes it even from a hashed name that happens to equal it
   * (that holder takes its next attempt); a hashed name that is taken takes its next attempt.
   */
  #name (claim: Claim<T>, wanted: string, primary: boolean): void {
    let name = wanted
    const identity = nameIdentity(claim.service, claim.originalName)
    for (let attempt = 2; ; attempt++) {
      const holder = this.#exposed.get(name)
      if (holder === undefined) break
      if (primary && holder.name !== holder.candidate) {
        this.#unname(holder)
        this.#name(holder, collisionName(holder.candidate, nameIdentity(holder.service, holder.originalName), attempt), false)
        break
      }
      name = collisionName(claim.candidate, identity, attempt)
    }
    claim.named(name)
    this.#exposed.set(name, claim)
    this.#sorted.set(name, claim)
    this.digest.add(claim.hash as MemberHash)
  }

  #unname (claim: Claim<T>): void {
    if (claim.name === '') return
    if (this.#exposed.get(claim.name) === claim) {
      this.#exposed.delete(claim.name)
      this.#sorted.delete(claim.name)
      this.digest.remove(claim.hash as MemberHash)
    }
    claim.name = ''
  }
}
