import { memberHash, type MemberHash, SetDigest } from './set-digest.js'
import { pageAfter, SortedMap } from './sorted-map.js'

/**
 * The resources (or the resource templates) of every service under their own URIs, kept incrementally: replacing
 * one service's items costs in proportion to those items. A URI two services list belongs to the first service in
 * alphabetical order; the other is reported as a collision (and becomes the owner if the first goes away).
 */

export interface UriEntry<T> {
  /** The URI (or URI template). */
  readonly key: string
  readonly service: string
  readonly definition: T
}

export interface UriCollision {
  uri: string
  kept: string
  dropped: string
}

/** Told whenever the owner of a key changes (what the resource router indexes). */
export type OwnerListener<T> = (key: string, owner: UriEntry<T> | undefined, previous: UriEntry<T> | undefined) => void

class UriClaim<T> implements UriEntry<T> {
  readonly hash: MemberHash
  #json: string | undefined

  constructor (readonly key: string, readonly service: string, readonly definition: T, digest: string) {
    this.hash = memberHash(key + '\0' + service + '\0' + digest)
  }

  get json (): string {
    this.#json ??= JSON.stringify(this.definition)
    return this.#json
  }
}

export class UriIndex<T> {
  readonly digest = new SetDigest()
  readonly #byService = new Map<string, Array<UriClaim<T>>>()
  /** Key → its claimants, one per service, alphabetically. */
  readonly #claims = new Map<string, Array<UriClaim<T>>>()
  /** Key → its owner, in key order. */
  readonly #sorted = new SortedMap<string, UriClaim<T>>()
  readonly #collided = new Set<string>()

  constructor (private readonly keyOf: (item: T) => string, private readonly listener?: OwnerListener<T>) {}

  get size (): number {
    return this.#sorted.size
  }

  owner (key: string): UriEntry<T> | undefined {
    return this.#sorted.get(key)
  }

  /** Up to `size` entries in key order, after `after` (exclusive), that `visible` lets through; `more` when others follow. */
  page (after: string | undefined, size: number, visible?: (key: string) => boolean): { entries: Array<UriEntry<T> & { json: string }>, more: boolean } {
    return pageAfter(this.#sorted, after, size, visible)
  }

  collisions (): UriCollision[] {
    const collisions: UriCollision[] = []
    for (const key of [...this.#collided].sort()) {
      const [kept, ...dropped] = this.#claims.get(key) as Array<UriClaim<T>>
      for (const claim of dropped) collisions.push({ uri: key, kept: (kept as UriClaim<T>).service, dropped: claim.service })
    }
    return collisions
  }

  /** Replaces what `service` contributes (undefined: nothing). */
  replace (service: string, items: readonly T[] | undefined, digest: string): void {
    const affected = new Set<string>()
    for (const claim of this.#byService.get(service) ?? []) {
      const claimants = this.#claims.get(claim.key) as Array<UriClaim<T>>
      claimants.splice(claimants.indexOf(claim), 1)
      if (claimants.length === 0) this.#claims.delete(claim.key)
      affected.add(claim.key)
    }
    this.#byService.delete(service)
    const claims: Array<UriClaim<T>> = []
    for (const item of items ?? []) {
      const key = this.keyOf(item)
      let claimants = this.#claims.get(key)
      if (claimants === undefined) this.#claims.set(key, claimants = [])
      // A service listing a URI twice keeps its first entry.
      if (claimants.some(c => c.service === service)) continue
      const claim = new UriClaim(key, service, item, digest)
      let at = claimants.length
      while (at > 0 && service < (claimants[at - 1] as UriClaim<T>).service) at--
      claimants.splice(at, 0, claim)
      claims.push(claim)
      affected.add(key)
    }
    if (claims.length > 0) this.#byService.set(service, claims)
    for (const key of affected) this.#resolve(key)
  }

  #resolve (key: string): void {
    const claimants = this.#claims.get(key)
    if (claimants !== undefined && claimants.length > 1) this.#collided.add(key)
    else this.#collided.delete(key)
    const owner = claimants?.[0]
    const previous = this.#sorted.get(key)
    if (owner === previous) return
    if (previous !== undefined) this.digest.remove(previous.hash)
    if (owner === undefined) this.#sorted.delete(key)
    else {
      this.#sorted.set(key, owner)
      this.digest.add(owner.hash)
    }
    this.listener?.(key, owner, previous)
  }
}
