/**
 * What this process heard that makes cached resource reads stale, as marks: the time of the last invalidation of a
 * URI (resources/updated) or of a whole service (list_changed, a reconnect that may have missed updates). An entry
 * is valid only when its lookup ran after every mark that concerns it, so nothing has to find and delete entries
 * (their keys are hashes of scopes nobody keeps a list of). The floor starts at the process's start: entries a file
 * layer kept from before were stored when updates could not be heard. Marks are bounded: past MAX_MARKS the floor
 * rises to now and they start over (every resource entry is stale once, instead of memory growing with URIs).
 */

const MAX_MARKS = 10_000

export class Invalidations {
  #floor: number
  readonly #marks = new Map<string, number>()

  constructor (now = Date.now()) {
    this.#floor = now
  }

  mark (name: string, at = Date.now()): void {
    if (this.#marks.size >= MAX_MARKS && !this.#marks.has(name)) {
      this.#marks.clear()
      this.#floor = at
      return
    }
    this.#marks.set(name, at)
  }

  /** Whether an entry whose lookup ran at `storedAt` is still good under `names`. */
  valid (storedAt: number, names: readonly string[]): boolean {
    if (storedAt <= this.#floor) return false
    for (const name of names) {
      const at = this.#marks.get(name)
      if (at !== undefined && storedAt <= at) return false
    }
    return true
  }
}
