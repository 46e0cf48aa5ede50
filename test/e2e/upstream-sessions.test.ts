import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { test } from 'tap'
import { request } from 'undici'
import { connectClient, startGateway, waitFor } from '../helper.js'
import { startConformanceServer } from '../fixtures/conformance-server.js'
import { sleep, startHttpFixture } from '../fixtures/mcp-server.js'

/**
 * The upstream session model: what a client costs an upstream. Clients that need nothing of their own share the
 * gateway's session; a client that needs one (it declared sampling, elicitation or roots, set a log level or
 * subscribed) gets its own, sticky to one replica, without a GET stream unless something can flow on it, closed when
 * idle, bounded per upstream. Upstreams are the SDK-based fixture (test/fixtures/mcp-server.ts, it counts its
 * sessions and GET streams) and the conformance fixture (it takes subscriptions); clients are the official SDK's.
 */

const SAMPLING = { sampling: {} }
const slowTool = { name: 'slow', handler: async (args: Record<string, unknown>, signal: AbortSignal) => { await sleep(Number(args.ms), signal); return { content: [] } } }

test('clients that need nothing of their own share the gateway\'s session: no upstream session or GET stream per client', async (t) => {
  const upstream = await startHttpFixture(t, { name: 'fx', tools: [{ name: 'echo' }] })
  const gateway = await startGateway(t, { servers: [{ id: 'fx', url: upstream.url }] })
  await waitFor('the gateway\'s own GET stream', () => upstream.openStreams === 1)
  const clients = await Promise.all(Array.from({ length: 5 }, () => connectClient(t, gateway.mcp)))
  for (const client of clients) {
    for (let i = 0; i < 3; i++) await client.callTool({ name: 'fx__echo', arguments: { i } })
  }
  t.equal(upstream.calls.length, 15)
  t.equal(upstream.initializations, 1, 'only the gateway\'s own session was ever opened')
  t.equal(upstream.openSessions, 1)
  t.equal(upstream.openStreams, 1, 'one GET stream, the gateway\'s')
})

test('a client that declared sampling gets its own session; a GET stream only once something can flow on it', async (t) => {
  const upstream = await startHttpFixture(t, { name: 'fx', tools: [{ name: 'echo' }] })
  const gateway = await startGateway(t, { servers: [{ id: 'fx', url: upstream.url }] })
  await waitFor('the gateway\'s own GET stream', () => upstream.openStreams === 1)
  const client = await connectClient(t, gateway.mcp, SAMPLING)
  await client.callTool({ name: 'fx__echo', arguments: {} })
  await client.callTool({ name: 'fx__echo', arguments: {} })
  t.equal(upstream.initializations, 2, 'one session of its own, opened on first use and kept')
  t.equal(upstream.openStreams, 1, 'and no GET stream for it: nothing it asked for can come outside a call')
  const session = [...gateway.app.mcpProxy.sessions.all()][0]
  await waitFor('the client\'s own GET stream to the gateway', () => session?.channel.open)
  await client.setLoggingLevel('info')
  await waitFor('a GET stream for the client\'s session, now that it listens for log messages', () => upstream.openStreams === 2)

  await (client.transport as StreamableHTTPClientTransport).terminateSession()
  await waitFor('the client\'s upstream session to be ended', () => upstream.openSessions === 1)
  t.equal(upstream.deletes, 1, 'ended with DELETE')
  await waitFor('its GET stream to close', () => upstream.openStreams === 1)
})

test('a client\'s own session sticks to one replica: all its calls go there', async (t) => {
  const spec = { name: 'search', tools: [{ name: 'find' }] }
  const one = await startHttpFixture(t, spec)
  const two = await startHttpFixture(t, spec)
  const gateway = await startGateway(t, {
    // Round-robin, so the balanced client's split is exact.
    balancer: { strategy: 'round-robin' },
    servers: [{ id: 'search-1', service: 'search', url: one.url }, { id: 'search-2', service: 'search', url: two.url }]
  })
  await waitFor('both replicas', () => gateway.app.mcpHealth.isUp('search-1') && gateway.app.mcpHealth.isUp('search-2'))
  const stateful = await connectClient(t, gateway.mcp, SAMPLING)
  for (let i = 0; i < 6; i++) await stateful.callTool({ name: 'search__find', arguments: { i } })
  t.same([one.calls.length, two.calls.length].sort(), [0, 6], 'a stateful server sees the whole of this client on one replica')
  const plain = await connectClient(t, gateway.mcp)
  const before = [one.calls.length, two.calls.length]
  for (let i = 0; i < 4; i++) await plain.callTool({ name: 'search__find', arguments: { i } })
  t.same([one.calls.length - (before[0] as number), two.calls.length - (before[1] as number)], [2, 2], 'a client without state is balanced')

  const [holder, other] = one.calls.length === 6 ? [one, two] : [two, one]
  await holder.stop()
  for (let i = 0; i < 3; i++) {
    t.ok(await stateful.callTool({ name: 'search__find', arguments: { after: i } }), 'its calls move to the replica that is left')
  }
  t.equal(other.calls.filter(c => c.args.after !== undefined).length, 3)
  t.equal(other.initializations, 2, 'where it got a session of its own')
})

test('when its replica fails, a client\'s subscription moves with its session and updates keep coming', async (t) => {
  const first = await startConformanceServer(t)
  const second = await startConformanceServer(t)
  const gateway = await startGateway(t, {
    prefixMode: 'never',
    upstreamDefaults: { reconnectMin: 100, reconnectMax: 200, healthInterval: 200 },
    servers: [{ id: 'conf-1', service: 'conf', url: first.url }, { id: 'conf-2', service: 'conf', url: second.url }]
  })
  await waitFor('both replicas', () => gateway.app.mcpHealth.isUp('conf-1') && gateway.app.mcpHealth.isUp('conf-2'))
  const client = await connectClient(t, gateway.mcp)
  const updates: string[] = []
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) => { updates.push(n.params.uri) })
  await waitFor('the client\'s GET stream', () => [...gateway.app.mcpProxy.sessions.all()].every(s => s.channel.open))
  const uri = 'test://watched-resource'
  t.same(await client.subscribeResource({ uri }), {})
  const [holder, other] = first.subscribers(uri) === 1 ? [first, second] : [second, first]
  t.equal(holder.subscribers(uri) + other.subscribers(uri), 1, 'subscribed on one replica, once')
  await client.callTool({ name: 'test_simple_text', arguments: {} })
  t.equal(holder.openSessions, 2, 'its calls use the session that holds the subscription (the gateway\'s, and the client\'s)')
  t.equal(other.openSessions, 1)
  await holder.updateResource(uri)
  await waitFor('the first update', () => updates.length === 1)

  await holder.stop()
  await waitFor('the subscription to move to the other replica', () => other.subscribers(uri) === 1)
  await other.updateResource(uri)
  await waitFor('an update from the new replica', () => updates.length === 2)
  t.same(updates, [uri, uri])
})

test('an idle session of a client closes, and a new one opens on its next call', async (t) => {
  const upstream = await startHttpFixture(t, { name: 'fx', tools: [{ name: 'echo' }] })
  const gateway = await startGateway(t, { upstreamDefaults: { sessionIdleTimeout: 500 }, servers: [{ id: 'fx', url: upstream.url }] })
  const client = await connectClient(t, gateway.mcp, SAMPLING)
  await client.callTool({ name: 'fx__echo', arguments: {} })
  t.equal(upstream.openSessions, 2)
  await waitFor('the idle session to close', () => upstream.openSessions === 1, 10_000)
  t.equal(upstream.deletes, 1)
  t.ok(await client.callTool({ name: 'fx__echo', arguments: {} }), 'the next call works')
  t.equal(upstream.initializations, 3, 'on a new session')
})

test('at maxSessions the least recently used idle session makes room; with none idle, calls use the shared session', async (t) => {
  const upstream = await startHttpFixture(t, { name: 'fx', tools: [{ name: 'echo' }, slowTool] })
  const gateway = await startGateway(t, { servers: [{ id: 'fx', url: upstream.url, maxSessions: 1 }] })
  const a = await connectClient(t, gateway.mcp, SAMPLING)
  const b = await connectClient(t, gateway.mcp, SAMPLING)
  await a.callTool({ name: 'fx__echo', arguments: {} })
  t.equal(upstream.openSessions, 2)
  await b.callTool({ name: 'fx__echo', arguments: {} })
  await waitFor('a\'s idle session to make room for b\'s', () => upstream.deletes === 1)
  t.equal(upstream.openSessions, 2, 'still one client session (and the gateway\'s)')

  const long = b.callTool({ name: 'fx__slow', arguments: { ms: 400 } })
  await waitFor('b\'s long call to start', () => upstream.calls.some(c => c.tool === 'slow'))
  t.ok(await a.callTool({ name: 'fx__echo', arguments: { busy: true } }), 'b\'s session is busy: a\'s call goes through the shared one')
  t.equal(upstream.openSessions, 2, 'no session beyond the cap')
  await long
})

test('a flood of initialize requests does not lock newcomers out', async (t) => {
  const upstream = await startHttpFixture(t, { name: 'fx', tools: [{ name: 'echo' }] })
  const gateway = await startGateway(t, { sessions: { max: 20 }, servers: [{ id: 'fx', url: upstream.url }] })
  const flood: string[] = []
  for (let i = 0; i < 100; i++) {
    const res = await request(gateway.mcp, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'flood', version: '1' } } })
    })
    t.equal(res.statusCode, 200)
    flood.push(res.headers['mcp-session-id'] as string)
    await res.body.dump()
  }
  t.equal(gateway.app.mcpProxy.sessions.size, 20, 'the cap holds')
  const client = await connectClient(t, gateway.mcp)
  t.ok(await client.callTool({ name: 'fx__echo', arguments: {} }), 'a real client gets in and is served')
  const early = await request(gateway.mcp, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': flood[0] as string },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' })
  })
  t.equal(early.statusCode, 404, 'a reclaimed session answers 404, so its client initializes again')
  await early.body.dump()
})

test('a session whose GET stream is gone expires', async (t) => {
  const upstream = await startHttpFixture(t, { name: 'fx', tools: [{ name: 'echo' }] })
  const gateway = await startGateway(t, { sessions: { idleTimeout: 300 }, servers: [{ id: 'fx', url: upstream.url }] })
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
  const init = await request(gateway.mcp, {
    method: 'POST',
    headers,
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
  })
  const sessionId = init.headers['mcp-session-id'] as string
  await init.body.dump()
  const stream = await request(gateway.mcp, { method: 'GET', headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId } })
  t.equal(stream.statusCode, 200)
  await sleep(700)
  t.ok(gateway.app.mcpProxy.sessions.get(sessionId) !== undefined, 'a session with its stream open is in use, whatever its age')
  stream.body.destroy()
  await waitFor('the session to expire once its stream is gone', () => gateway.app.mcpProxy.sessions.get(sessionId) === undefined, 5000)
})
