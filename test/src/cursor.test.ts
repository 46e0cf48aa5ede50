import { test } from 'tap'
import { decodeCursor, encodeCursor, paginate } from '../../src/cursor.js'

const key = (s: string) => s
const letters = (text: string) => text.split('')

/** Walks every page of `entries` and returns them, plus the number of pages. */
function walk (entries: readonly string[], pageSize: number) {
  const seen: string[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const { page, nextCursor } = paginate('tools/list', entries, key, cursor, pageSize)
    seen.push(...page)
    pages++
    cursor = nextCursor
  } while (cursor !== undefined && pages < 100)
  return { seen, pages }
}

test('a cursor round-trips its key and is URL-safe', async (t) => {
  for (const last of ['github__search', '', 'with\nnewline', 'ünïcødé 🙂', 'a/b+c=d']) {
    const cursor = encodeCursor('tools/list', last)
    t.match(cursor, /^[A-Za-z0-9_-]+$/, 'base64url without padding')
    t.equal(decodeCursor('tools/list', cursor), last)
  }
})

test('a list that fits in one page has no nextCursor', async (t) => {
  const result = paginate('tools/list', letters('abc'), key, undefined, 3)
  t.same(result, { page: ['a', 'b', 'c'] })
  t.notOk('nextCursor' in result, 'nextCursor is absent, not undefined')
  t.same(paginate('tools/list', [], key, undefined, 10), { page: [] })
})

test('pages follow each other without gaps or repeats, and the last one has no nextCursor', async (t) => {
  const entries = letters('abcdefg')
  const first = paginate('tools/list', entries, key, undefined, 3)
  t.same(first.page, ['a', 'b', 'c'])
  t.equal(first.nextCursor, encodeCursor('tools/list', 'c'), 'the cursor names the last entry of the page')
  const second = paginate('tools/list', entries, key, first.nextCursor, 3)
  t.same(second.page, ['d', 'e', 'f'])
  t.type(second.nextCursor, 'string')
  const third = paginate('tools/list', entries, key, second.nextCursor, 3)
  t.same(third, { page: ['g'] })
})

test('a list that is an exact multiple of the page size ends without an empty page', async (t) => {
  const entries = letters('abcdef')
  const first = paginate('tools/list', entries, key, undefined, 3)
  const second = paginate('tools/list', entries, key, first.nextCursor, 3)
  t.same(second, { page: ['d', 'e', 'f'] })
  t.same(walk(entries, 3), { seen: entries, pages: 2 })
  t.same(walk(entries, 1), { seen: entries, pages: 6 })
  t.same(walk(entries, 100), { seen: entries, pages: 1 })
})

test('keyOf decides the order, not the entry itself', async (t) => {
  const entries = [{ name: 'a' }, { name: 'b' }, { name: 'c' }]
  const first = paginate('prompts/list', entries, e => e.name, undefined, 2)
  t.same(first.page, [{ name: 'a' }, { name: 'b' }])
  const second = paginate('prompts/list', entries, e => e.name, first.nextCursor, 2)
  t.same(second, { page: [{ name: 'c' }] })
})

test('entries added or removed between pages do not shift the next page', async (t) => {
  const first = paginate('tools/list', letters('bdfhj'), key, undefined, 2)
  t.same(first.page, ['b', 'd'])

  t.same(paginate('tools/list', letters('abcdfhj'), key, first.nextCursor, 2).page, ['f', 'h'],
    'entries added before the cursor are not repeated or shown')
  t.same(paginate('tools/list', letters('bdefhj'), key, first.nextCursor, 2).page, ['e', 'f'],
    'an entry added after the cursor is shown')
  t.same(paginate('tools/list', letters('bfhj'), key, first.nextCursor, 2).page, ['f', 'h'],
    'the entry the cursor names may itself be gone')
  t.same(paginate('tools/list', letters('hj'), key, first.nextCursor, 2), { page: ['h', 'j'] },
    'earlier entries removed')
  t.same(paginate('tools/list', letters('abcd'), key, first.nextCursor, 2), { page: [] },
    'nothing left after the cursor')
})

test('a cursor from one list is refused by another', async (t) => {
  const cursor = encodeCursor('tools/list', 'x')
  t.throws(() => decodeCursor('prompts/list', cursor), {
    code: 'MCPGW_ERR_INVALID_CURSOR',
    statusCode: 400,
    message: `Invalid cursor: ${JSON.stringify(cursor)} was not issued for prompts/list`
  })
  t.throws(() => paginate('resources/list', ['a'], key, cursor, 10), { code: 'MCPGW_ERR_INVALID_CURSOR' })
  t.throws(() => decodeCursor('tools', encodeCursor('tools/list', 'x')), { code: 'MCPGW_ERR_INVALID_CURSOR' },
    'a list whose name is a prefix of another is still another list')
})

test('cursors the gateway did not issue are refused with MCPGW_ERR_INVALID_CURSOR', async (t) => {
  const bad: unknown[] = ['', 'not a cursor!', 'abc=', 'abc+/', 'Zm9v', 42, null, {}, ['x'], true]
  for (const cursor of bad) {
    t.throws(() => decodeCursor('tools/list', cursor), { code: 'MCPGW_ERR_INVALID_CURSOR' }, `refuses ${JSON.stringify(cursor)}`)
    t.throws(() => paginate('tools/list', ['a'], key, cursor, 10), { code: 'MCPGW_ERR_INVALID_CURSOR' })
  }
  t.throws(() => decodeCursor('tools/list', 42), { message: 'Invalid cursor: 42 is not a cursor this gateway issued' })
  t.throws(() => decodeCursor('tools/list', ''), { message: 'Invalid cursor: "" is not a cursor this gateway issued' })
  t.throws(() => decodeCursor('tools/list', 'Zm9v'), { message: 'Invalid cursor: "Zm9v" was not issued for tools/list' },
    'valid base64url ("foo") without a list name')
})

test('an absent cursor starts at the beginning, null does not', async (t) => {
  t.same(paginate('tools/list', ['a', 'b'], key, undefined, 1).page, ['a'])
  t.throws(() => paginate('tools/list', ['a', 'b'], key, null, 1), { code: 'MCPGW_ERR_INVALID_CURSOR' })
})
