import { test } from 'tap'
import { decodeEntry, encodeEntry, resultOf } from '../../../src/result-cache/entry.js'
import { Invalidations } from '../../../src/result-cache/invalidations.js'

/** What the Redis and file layers keep, read back as untrusted text; and the marks that make resource entries stale. */

test('an entry reads back as written; anything else is not an entry', async (t) => {
  const entry = { text: '{"contents":[]}', expiresAt: 1_700_000_060_000, storedAt: 1_700_000_000_000 }
  t.same(decodeEntry(encodeEntry(entry)), entry)
  t.same(decodeEntry('x\n' + encodeEntry(entry), 2), entry, 'from an offset')
  for (const raw of ['', '{"a":1}', '12 x\n{}', '1e3 5\n{}', '-1 5\n{}', '12345678901234567 1\n{}']) t.equal(decodeEntry(raw), undefined, JSON.stringify(raw))
})

test('only one JSON object is a result to answer with', async (t) => {
  t.same(resultOf('{"content":[{"type":"text","text":"hi"}]}')?.value, { content: [{ type: 'text', text: 'hi' }] })
  for (const text of ['', '[]', 'null', '"x"', '{"a":tru}', '{"a":1}{"b":2}', '{"a":1', ' {"a":1}', '{"a":1},"id":2', '['.repeat(200) + ']'.repeat(200)]) {
    t.equal(resultOf(text), undefined, JSON.stringify(text.slice(0, 30)))
  }
  t.equal(resultOf('{"a":' + '['.repeat(500) + ']'.repeat(500) + '}'), undefined, 'nested deeper than the gateway reads')
})

test('marks: an entry is valid only when its lookup came after every mark that concerns it', async (t) => {
  const marks = new Invalidations()
  const first = marks.now
  t.ok(marks.valid(first, ['a']))
  marks.mark('a')
  t.notOk(marks.valid(first, ['a', 'b']), 'looked up before a mark of its own')
  t.ok(marks.valid(first, ['b']), 'another URI\'s mark is not its business')
  t.ok(marks.valid(marks.now, ['a']), 'looked up right after it: good, however soon')
  const second = marks.now
  for (let i = 0; i < 10_000; i++) marks.mark(`m${i}`)
  t.notOk(marks.valid(second, ['b']), 'too many marks: the floor rose, everything before is stale')
  t.ok(marks.valid(marks.now, ['a', 'm9999']))
})
