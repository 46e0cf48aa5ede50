/**
 * An order-independent digest of a set of strings, kept up to date one member at a time: the XOR of a 64-bit hash
 * (two FNV-1a halves) of each member, and the count. Adding and removing cost the length of the member, never the
 * size of the set, so a catalog can tell whether a list changed without comparing the whole of it.
 */

export type MemberHash = readonly [number, number]

export function memberHash (text: string): MemberHash {
  let a = 0x811c9dc5
  let b = 0x01000193 ^ text.length
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 13)
  }
  return [a >>> 0, b >>> 0]
}

export class SetDigest {
  #hi = 0
  #lo = 0
  #count = 0

  add (hash: MemberHash): void {
    this.#hi ^= hash[0]
    this.#lo ^= hash[1]
    this.#count++
  }

  remove (hash: MemberHash): void {
    this.#hi ^= hash[0]
    this.#lo ^= hash[1]
    this.#count--
  }

  get value (): string {
    return this.#count + ':' + (this.#hi >>> 0).toString(36) + ':' + (this.#lo >>> 0).toString(36)
  }
}
