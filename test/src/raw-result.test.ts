import { test } from 'tap'
import { RawResult, resultValue } from '../../src/raw-result.js'

/** Forwarding a result by swapping its id in the text, for the layouts real servers write. */

const result = { content: [{ type: 'text', text: 'a "quoted" \\ text, "id":3 inside' }], structuredContent: { id: 9, list: [1, 2] } }

test('the TypeScript SDK layout (result first) is recognised and re-addressed', async (t) => {
  const text = JSON.stringify({ result, jsonrpc: '2.0', id: 17 })
  const matched = RawResult.match(text)
  t.equal(matched?.id, 17)
  t.same(JSON.parse(matched?.result.resultText as string), result, 'the result text is exactly the result')
  t.same(JSON.parse(matched?.result.withId('client-1') as string), { jsonrpc: '2.0', id: 'client-1', result })
  t.same(JSON.parse(matched?.result.withId(5) as string), { jsonrpc: '2.0', id: 5, result })
  t.same(matched?.result.value, result)
  t.equal(matched?.result.text, text)
})

test('the id-first layout (Python, Go, hand-written servers) is recognised too, with trailing whitespace', async (t) => {
  const text = JSON.stringify({ jsonrpc: '2.0', id: 4, result }) + '\n'
  const matched = RawResult.match(text)
  t.equal(matched?.id, 4)
  t.same(JSON.parse(matched?.result.withId('x') as string), { jsonrpc: '2.0', id: 'x', result })
})

test('everything else is left to the parser', async (t) => {
  const cases = {
    error: JSON.stringify({ jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'no' } }),
    'error, result-first key order': JSON.stringify({ error: { code: 1, message: 'x' }, jsonrpc: '2.0', id: 1 }),
    'string id': JSON.stringify({ result: {}, jsonrpc: '2.0', id: 'abc' }),
    'other key order': JSON.stringify({ id: 1, jsonrpc: '2.0', result: {} }),
    notification: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } }),
    request: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
    'pretty-printed': JSON.stringify({ result: {}, jsonrpc: '2.0', id: 1 }, null, 2),
    'cut short': '{"jsonrpc":"2.0","id":1,"result":{"a":1'
  }
  for (const [name, text] of Object.entries(cases)) t.equal(RawResult.match(text), undefined, name)
})

test('isToolError is only true for a real isError key', async (t) => {
  const failed = RawResult.match(JSON.stringify({ result: { content: [], isError: true }, jsonrpc: '2.0', id: 1 }))
  t.equal(failed?.result.isToolError, true)
  const quoted = RawResult.match(JSON.stringify({ result: { content: [{ type: 'text', text: '"isError":true' }] }, jsonrpc: '2.0', id: 1 }))
  t.equal(quoted?.result.isToolError, false, 'the text inside a string is escaped, so it cannot be mistaken for the key')
  const nested = RawResult.match(JSON.stringify({ result: { content: [], structuredContent: { isError: true } }, jsonrpc: '2.0', id: 1 }))
  t.equal(nested?.result.isToolError, false, 'a nested isError is not the result\'s own')
  const fine = RawResult.match(JSON.stringify({ result: { content: [], isError: false }, jsonrpc: '2.0', id: 1 }))
  t.equal(fine?.result.isToolError, false)
})

test('resultValue unwraps raw results and passes plain values through', async (t) => {
  t.same(resultValue(RawResult.match('{"result":{"a":1},"jsonrpc":"2.0","id":1}')?.result), { a: 1 })
  t.same(resultValue({ b: 2 }), { b: 2 })
  t.equal(resultValue(undefined), undefined)
})

test('regression: only one well-formed value passes through as text; anything else is parsed, where it fails', async (t) => {
  const passes = [
    '{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"a \\"quoted\\" } ] brace"}]}}',
    '{"jsonrpc":"2.0","id":7,"result":[1,2,{"a":[]}] }\n',
    '{"jsonrpc":"2.0","id":7,"result":"just a string"}',
    '{"jsonrpc":"2.0","id":7,"result":42}',
    '{"result":{"a":"b"},"jsonrpc":"2.0","id":7}'
  ]
  for (const text of passes) t.ok(RawResult.match(text), `passes: ${text.slice(0, 60)}`)
  const refused = [
    '{"jsonrpc":"2.0","id":7,"result":}',
    '{"jsonrpc":"2.0","id":7,"result":{"content":[]},"id":4242,"error":{"code":1,"message":"x"}}',
    '{"jsonrpc":"2.0","id":7,"result":{"a":1}}}',
    '{"jsonrpc":"2.0","id":7,"result":{"a":[1,2}]}',
    '{"jsonrpc":"2.0","id":7,"result":{"a":"unterminated}',
    '{"result":{"a":"b"},"id":4242,"jsonrpc":"2.0","id":7}',
    '{"jsonrpc":"2.0","id":7,"result":' + '['.repeat(200) + ']'.repeat(200) + '}'
  ]
  for (const text of refused) t.equal(RawResult.match(text), undefined, `refused: ${text.slice(0, 70)}`)
  t.ok(RawResult.match('{"jsonrpc":"2.0","id":7,"result":' + '['.repeat(200) + ']'.repeat(200) + '}', 256), 'the depth limit is the one given')
})
