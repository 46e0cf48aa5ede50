/**
 * What this process heard that makes its cached resource reads stale, as marks: an invalidation of a URI
 * (resources/updated) or of a whole service (list_changed, a reconnect that may have missed updates). Marks and
 * lookups are ordered by one counter, not a clock, so a read looked up after a mark is good even within the same
 * millisecond, and one looked up before is stale: nothing has to find and delete entries (their keys are hashes of
 * scopes nobody keeps a list of). Marks are bounded: past MAX_MARKS the floor rises and they start over (every
 * resource entry is stale once, instead of memory growing with URIs).
 */

const MAX_MARKS = 10_000

export class Invalidations {
  #sequence = 0
  #floor = 0
  readonly #marks = new Map<string, number>()

  /** What a lookup records now, to be judged by later. */
  get now (): number {
    return this.#sequence
  }

  mark (name: string): void {
    const at = ++this.#sequence
    if (this.#marks.size >= MAX_MARKS && !this.#marks.has(name)) {
      this.#marks.clear()
      this.#floor = at
      return
    }
    this.#marks.set(name, at)
  }

  /** Whether an entry whose lookup recorded `lookedUp` is still good under `names`. */
  valid (lookedUp: number, names: readonly string[]): boolean {
    if (lookedUp < this.#floor) return false
    for (const name of names) {
      const at = this.#marks.get(name)
      if (at !== undefined && lookedUp < at) return false
    }
    return true
  }
}
