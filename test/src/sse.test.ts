import { test } from 'tap'
import { SSE_KEEP_ALIVE, type SseEvent, SseParser, sseMessage } from '../../src/sse.js'

function parser () {
  const events: SseEvent[] = []
  const p = new SseParser(event => events.push(event))
  return { p, events }
}

function parse (...chunks: string[]) {
  const { p, events } = parser()
  for (const chunk of chunks) p.push(chunk)
  return { p, events }
}

test('an event ends at a blank line, with LF line ends', async (t) => {
  const { events } = parse('event: message\ndata: {"a":1}\n\n')
  t.same(events, [{ event: 'message', data: '{"a":1}', id: undefined }])
})

test('CRLF and lone CR line ends work the same', async (t) => {
  t.same(parse('data: crlf\r\n\r\n').events, [{ event: 'message', data: 'crlf', id: undefined }])
  t.same(parse('data: cr\r\rdata: next\r\r', 'data: x\n\n').events.map(e => e.data), ['cr', 'next', 'x'])
  t.same(parse('data: a\r\ndata: b\rdata: c\n\n').events.map(e => e.data), ['a\nb\nc'], 'mixed line ends in one event')
})

test('a CRLF split across chunks is one line end, not two', async (t) => {
  const { events } = parse('data: one\r', '\ndata: two\r', '\n\r', '\n')
  t.same(events, [{ event: 'message', data: 'one\ntwo', id: undefined }],
    'a blank line is not seen between the CR and the LF')
})

test('events split anywhere across chunks are reassembled', async (t) => {
  const stream = 'event: message\r\nid: 7\r\ndata: {"jsonrpc":"2.0"}\r\n\r\nevent: other\ndata: x\n\n'
  const whole = parse(stream).events
  t.equal(whole.length, 2)
  for (let cut = 1; cut < stream.length; cut++) {
    t.same(parse(stream.slice(0, cut), stream.slice(cut)).events, whole, `cut at ${cut}`)
  }
  t.same(parse(...stream.split('')).events, whole, 'one character at a time')
})

test('several data lines join with newlines', async (t) => {
  t.same(parse('data: a\ndata: b\ndata:\ndata: c\n\n').events[0]?.data, 'a\nb\n\nc')
})

test('one leading space is removed from a value, and only one', async (t) => {
  t.same(parse('data:no-space\n\n').events[0]?.data, 'no-space')
  t.same(parse('data:  two spaces\n\n').events[0]?.data, ' two spaces')
  t.same(parse('event:  spaced\ndata: x\n\n').events[0]?.event, ' spaced')
})

test('comments and keep-alives are ignored', async (t) => {
  const { events } = parse(': keep-alive\n\n', ':\n', 'data: a\n: comment inside an event\ndata: b\n\n', SSE_KEEP_ALIVE)
  t.same(events, [{ event: 'message', data: 'a\nb', id: undefined }])
})

test('unknown fields and lines without a colon are ignored', async (t) => {
  const { events } = parse('foo: bar\nnonsense\ndata: x\n\n')
  t.same(events, [{ event: 'message', data: 'x', id: undefined }])
})

test('event names the event type; it defaults to "message" and resets after each event', async (t) => {
  const { events } = parse('event: endpoint\ndata: /messages?id=1\n\ndata: plain\n\n')
  t.same(events.map(e => e.event), ['endpoint', 'message'])
  t.same(parse('event:\ndata: x\n\n').events[0]?.event, 'message', 'an empty event name is "message"')
})

test('an event type set on an event without data does not leak into the next event', async (t) => {
  const { events } = parse('event: ping\n\ndata: x\n\n')
  t.same(events, [{ event: 'message', data: 'x', id: undefined }])
})

test('id is given with its event and kept in lastEventId', async (t) => {
  const { p, events } = parse('id: 1\ndata: a\n\n', 'data: b\n\n')
  t.same(events, [
    { event: 'message', data: 'a', id: '1' },
    { event: 'message', data: 'b', id: undefined }
  ], 'an id belongs to its own event only')
  t.equal(p.lastEventId, '1', 'lastEventId survives events without an id')
  p.push('id: 2\ndata: c\n\n')
  t.equal(p.lastEventId, '2')
})

test('the data-less priming event sets lastEventId without dispatching anything', async (t) => {
  const { p, events } = parse('id: prime-1\ndata: \n\n')
  t.same(events, [])
  t.equal(p.lastEventId, 'prime-1')
  p.push('data: after\n\n')
  t.same(events, [{ event: 'message', data: 'after', id: undefined }], 'the priming id does not stick to the next event')
  t.equal(p.lastEventId, 'prime-1')
})

test('an id with a NUL is ignored and an empty id clears lastEventId', async (t) => {
  const { p, events } = parse('id: 5\ndata: a\n\n', 'id: bad\0id\ndata: b\n\n')
  t.equal(events[1]?.id, undefined)
  t.equal(p.lastEventId, '5')
  p.push('id\ndata: c\n\n')
  t.equal(events[2]?.id, '')
  t.equal(p.lastEventId, '')
})

test('retry is read when it is all digits', async (t) => {
  const { p } = parser()
  t.equal(p.retry, undefined)
  p.push('retry: 3000\n\n')
  t.equal(p.retry, 3000)
  p.push('retry: soon\n\nretry: -5\n\nretry: 1.5\n\nretry:\n\n')
  t.equal(p.retry, 3000, 'invalid values are ignored')
  p.push('retry: 0\n\n')
  t.equal(p.retry, 0)
})

test('nothing is dispatched until the blank line arrives', async (t) => {
  const { p, events } = parse('data: a\n')
  t.same(events, [])
  p.push('\n')
  t.equal(events.length, 1)
})

test('end() dispatches a final event that was not followed by a blank line', async (t) => {
  for (const tail of ['data: last\n', 'data: last']) {
    const { p, events } = parse('id: 9\n', tail)
    t.same(events, [])
    p.end()
    t.same(events, [{ event: 'message', data: 'last', id: '9' }], JSON.stringify(tail))
  }
})

test('end() with nothing pending dispatches nothing', async (t) => {
  const { p, events } = parse('data: a\n\n')
  p.end()
  t.equal(events.length, 1)
  const empty = parser()
  empty.p.end()
  t.same(empty.events, [])
})

test('end() after a trailing CR does not put the CR into the data', async (t) => {
  const { p, events } = parse('data: last\r')
  p.end()
  t.equal(events.length, 1)
  t.equal(events[0]?.data, 'last', 'the CR is a line end')
})

test('a CR-terminated event is dispatched once the CR cannot be the start of a CRLF', async (t) => {
  const { p, events } = parse('data: a\r\r')
  t.equal(events.length, 0, 'a CR at the end of a chunk may be half of a CRLF')
  p.push('data: b\n\n')
  t.same(events.map(e => e.data), ['a', 'b'])
})

test('regression: one 16 MB event costs one pass, not a rescan per chunk', async (t) => {
  const { p, events } = parser()
  const chunk = 'x'.repeat(64 * 1024)
  const started = process.hrtime.bigint()
  p.push('data: ')
  for (let i = 0; i < 256; i++) p.push(chunk)
  p.push('\n\n')
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  t.equal(events[0]?.data.length, 256 * chunk.length)
  t.ok(ms < 5000, `parsed in ${ms.toFixed(0)} ms (the former parser took about 29 s)`)
})

test('an event longer than maxEventLength fails the stream with a protocol error naming the upstream', async (t) => {
  const events: SseEvent[] = []
  const p = new SseParser(event => events.push(event), { maxEventLength: 1000, upstream: 'big' })
  t.throws(() => p.push('data: ' + 'y'.repeat(2000)), { code: 'MCPGW_ERR_UPSTREAM_PROTOCOL', message: /Upstream big .*longer than 1000 characters/ })
  t.same(events, [])
})

test('sseMessage writes one message event, with an optional id', async (t) => {
  t.equal(sseMessage('{"jsonrpc":"2.0","id":1,"result":{}}'), 'event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n')
  t.equal(sseMessage('{}', '42'), 'event: message\nid: 42\ndata: {}\n\n')
  t.equal(SSE_KEEP_ALIVE, ': keep-alive\n\n')
})

test('regression: a message with raw line breaks (pretty-printed JSON) is written one data line per line', async (t) => {
  const pretty = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [] } }, null, 2).replace('\n  "id"', '\r\n  "id"')
  const written = sseMessage(pretty, 'p1.2')
  t.notMatch(written.slice(0, -2), /\n\n/, 'no blank line inside the event')
  t.equal(written.split('\n').filter(l => l.startsWith('data: ')).length, pretty.split(/\r\n|\r|\n/).length)
  const { events } = parse(written)
  t.same(JSON.parse(events[0]?.data as string), JSON.parse(pretty), 'the client reads back the same message, whole')
})

test('what sseMessage writes, SseParser reads back', async (t) => {
  const data = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { text: 'a\nb: c' } })
  const { p, events } = parse(sseMessage(data, 'ev-1'), SSE_KEEP_ALIVE, sseMessage('{}'))
  t.same(events, [
    { event: 'message', data, id: 'ev-1' },
    { event: 'message', data: '{}', id: undefined }
  ])
  t.equal(p.lastEventId, 'ev-1')
})
