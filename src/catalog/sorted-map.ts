import btree from 'sorted-btree'

/**
 * The B+ tree the catalog keeps its sorted lists in (sorted-btree): inserts, deletes and "the next key after" in
 * O(log n), so a page of a 10,000-entry list costs the page, and one upstream's change costs its own entries. The
 * package is CommonJS with `exports.default`; this is the one place that knows.
 */
export const SortedMap = btree.default
