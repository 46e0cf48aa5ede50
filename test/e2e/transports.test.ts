import { test } from 'tap'
import { WebSocket } from 'ws'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { WebSocketClientTransport } from '@modelcontextprotocol/sdk/client/websocket.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js'
import { everythingStdio, startEverythingHttp, startEverythingSse, startGateway } from '../helper.js'

/**
 * The transport matrix: the official SDK client over Streamable HTTP, legacy HTTP+SSE and WebSocket, against the
 * gateway fronting server-everything over Streamable HTTP, legacy SSE and stdio — list and call through every pair,
 * and a server→client request (sampling) over every pair.
 */

// The SDK's WebSocket client uses the global WebSocket, which Node 20 lacks.
globalThis.WebSocket ??= WebSocket as unknown as typeof globalThis.WebSocket

const clientTransports: Record<string, (base: string) => Transport> = {
  'streamable-http': (base) => new StreamableHTTPClientTransport(new URL(base + '/mcp')),
  'legacy-sse': (base) => new SSEClientTransport(new URL(base + '/sse')),
  websocket: (base) => new WebSocketClientTransport(new URL(base.replace('http:', 'ws:') + '/ws'))
}

test('every client transport reaches every upstream transport', async (t) => {
  const everything = await startEverythingHttp(t)
  const everythingSse = await startEverythingSse(t)
  const gateway = await startGateway(t, {
    servers: [{ id: 'http', url: everything.url }, { id: 'sse', url: everythingSse.url, transport: 'sse' }, everythingStdio('stdio')]
  })
  for (const [name, make] of Object.entries(clientTransports)) {
    const client = new Client({ name: `matrix-${name}`, version: '1.0.0' }, { capabilities: { sampling: {} } })
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({
      model: `model-over-${name}`, role: 'assistant', content: { type: 'text', text: 'ok' }, stopReason: 'endTurn'
    }))
    await client.connect(make(gateway.base))
    t.teardown(() => client.close())
    t.equal(client.getServerVersion()?.name, 'fastify-mcp-gateway', `${name}: initialized`)
    const names = (await client.listTools()).tools.map(tool => tool.name)
    for (const upstream of ['http', 'sse', 'stdio']) {
      t.ok(names.includes(`${upstream}__echo`), `${name} → ${upstream}: listed`)
      t.same(await client.callTool({ name: `${upstream}__echo`, arguments: { message: name } }),
        { content: [{ type: 'text', text: `Echo: ${name}` }] }, `${name} → ${upstream}: called`)
      const sampled = await client.callTool({ name: `${upstream}__trigger-sampling-request`, arguments: { prompt: 'p' } })
      t.match((sampled as { content: Array<{ text: string }> }).content[0]?.text, new RegExp(`model-over-${name}`),
        `${name} → ${upstream}: the upstream's sampling request came back over the client's transport`)
    }
  }
  t.equal(gateway.app.mcpProxy.sessions.size, 3, 'one session per connected client')
})

test('the WebSocket envelope for clients without an MCP SDK', async (t) => {
  const gateway = await startGateway(t, { servers: [everythingStdio('stdio')] })
  const socket = new WebSocket(gateway.base.replace('http:', 'ws:') + '/ws')
  t.teardown(() => socket.close())
  await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject) })
  const replies: unknown[] = []
  // Answers only: what the server sends on its own (a list_changed, a log message) may arrive in between.
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { method?: string, id?: unknown }
    if (message.method !== undefined && message.id === undefined) return
    replies.push(message)
  })
  const next = async () => {
    const start = replies.length
    while (replies.length === start) await new Promise(resolve => setTimeout(resolve, 10))
    return replies[start] as { type: string, target?: string, id?: unknown, data: Record<string, unknown> }
  }

  socket.send(JSON.stringify({ type: 'message', target: 'stdio', id: 1, data: { method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' } } } }))
  t.same(await next(), { type: 'response', target: 'stdio', id: 1, data: { content: [{ type: 'text', text: 'Echo: hi' }] } },
    'the target server is called with its own tool name')
  socket.send(JSON.stringify({ type: 'message', target: 'nowhere', data: { method: 'tools/list' } }))
  const unknown = await next()
  t.equal(unknown.type, 'response')
  t.match(unknown.data, { error: { code: -32602, message: /Unknown target "nowhere"/ } })
  socket.send(JSON.stringify({ type: 'message', data: {} }))
  t.match((await next()).data, { error: { message: /an envelope is/ } }, 'a malformed envelope is explained')
  socket.send('not json')
  t.match(await next(), { jsonrpc: '2.0', id: null, error: { code: -32700 } })
})

test('a foreign Origin cannot open a WebSocket or an SSE stream', async (t) => {
  const gateway = await startGateway(t, {})
  const socket = new WebSocket(gateway.base.replace('http:', 'ws:') + '/ws', { headers: { origin: 'http://evil.example.com' } })
  const status = await new Promise<number | undefined>((resolve) => {
    socket.once('unexpected-response', (_, res) => resolve(res.statusCode))
    socket.once('open', () => resolve(101))
  })
  t.equal(status, 403)
  const sse = await fetch(gateway.base + '/sse', { headers: { origin: 'http://evil.example.com' } })
  t.equal(sse.status, 403)
})

test('legacy /messages refusals are JSON-RPC errors that say what to fix', async (t) => {
  const gateway = await startGateway(t, {})
  const noSession = await fetch(gateway.base + '/messages', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' })
  t.equal(noSession.status, 400)
  t.match(await noSession.json(), { jsonrpc: '2.0', id: null, error: { code: -32600, message: /needs the sessionId query parameter/ } })
  const unknown = await fetch(gateway.base + '/messages?sessionId=nope', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' })
  t.equal(unknown.status, 404)
  const plain = await fetch(gateway.base + '/messages?sessionId=nope', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' })
  t.equal(plain.status, 415, 'only JSON bodies, as on /mcp')
  t.match(await plain.json(), { error: { message: /Unsupported Media Type: "text\/plain"/ } })
  const broken = await fetch(gateway.base + '/messages?sessionId=nope', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' })
  t.match(await broken.json(), { error: { code: -32700 } })
})
