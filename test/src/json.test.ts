import { test } from 'tap'
import { deeperThan, JsonTooDeepError, parseJson } from '../../src/json.js'

test('deeperThan counts the nesting of arrays and objects, not brackets inside strings', async (t) => {
  t.equal(deeperThan('[[[]]]', 3), false, 'exactly the limit')
  t.equal(deeperThan('[[[[]]]]', 3), true, 'one level more')
  t.equal(deeperThan('{"a":{"b":[1]}}', 3), false)
  t.equal(deeperThan('{"a":{"b":[[1]]}}', 3), true)
  t.equal(deeperThan('["[[[[[[[[", "\\"[[[[[["]', 2), false, 'brackets in strings, escaped quotes included, do not count')
  t.equal(deeperThan('[]', 0), true, 'a limit of 0 allows only scalars')
  t.equal(deeperThan('1', 0), false)
  t.equal(deeperThan('[1]', 8), false, 'text shorter than the limit cannot nest deeper')
})

test('parseJson returns the value, or throws JsonTooDeepError with the value read', async (t) => {
  t.same(parseJson('{"id":1,"x":[[1]]}', 3), { id: 1, x: [[1]] })
  const err = t.throws(() => parseJson('{"id":7,"x":[[[1]]]}', 3)) as JsonTooDeepError
  t.ok(err instanceof JsonTooDeepError)
  t.same((err.value as { id: number }).id, 7, 'the id of the refused message is known')
  t.throws(() => parseJson('{"id":', 3), SyntaxError)
})
