import { gzipSync } from 'node:zlib'
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { WebSocketClientTransport } from '@modelcontextprotocol/sdk/client/websocket.js'
import { test } from 'tap'
import { request } from 'undici'
import { WebSocket } from 'ws'
import { buildApp } from '../../src/app.js'
import { resolveConfig } from '../../src/config/load.js'
import { connectClient, startGateway, waitFor } from '../helper.js'
import { sleep, startHttpFixture } from '../fixtures/mcp-server.js'
import { startOddServer } from '../fixtures/odd-server.js'

/**
 * Hostile input from clients and from upstreams, on every surface: nothing crashes the gateway (these tests run it
 * in their own process, so a crash fails them), hangs, or is answered without the spec's error and the request's id.
 * The upstream is the hand-written odd-server fixture (deep, pretty-printed and leaky answers on demand); clients are
 * the official SDK's over each transport, and raw sockets where an SDK would refuse to send the message.
 */

// The SDK's WebSocket client uses the global WebSocket, which Node 20 lacks.
globalThis.WebSocket ??= WebSocket as unknown as typeof globalThis.WebSocket

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
const deepArray = (levels: number) => '['.repeat(levels) + ']'.repeat(levels)

async function setup (t: Parameters<typeof startGateway>[0], config: Record<string, unknown> = {}) {
  const odd = await startOddServer(t)
  const gateway = await startGateway(t, { servers: [{ id: 'odd', url: odd.url }], ...config })
  await waitFor('the odd upstream', () => gateway.app.mcpProxy.catalog.tool('odd__echo'))
  return gateway
}

async function initialize (mcp: URL): Promise<string> {
  const res = await request(mcp, {
    method: 'POST',
    headers: HEADERS,
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
  })
  await res.body.dump()
  return res.headers['mcp-session-id'] as string
}

async function post (mcp: URL, sessionId: string | undefined, body: string, headers: Record<string, string> = {}) {
  const res = await request(mcp, { method: 'POST', headers: { ...HEADERS, ...(sessionId !== undefined ? { 'mcp-session-id': sessionId } : {}), ...headers }, body })
  const text = await res.body.text()
  return { status: res.statusCode, text, json: () => JSON.parse(text) }
}

/** A raw MCP-over-WebSocket client: frames in, frames out. */
async function rawSocket (base: string, protocols: string[] = ['mcp']) {
  const socket = new WebSocket(base.replace('http', 'ws') + '/ws', protocols)
  await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject) })
  const frames: unknown[] = []
  socket.on('message', (data) => frames.push(JSON.parse(data.toString())))
  const next = async (count: number) => {
    await waitFor(`${count} frames`, () => frames.length >= count)
    return frames.slice(0, count)
  }
  return { socket, frames, next }
}

test('regression: a WebSocket frame nested 6,000 levels deep is refused with -32600 and its id, and the gateway lives on', async (t) => {
  const gateway = await setup(t)
  const { socket, next } = await rawSocket(gateway.base)
  t.teardown(() => socket.close())
  socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }))
  socket.send('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"odd__echo","arguments":{"a":' + deepArray(6000) + '}}}')
  socket.send(JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'ping' }))
  const frames = await next(3) as Array<{ id: unknown, error?: { code: number, message: string }, result?: unknown }>
  const refused = frames.find(f => f.id === 7)
  const pong = frames.find(f => f.id === 8)
  t.equal(refused?.id, 7)
  t.equal(refused?.error?.code, -32600)
  t.match(refused?.error?.message, /deeper than 128 levels/)
  t.same(pong, { jsonrpc: '2.0', id: 8, result: {} }, 'the socket goes on')
})

test('regression: an upstream answer nested 8,000 levels fails its call cleanly on every transport', async (t) => {
  const gateway = await setup(t)
  const call = { name: 'odd__deep_parsed', arguments: {} }
  const expectFailure = (what: string) => (err: Error) => {
    t.match(err.message, /nested deeper than 128 levels/, `${what}: the call fails with what the upstream did`)
  }
  const json = await connectClient(t, gateway.mcp)
  await json.callTool(call).then(() => t.fail('JSON answer'), expectFailure('/mcp, JSON answer'))
  const sse = await connectClient(t, gateway.mcp, { sampling: {} })
  await sse.callTool(call).then(() => t.fail('SSE answer'), expectFailure('/mcp, SSE answer'))
  const legacy = new Client({ name: 'legacy', version: '1' })
  await legacy.connect(new SSEClientTransport(new URL(gateway.base + '/sse')))
  t.teardown(() => legacy.close())
  await legacy.callTool(call).then(() => t.fail('legacy SSE'), expectFailure('/sse'))
  const ws = new Client({ name: 'ws', version: '1' })
  await ws.connect(new WebSocketClientTransport(new URL(gateway.base.replace('http', 'ws') + '/ws')))
  t.teardown(() => ws.close())
  await ws.callTool(call).then(() => t.fail('WebSocket'), expectFailure('/ws'))

  for (const session of gateway.app.mcpProxy.sessions.all()) t.equal(session.inFlight.size, 0, 'the failed call left its session\'s in-flight table')
  t.ok(await json.callTool({ name: 'odd__echo', arguments: { still: 'here' } }), 'and the gateway serves on')

  const sessionId = await initialize(gateway.mcp)
  const raw = await post(gateway.mcp, sessionId, JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'odd__deep_raw', arguments: {} } }))
  t.equal(raw.status, 200)
  t.match(raw.json(), { id: 5, error: { code: -32603, message: /nested deeper than 128 levels/ } },
    'a deep result in the layout the gateway passes on as text is refused too: the depth is checked as it is matched')
})

test('regression: a result with raw line breaks (pretty-printed) reaches SSE clients whole', async (t) => {
  const gateway = await setup(t)
  const expected = { content: [{ type: 'text', text: 'line one\nline two' }] }
  const streaming = await connectClient(t, gateway.mcp, { sampling: {} })
  t.same(await streaming.callTool({ name: 'odd__pretty', arguments: {} }), expected, '/mcp with an SSE answer')
  const legacy = new Client({ name: 'legacy', version: '1' })
  await legacy.connect(new SSEClientTransport(new URL(gateway.base + '/sse')))
  t.teardown(() => legacy.close())
  t.same(await legacy.callTool({ name: 'odd__pretty', arguments: {} }), expected, '/sse')
})

test('regression: invalid JSON-RPC on /ws is answered with -32600, never echoed or dropped', async (t) => {
  const gateway = await setup(t)
  const { socket, next } = await rawSocket(gateway.base)
  t.teardown(() => socket.close())
  socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }))
  socket.send(JSON.stringify({ jsonrpc: '2.0', id: { a: 1 }, method: 'ping' }))
  socket.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: [1, 2] }))
  socket.send(JSON.stringify({ jsonrpc: '2.0', id: 3 }))
  socket.send('"just a string"')
  socket.send('{not json')
  socket.send(JSON.stringify({ type: 'message', target: 'odd', id: { x: 1 }, data: { method: 'tools/list' } }))
  socket.send(JSON.stringify({ type: 'message', target: 'odd', id: 9, data: { method: 'tools/list', params: 'no' } }))
  const frames = await next(8) as Array<Record<string, unknown>>
  const errors = frames.filter(f => f.result === undefined).map(f => [f.id ?? null, (f.error as { code?: number } | undefined)?.code ?? ((f.data as { error?: { code?: number } })?.error?.code)])
  t.same(errors.sort(), [[null, -32600], [2, -32600], [3, -32600], [null, -32600], [null, -32700], [null, -32600], [9, -32600]].sort(),
    'an invalid id is never echoed; params must be an object; a message must be a request, notification or response')
})

test('regression: on POST, a message that is neither request, notification nor response is 400, not 202', async (t) => {
  const gateway = await setup(t)
  const sessionId = await initialize(gateway.mcp)
  const empty = await post(gateway.mcp, sessionId, JSON.stringify({ jsonrpc: '2.0' }))
  t.equal(empty.status, 400)
  t.equal(empty.json().error.code, -32600)
  const badId = await post(gateway.mcp, sessionId, JSON.stringify({ jsonrpc: '2.0', id: 1.5, method: 'ping' }))
  t.equal(badId.json().error.code, -32600)
  t.equal(badId.json().id, null)
  const deep = await post(gateway.mcp, sessionId, '{"jsonrpc":"2.0","id":"d","method":"ping","params":{"x":' + deepArray(200) + '}}')
  t.equal(deep.status, 400)
  t.same([deep.json().id, deep.json().error.code], ['d', -32600], 'too deep: refused with its id')
})

test('regression: a batch larger than limits.maxBatch is refused before anything is forwarded', async (t) => {
  const gateway = await setup(t, { limits: { maxBatch: 5 } })
  const sessionId = await initialize(gateway.mcp)
  const batch = (n: number) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'odd__echo', arguments: { i } } })))
  const big = await post(gateway.mcp, sessionId, batch(6))
  t.equal(big.status, 400)
  t.match(big.json().error, { code: -32600, message: /a batch of 6 messages; at most 5/ })
  const ok = await post(gateway.mcp, sessionId, batch(5))
  t.equal(ok.json().length, 5)
  const mixed = await post(gateway.mcp, sessionId, JSON.stringify([{ jsonrpc: '2.0', id: 'a', method: 'ping' }, { jsonrpc: '2.0', id: 'b', params: 1 }]))
  t.same(mixed.json().map((m: { id: unknown, error?: { code: number } }) => [m.id, m.error?.code]), [['a', undefined], ['b', -32600]],
    'an invalid element of a batch is answered in the batch')
  t.equal((await post(gateway.mcp, sessionId, '[]')).json().error.code, -32600, 'an empty batch is invalid')
})

test('regression: Content-Encoding is decoded (gzip, deflate, br) or refused with 415; what it decodes to is bounded', async (t) => {
  const gateway = await setup(t)
  const sessionId = await initialize(gateway.mcp)
  const ping = gzipSync(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }))
  const res = await request(gateway.mcp, { method: 'POST', headers: { ...HEADERS, 'mcp-session-id': sessionId, 'content-encoding': 'gzip' }, body: ping })
  t.same(await res.body.json(), { jsonrpc: '2.0', id: 1, result: {} }, 'a gzipped body is read as the JSON it is')
  const unknown = await post(gateway.mcp, sessionId, '{}', { 'content-encoding': 'compress' })
  t.equal(unknown.status, 415)
  t.match(unknown.json().error.message, /Content-Encoding "compress" is not accepted/)
  const bomb = gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x20))
  const big = await request(gateway.mcp, { method: 'POST', headers: { ...HEADERS, 'mcp-session-id': sessionId, 'content-encoding': 'gzip' }, body: bomb })
  t.equal(big.statusCode, 413, `a ${bomb.length}-byte body that inflates to 8 MB meets the body limit`)
  await big.body.dump()
})

test('regression: the WebSocket subprotocol must be "mcp" when subprotocols are offered', async (t) => {
  const gateway = await setup(t)
  const refused = new WebSocket(gateway.base.replace('http', 'ws') + '/ws', ['graphql-ws'])
  const status = await new Promise<number | undefined>((resolve) => {
    refused.once('unexpected-response', (_req, res) => resolve(res.statusCode))
    refused.once('open', () => resolve(undefined))
    refused.once('error', () => {})
  })
  t.equal(status, 400, 'another subprotocol is refused at the upgrade')
  const second = await rawSocket(gateway.base, ['graphql-ws', 'mcp'])
  t.equal(second.socket.protocol, 'mcp', '"mcp" is chosen even when it is not offered first')
  second.socket.close()
  const none = await rawSocket(gateway.base, [])
  t.equal(none.socket.protocol, '', 'a script that offers none is welcome')
  none.socket.close()
})

test('regression: an upstream\'s HTTP error body reaches clients shortened and without internal addresses', async (t) => {
  const gateway = await setup(t)
  const res = await fetch(gateway.base + '/mcp/tools/call', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'odd__http_error', arguments: {} }) })
  const body = await res.json() as { message: string }
  t.equal(res.status, 502)
  t.match(body.message, /^Upstream odd answered HTTP 500: upstream proxy error/)
  t.notMatch(body.message, /10\.20\.30\.40|billing\.internal|8443/)
  t.ok(body.message.length < 400, `shortened (${body.message.length} characters)`)
})

test('regression: forwarded params MCP types are checked before they travel (_meta, progressToken, arguments) with -32602', async (t) => {
  const gateway = await setup(t)
  const sessionId = await initialize(gateway.mcp)
  await post(gateway.mcp, sessionId, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))
  const call = async (id: number, params: Record<string, unknown>) =>
    (await post(gateway.mcp, sessionId, JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'odd__echo', ...params } }), { accept: 'application/json' })).json()
  t.match(await call(1, { _meta: 'x' }), { id: 1, error: { code: -32602, message: /_meta must be an object/ } })
  t.match(await call(2, { _meta: { progressToken: { a: 1 } } }), { id: 2, error: { code: -32602, message: /progressToken must be a string or an integer/ } })
  t.match(await call(3, { _meta: { progressToken: 1.5 } }), { id: 3, error: { code: -32602 } }, 'a fractional token is no integer')
  t.match(await call(4, { arguments: [1, 2] }), { id: 4, error: { code: -32602, message: /arguments must be an object/ } })
  t.match(await call(5, { arguments: { ok: true }, _meta: { progressToken: 'p' } }), { id: 5, result: { content: [{ text: '{"ok":true}' }] } }, 'well-typed params go through')
})

test('regression: the /ws envelope cannot change the shared upstream session; a JSON-RPC message with a "type" member is JSON-RPC', async (t) => {
  const gateway = await setup(t)
  const { socket, frames } = await rawSocket(gateway.base)
  t.teardown(() => socket.close())
  socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }))
  await waitFor('initialized', () => frames.length > 0)
  const refused = ['initialize', 'logging/setLevel', 'resources/subscribe', 'resources/unsubscribe', 'notifications/initialized']
  refused.forEach((method, i) => socket.send(JSON.stringify({ type: 'message', target: 'odd', id: 10 + i, data: { method, params: {} } })))
  socket.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping', type: 'extra member' }))
  // A tools/list_changed may come too (the catalog settled after the socket connected): only answers count here.
  await waitFor('the answers', () => frames.filter(f => (f as { method?: unknown }).method === undefined).length >= 2 + refused.length)
  const answers = frames.slice(1) as Array<Record<string, any>>
  for (const [i, method] of refused.entries()) {
    const frame = answers.find(f => f.id === 10 + i)
    t.match(frame?.data?.error?.message, /cannot be sent in an envelope: the gateway manages upstream sessions/, method)
  }
  t.same(answers.find(f => f.id === 2), { jsonrpc: '2.0', id: 2, result: {} }, 'answered as the JSON-RPC ping it is')
})

test('regression: a WebSocket frame over the size limit closes that socket with 1009, logged once at info without a stack', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const stream = { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } }
  const app = await buildApp({ config: resolveConfig({ metrics: { defaultMetrics: false }, servers: [] }, { envOverrides: false, source: 'test config' }) },
    { logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { socket } = await rawSocket(`http://127.0.0.1:${(app.server.address() as { port: number }).port}`)
  const closed = new Promise<number>(resolve => socket.once('close', resolve))
  socket.send('x'.repeat(5 * 1024 * 1024))
  t.equal(await closed, 1009, 'Message Too Big')
  await waitFor('the log line', () => lines.some(l => l.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'))
  const logged = lines.filter(l => l.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')
  t.equal(logged.length, 1)
  t.match(logged[0], { level: 30, msg: 'WebSocket client connection failed; closed', reason: /Max payload size exceeded/ })
  t.notOk(lines.some(l => (l.level as number) >= 50), 'nothing at error')
})

test('regression: a session has at most limits.maxInFlight forwarded requests at once, envelope requests included', async (t) => {
  const upstream = await startHttpFixture(t, { name: 'fx', tools: [{ name: 'slow', handler: async (args: Record<string, unknown>, signal: AbortSignal) => { await sleep(Number(args.ms), signal); return { content: [] } } }] })
  const gateway = await startGateway(t, { limits: { maxInFlight: 2 }, servers: [{ id: 'fx', url: upstream.url }] })
  const client = await connectClient(t, gateway.mcp)
  const call = (ms: number) => client.callTool({ name: 'fx__slow', arguments: { ms } }).then(() => 'ok', (err: Error) => err.message)
  const held = [call(1500), call(1500)]
  await waitFor('both calls upstream', () => upstream.calls.length === 2)
  t.match(await call(0), /Too many requests in flight: this session has its maximum of 2 \(limits\.maxInFlight\)/)
  t.same(await Promise.all(held), ['ok', 'ok'])
  t.equal(await call(0), 'ok', 'room again once they are answered')

  const { socket, frames } = await rawSocket(gateway.base)
  t.teardown(() => socket.close())
  const envelope = (id: number, params: Record<string, unknown>) => socket.send(JSON.stringify({ type: 'message', target: 'fx', id, data: { method: 'tools/call', params } }))
  envelope(1, { name: 'slow', arguments: { ms: 1500 } })
  envelope(2, { name: 'slow', arguments: { ms: 1500 } })
  envelope(3, { name: 'slow', arguments: { ms: 0 } })
  envelope(4, { name: 'slow', arguments: {}, _meta: 'x' })
  const answers = await waitFor('the four answers', () => frames.length >= 4 ? frames as Array<{ id: number, data: Record<string, any> }> : undefined)
  const byId = new Map(answers.map(a => [a.id, a.data]))
  t.match(byId.get(3), { error: { code: -32000, message: /limits\.maxInFlight/ } }, 'the third envelope request is refused')
  t.match(byId.get(4), { error: { code: -32602, message: /_meta must be an object/ } }, 'an envelope request is checked as any forwarded one')
  t.same(byId.get(1), { content: [] })
})

test('regression: a client that stops reading its stream loses it instead of making the gateway hold what is sent to it', async (t) => {
  const big = 'x'.repeat(1 << 20)
  const upstream = await startHttpFixture(t, { name: 'fx', tools: [{ name: 'big', handler: () => ({ content: [{ type: 'text', text: big }] }) }] })
  const gateway = await startGateway(t, { limits: { maxClientBuffer: 65536 }, servers: [{ id: 'fx', url: upstream.url }] })
  await waitFor('the upstream', () => gateway.app.mcpProxy.catalog.tool('fx__big'))

  // Legacy SSE: the stream is opened and never read; the calls are POSTed to /messages (202 each, answered on it).
  const stream = await request(gateway.base + '/sse', { headers: { accept: 'text/event-stream' } })
  const endpoint = await new Promise<string>((resolve) => {
    stream.body.once('data', (chunk: Buffer) => resolve(/data: (\S+)/.exec(chunk.toString())?.[1] as string))
  })
  stream.body.pause()
  t.teardown(() => stream.body.destroy())
  const post = (body: unknown) => request(gateway.base + endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(r => r.body.dump().then(() => r.statusCode))
  await post({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'slow', version: '1' } } })
  await post({ jsonrpc: '2.0', method: 'notifications/initialized' })
  for (let i = 1; i <= 64 && gateway.app.mcpProxy.sessions.size > 0; i++) {
    const status = await post({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'fx__big', arguments: {} } })
    if (status !== 202) break
  }
  await waitFor('the unread session to end', () => gateway.app.mcpProxy.sessions.size === 0)
  t.ok(upstream.calls.length < 64, `the stream was closed after ${upstream.calls.length} unread answers of 1 MB`)

  // WebSocket: the same with a socket whose reading is paused.
  const { socket } = await rawSocket(gateway.base)
  const closed = new Promise<void>(resolve => socket.once('close', () => resolve()))
  ;(socket as unknown as { _socket: { pause (): void } })._socket.pause()
  for (let i = 0; i < 64 && socket.readyState === WebSocket.OPEN; i++) {
    socket.send(JSON.stringify({ type: 'message', target: 'fx', id: i, data: { method: 'tools/call', params: { name: 'big', arguments: {} } } }))
    await sleep(20)
  }
  await waitFor('the unread socket\'s session to end', () => gateway.app.mcpProxy.sessions.size === 0)
  ;(socket as unknown as { _socket: { resume (): void } })._socket.resume()
  await closed
  t.pass('the socket was closed')
})
