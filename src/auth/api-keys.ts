import { createHash, timingSafeEqual } from 'node:crypto'
import type { ApiKeyDefinition } from '../config/types.js'
import type { Principal } from '../client-context.js'

/**
 * The configured client API keys. A presented key is hashed and compared with every configured digest in constant
 * time, without stopping at a match: how long the check takes says nothing about which key, or how much of one,
 * was right.
 */
export class ApiKeys {
  readonly #keys: ReadonlyArray<{ digest: Buffer, principal: Principal }>

  constructor (keys: readonly ApiKeyDefinition[]) {
    this.#keys = keys.map(key => ({
      digest: Buffer.from(key.digest, 'hex'),
      principal: Object.freeze({ kind: 'api-key', id: key.name, roles: Object.freeze([...key.roles]), scopes: Object.freeze([]) })
    }))
  }

  get size (): number {
    return this.#keys.length
  }

  /** The principal of the key, or undefined when no configured key is this one. */
  match (presented: string): Principal | undefined {
    const digest = createHash('sha256').update(presented).digest()
    let found: Principal | undefined
    for (const key of this.#keys) {
      if (timingSafeEqual(digest, key.digest)) found = key.principal
    }
    return found
  }
}
