import { LRUCache } from 'lru-cache'

/**
 * The first layer: results in this process, lru-cache bounded by what they add up to (`cache.maxBytes`), each with
 * its rule's TTL. Its entries are the gateway's own, so they are served without a check.
 */

export interface MemoryEntry {
  readonly text: string
  /** When the lookup before it ran (Invalidations.now): resource entries are stale after a later invalidation. */
  readonly lookedUp: number
}

export class MemoryLayer {
  readonly #lru: LRUCache<string, MemoryEntry>

  constructor (readonly maxBytes: number) {
    this.#lru = new LRUCache<string, MemoryEntry>({
      maxSize: maxBytes,
      // A JavaScript string's length, in UTF-16 units: close enough to bytes for a bound, and free to compute.
      sizeCalculation: (value, key) => value.text.length + key.length,
      ttlAutopurge: false
    })
  }

  get (key: string): MemoryEntry | undefined {
    return this.#lru.get(key)
  }

  /** Keeps it for `ttlMs`; false when it is too big to keep at all. */
  set (key: string, entry: MemoryEntry, ttlMs: number): boolean {
    if (entry.text.length + key.length > this.maxBytes || ttlMs <= 0) return false
    this.#lru.set(key, entry, { ttl: ttlMs })
    return true
  }

  delete (key: string): void {
    this.#lru.delete(key)
  }

  get entries (): number {
    return this.#lru.size
  }

  get bytes (): number {
    return this.#lru.calculatedSize
  }

  clear (): void {
    this.#lru.clear()
  }
}
