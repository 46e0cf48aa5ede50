import btree from 'sorted-btree'

/**
 * The B+ tree the catalog keeps its sorted lists in (sorted-btree): inserts, deletes and "the next key after" in
 * O(log n), so a page of a 10,000-entry list costs the page, and one upstream's change costs its own entries. The
 * package is CommonJS with `exports.default`; this is the one place that knows.
 */
export const SortedMap = btree.default

/**
 * Up to `size` values in key order, after the key `after` (exclusive), that `visible` lets through (all without
 * it); `more` when others follow. Hidden values are skipped, not counted, so a caller who sees a few of many
 * entries still gets full pages, and a cursor (the last key of a page) stays valid for it.
 */
export function pageAfter<V> (
  sorted: InstanceType<typeof SortedMap<string, V>>, after: string | undefined, size: number, visible?: (key: string) => boolean
): { entries: V[], more: boolean } {
  const entries: V[] = []
  const from = after === undefined ? undefined : sorted.nextHigherKey(after)
  if (after !== undefined && from === undefined) return { entries, more: false }
  for (const [key, value] of sorted.entries(from)) {
    if (visible !== undefined && !visible(key)) continue
    if (entries.length === size) return { entries, more: true }
    entries.push(value)
  }
  return { entries, more: false }
}
