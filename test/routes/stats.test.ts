import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { WebSocketClientTransport } from '@modelcontextprotocol/sdk/client/websocket.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import { test } from 'tap'
import { WebSocket } from 'ws'
import { startPlainServer } from '../fixtures/plain-mcp-server.js'
import { startGateway } from '../helper.js'

/**
 * GET /stats against real upstreams on loopback (the plain-node:http fixture, whose calls can be made to fail):
 * totals, per upstream and per tool figures, the latest errors, and authentication like /status.
 */

// The SDK's WebSocket client uses the global WebSocket, which Node 20 lacks.
globalThis.WebSocket ??= WebSocket as unknown as typeof globalThis.WebSocket

async function call (base: string, name: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(base + '/mcp/tools/call', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ name, arguments: {} }) })
  await res.arrayBuffer()
  return res.status
}

test('GET /stats: totals, every upstream, the most called tools and the latest errors', async (t) => {
  const good = await startPlainServer(t, 'good')
  const bad = await startPlainServer(t, 'bad')
  good.controls.delayMs = 20
  bad.controls.failCalls = true
  const gateway = await startGateway(t, {
    circuitBreaker: { failureThreshold: 0 },
    servers: [{ id: 'good', url: good.url }, { id: 'bad', url: bad.url }, { id: 'off', url: good.url, enabled: false }]
  })
  for (let i = 0; i < 6; i++) t.equal(await call(gateway.base, 'good__read'), 200)
  for (let i = 0; i < 2; i++) t.equal(await call(gateway.base, 'good__write'), 200)
  for (let i = 0; i < 3; i++) t.equal(await call(gateway.base, 'bad__write'), 502)

  const res = await fetch(gateway.base + '/stats?tools=2&errors=2')
  t.equal(res.status, 200)
  const stats = await res.json() as Record<string, any>
  t.match(stats.totals, {
    minute: { calls: 11, errors: 3, errorRate: 0.2727 },
    quarter: { calls: 11, errors: 3 },
    inFlight: 0,
    sessions: 0,
    upstreams: { total: 3, active: 2, inactive: 1, error: 0 }
  })
  t.ok(stats.totals.minute.p50Ms >= 15 && stats.totals.minute.p50Ms <= 40, `p50 ${stats.totals.minute.p50Ms} ms: the 20 ms answers`)
  t.same(stats.upstreams.map((u: { id: string, status: string }) => [u.id, u.status]), [['good', 'active'], ['bad', 'active'], ['off', 'inactive']])
  t.match(stats.upstreams[0], { service: 'good', inFlight: 0, minute: { calls: 8, errors: 0, errorRate: 0 }, quarter: { calls: 8 } })
  t.match(stats.upstreams[1], { minute: { calls: 3, errors: 3, errorRate: 1 } })
  t.match(stats.upstreams[2], { minute: { calls: 0, p99Ms: 0 } }, 'never called: zeros')
  t.same(stats.tools.map((tool: { name: string }) => tool.name), ['good__read', 'bad__write'], 'the two most called, most first')
  t.match(stats.tools[0], { service: 'good', minute: { calls: 6 }, quarter: { calls: 6 } })
  t.equal(stats.recentErrors.length, 2)
  t.match(stats.recentErrors[0], { upstream: 'bad', service: 'bad', tool: 'bad__write', method: 'tools/call', outcome: 'failure', message: /answered HTTP 500/ })
  t.ok(Date.parse(stats.recentErrors[0].at) >= Date.parse(stats.recentErrors[1].at), 'newest first')

  const bounded = await fetch(gateway.base + '/stats?tools=5000')
  t.equal(bounded.status, 400, 'query bounds are checked')
})

test('/stats is behind authentication like /status', async (t) => {
  const good = await startPlainServer(t, 'good')
  const key = 'a-key-for-the-stats-test'
  const gateway = await startGateway(t, { auth: { apiKeys: [{ name: 'ops', key }] }, servers: [{ id: 'good', url: good.url }] })
  t.equal((await fetch(gateway.base + '/stats')).status, 401)
  t.equal(await call(gateway.base, 'good__read', { 'x-api-key': key }), 200)
  const res = await fetch(gateway.base + '/stats', { headers: { 'x-api-key': key } })
  t.equal(res.status, 200)
  t.match(await res.json(), { totals: { minute: { calls: 1 } } })
})

test('/stats connections: sessions by transport and by client application (the SDK client over each transport)', async (t) => {
  const good = await startPlainServer(t, 'good')
  const gateway = await startGateway(t, { servers: [{ id: 'good', url: good.url }] })
  const connect = async (name: string, transport: Transport) => {
    const client = new Client({ name, version: '1.0.0' })
    await client.connect(transport)
    t.teardown(() => client.close())
  }
  await connect('agent', new StreamableHTTPClientTransport(gateway.mcp))
  await connect('agent', new StreamableHTTPClientTransport(gateway.mcp))
  await connect('desktop', new SSEClientTransport(new URL(gateway.base + '/sse')))
  await connect('script', new WebSocketClientTransport(new URL(gateway.base.replace('http:', 'ws:') + '/ws')))
  const stats = await (await fetch(gateway.base + '/stats')).json() as Record<string, any>
  t.match(stats.connections, {
    sessions: 4,
    byTransport: { 'streamable-http': 2, sse: 1, websocket: 1 },
    initializing: 0,
    ownUpstreamSessions: 0
  })
  t.same(stats.connections.clients, [{ name: 'agent', sessions: 2 }, { name: 'desktop', sessions: 1 }, { name: 'script', sessions: 1 }], 'most sessions first')
  t.ok(stats.connections.listening >= 2, `the SSE stream and the socket are open: ${stats.connections.listening}`)
})
