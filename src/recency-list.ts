/**
 * Items in least-recently-used order, with O(1) "move to the young end" that allocates nothing and hashes nothing
 * new: a doubly linked list with the node of each item found by identity. (A Map re-inserted on every use gives the
 * same order, but its delete + set per request leaves tombstones that make the table rehash under load.)
 */

interface Node<T> {
  readonly item: T
  older: Node<T> | undefined
  younger: Node<T> | undefined
}

export class RecencyList<T> {
  readonly #nodes = new Map<T, Node<T>>()
  #oldest: Node<T> | undefined
  #youngest: Node<T> | undefined

  /** Adds the item as the youngest, or makes it the youngest if it is in the list. */
  touch (item: T): void {
    const node = this.#nodes.get(item)
    if (node === undefined) {
      const added: Node<T> = { item, older: undefined, younger: undefined }
      this.#nodes.set(item, added)
      this.#link(added)
    } else if (node !== this.#youngest) {
      this.#unlink(node)
      this.#link(node)
    }
  }

  delete (item: T): boolean {
    const node = this.#nodes.get(item)
    if (node === undefined) return false
    this.#nodes.delete(item)
    this.#unlink(node)
    return true
  }

  /** Oldest first; the list must not change while this runs (collect what to change, change it after). */
  * oldestFirst (): IterableIterator<T> {
    for (let node = this.#oldest; node !== undefined; node = node.younger) yield node.item
  }

  #link (node: Node<T>): void {
    node.older = this.#youngest
    node.younger = undefined
    if (this.#youngest === undefined) this.#oldest = node
    else this.#youngest.younger = node
    this.#youngest = node
  }

  #unlink (node: Node<T>): void {
    if (node.older === undefined) this.#oldest = node.younger
    else node.older.younger = node.younger
    if (node.younger === undefined) this.#youngest = node.older
    else node.younger.older = node.older
    node.older = undefined
    node.younger = undefined
  }
}
