import { test } from 'tap'
import { decodeCursor, encodeCursor } from '../../src/cursor.js'

test('a cursor round-trips its key and is URL-safe', async (t) => {
  for (const last of ['github__search', '', 'with\nnewline', 'ünïcødé 🙂', 'a/b+c=d']) {
    const cursor = encodeCursor('tools/list', last)
    t.match(cursor, /^[A-Za-z0-9_-]+$/, 'base64url without padding')
    t.equal(decodeCursor('tools/list', cursor), last)
  }
})

test('a cursor from one list is refused by another', async (t) => {
  const cursor = encodeCursor('tools/list', 'x')
  t.throws(() => decodeCursor('prompts/list', cursor), {
    code: 'MCPGW_ERR_INVALID_CURSOR',
    statusCode: 400,
    message: `Invalid cursor: ${JSON.stringify(cursor)} was not issued for prompts/list`
  })
  t.throws(() => decodeCursor('tools', encodeCursor('tools/list', 'x')), { code: 'MCPGW_ERR_INVALID_CURSOR' },
    'a list whose name is a prefix of another is still another list')
})

test('cursors the gateway did not issue are refused with MCPGW_ERR_INVALID_CURSOR', async (t) => {
  const bad: unknown[] = ['', 'not a cursor!', 'abc=', 'abc+/', 'Zm9v', 42, null, {}, ['x'], true, 'A'.repeat(16 * 1024 + 1)]
  for (const cursor of bad) {
    t.throws(() => decodeCursor('tools/list', cursor), { code: 'MCPGW_ERR_INVALID_CURSOR' }, `refuses ${JSON.stringify(cursor).slice(0, 40)}`)
  }
  t.throws(() => decodeCursor('tools/list', 42), { message: 'Invalid cursor: 42 is not a cursor this gateway issued' })
  t.throws(() => decodeCursor('tools/list', ''), { message: 'Invalid cursor: "" is not a cursor this gateway issued' })
  t.throws(() => decodeCursor('tools/list', 'Zm9v'), { message: 'Invalid cursor: "Zm9v" was not issued for tools/list' },
    'valid base64url ("foo") without a list name')
})
