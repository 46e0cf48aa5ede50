import { test } from 'tap'
import { request } from 'undici'
import { connectClient, startGateway, waitFor } from '../helper.js'
import { startConformanceServer } from '../fixtures/conformance-server.js'
import { sleep, startHttpFixture } from '../fixtures/mcp-server.js'

/**
 * Regression tests for protocol defects found with real peers, each named after what it fixes. Clients are the
 * official SDK's (their complaints, through `onerror`, are what the defects showed as) and raw HTTP where the wire
 * must be seen; upstreams are the SDK-based fixtures (test/fixtures/mcp-server.ts, conformance-server.ts).
 */

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
const slow = { name: 'slow', handler: async (args: Record<string, unknown>, signal: AbortSignal) => { await sleep(Number(args.ms ?? 2000), signal); return { content: [] } } }

async function rawSession (mcp: URL, protocolVersion = '2025-11-25') {
  const init = await request(mcp, {
    method: 'POST',
    headers: HEADERS,
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
  })
  await init.body.dump()
  const sessionId = init.headers['mcp-session-id'] as string
  const headers = { ...HEADERS, 'mcp-session-id': sessionId, 'mcp-protocol-version': protocolVersion }
  const post = (body: unknown, extra: Record<string, string> = {}) => request(mcp, { method: 'POST', headers: { ...headers, ...extra }, body: JSON.stringify(body) })
  await (await post({ jsonrpc: '2.0', method: 'notifications/initialized' })).body.dump()
  return { sessionId, headers, post }
}

test('regression: a request the client cancelled is not answered (the spec: SHOULD NOT), on JSON and SSE answers', async (t) => {
  const upstream = await startHttpFixture(t, { name: 'fx', tools: [slow] })
  const gateway = await startGateway(t, { servers: [{ id: 'fx', url: upstream.url }] })
  const { post } = await rawSession(gateway.mcp)

  const json = post({ jsonrpc: '2.0', id: 'j1', method: 'tools/call', params: { name: 'fx__slow', arguments: {} } }, { accept: 'application/json' })
  await waitFor('the call upstream', () => upstream.calls.length === 1)
  await (await post({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'j1', reason: 'changed my mind' } })).body.dump()
  const jsonAnswer = await json
  t.equal(jsonAnswer.statusCode, 202, 'the exchange ends with 202 and no body')
  t.equal(await jsonAnswer.body.text(), '')

  const sse = await post({ jsonrpc: '2.0', id: 's1', method: 'tools/call', params: { name: 'fx__slow', arguments: {}, _meta: { progressToken: 'tok' } } })
  t.match(sse.headers['content-type'], /text\/event-stream/)
  const text = sse.body.text()
  await waitFor('the second call upstream', () => upstream.calls.length === 2)
  await (await post({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 's1' } })).body.dump()
  t.notMatch(await text, /"id":"s1"/, 'the answer stream ends without a response')
})

test('regression: the SDK client sees no response for a call it cancelled (no "unknown message ID")', async (t) => {
  const upstream = await startHttpFixture(t, { name: 'fx', tools: [slow] })
  const gateway = await startGateway(t, { servers: [{ id: 'fx', url: upstream.url }] })
  const client = await connectClient(t, gateway.mcp)
  const errors: string[] = []
  client.onerror = (err) => { errors.push(err.message) }
  const controller = new AbortController()
  const call = client.callTool({ name: 'fx__slow', arguments: { ms: 3000 } }, undefined, { signal: controller.signal }).catch((err: Error) => err)
  await waitFor('the call upstream', () => upstream.calls.length === 1)
  controller.abort('the user closed the tab')
  t.match(await call, Error)
  await sleep(500)
  t.same(errors, [], 'nothing came back that the client could not place')
})

test('regression: resuming an answer stream that was delivered in full is 405, so SDK clients stop quietly', async (t) => {
  const upstream = await startHttpFixture(t, { name: 'fx', tools: [{ name: 'echo' }] })
  const gateway = await startGateway(t, { servers: [{ id: 'fx', url: upstream.url }] })
  const client = await connectClient(t, gateway.mcp, { sampling: {} })
  const errors: string[] = []
  client.onerror = (err) => { errors.push(err.message) }
  // An error response on a primed answer stream: SDK v1 then resumes that stream with Last-Event-ID.
  await client.callTool({ name: 'nope', arguments: {} }).catch(() => {})
  await sleep(1500)
  t.same(errors, [], 'no failed reconnects are logged')

  const { headers, post } = await rawSession(gateway.mcp)
  const answered = await post({ jsonrpc: '2.0', id: 1, method: 'ping' }, { accept: 'text/event-stream' })
  const events = await answered.body.text()
  const id = /id: (p\d+\.\d+)/.exec(events)?.[1] as string
  t.ok(id, 'the answer stream carried event ids')
  const resumed = await request(gateway.mcp, { method: 'GET', headers: { ...headers, accept: 'text/event-stream', 'last-event-id': id } })
  t.equal(resumed.statusCode, 405)
  t.match((await resumed.body.json() as { error: { message: string } }).error.message, /delivered in full; there is nothing to resume/)
  const unknown = await request(gateway.mcp, { method: 'GET', headers: { ...headers, accept: 'text/event-stream', 'last-event-id': 'p999.1' } })
  t.equal(unknown.statusCode, 400, 'an id the session never issued is still refused')
  await unknown.body.dump()
})

test('regression: the capabilities a client is told do not depend on which upstreams were up when it initialized', async (t) => {
  const gateway = await startGateway(t, { prefixMode: 'never', servers: [] })
  const client = await connectClient(t, gateway.mcp)
  t.same(client.getServerCapabilities(), {
    tools: { listChanged: true },
    resources: { subscribe: true, listChanged: true },
    prompts: { listChanged: true },
    completions: {},
    logging: {}
  }, 'everything the gateway serves, with no upstream at all')
  const upstream = await startConformanceServer(t)
  gateway.app.mcpRegistry.add({ id: 'conf', url: upstream.url })
  await waitFor('the upstream that arrived later', () => gateway.app.mcpProxy.catalog.tool('test_simple_text'))
  t.same(await client.setLoggingLevel('debug'), {}, 'logging works once an upstream offers it')
  t.same(await client.subscribeResource({ uri: 'test://watched-resource' }), {}, 'and so do subscriptions')
})

test('regression: completion/complete for a service without completions answers no suggestions', async (t) => {
  const upstream = await startHttpFixture(t, { name: 'plain', tools: [{ name: 't' }] })
  const withPrompts = await startHttpFixture(t, { name: 'prompts', prompts: [{ name: 'p', text: 'x' }], templates: [{ uriTemplate: 'plain://{id}', name: 'tpl' }] })
  const gateway = await startGateway(t, { servers: [{ id: 'plain', url: upstream.url }, { id: 'prompts', url: withPrompts.url }] })
  const client = await connectClient(t, gateway.mcp)
  t.same(await client.complete({ ref: { type: 'ref/prompt', name: 'prompts__p' }, argument: { name: 'topic', value: 'x' } }),
    { completion: { values: ['prompts-x'], hasMore: false } }, 'a service with completions answers')
  gateway.app.mcpRegistry.remove('prompts')
  const noCompletions = await startHttpFixture(t, { name: 'bare', templates: [{ uriTemplate: 'bare://{id}', name: 'tpl' }] })
  gateway.app.mcpRegistry.add({ id: 'bare', url: noCompletions.url })
  await waitFor('the bare upstream', () => gateway.app.mcpProxy.catalog.template('bare://{id}'))
  t.same(await client.complete({ ref: { type: 'ref/resource', uri: 'bare://{id}' }, argument: { name: 'id', value: '1' } }),
    { completion: { values: [], hasMore: false } }, 'one without them: no suggestions, not an error')
})

test('regression: a URI no upstream lists is subscribed on the service it belongs to, or refused when that is unclear', async (t) => {
  const one = await startConformanceServer(t)
  const two = await startConformanceServer(t)
  const gateway = await startGateway(t, { servers: [{ id: 'one', url: one.url }, { id: 'two', url: two.url }] })
  await waitFor('both upstreams', () => gateway.app.mcpHealth.isUp('one') && gateway.app.mcpHealth.isUp('two'))
  const client = await connectClient(t, gateway.mcp)
  t.same(await client.subscribeResource({ uri: 'test://created-later' }), {}, 'routed by its resemblance to listed URIs')
  t.equal(one.subscribers('test://created-later') + two.subscribers('test://created-later'), 1)
  const unclear = await client.subscribeResource({ uri: 'elsewhere://x' }).then(() => undefined, (err: Error & { code?: number }) => err)
  t.equal(unclear?.code, -32002, 'two services take subscriptions and neither has anything like it: resource not found')
  t.same(await client.unsubscribeResource({ uri: 'never-subscribed://x' }), {}, 'unsubscribing what was never subscribed is fine')
})

test('regression: a client reusing the id of a request in flight: both are served, and cancelling the id reaches both', async (t) => {
  // The spec says ids must be unique within a session; careless clients (scripts always sending "id": 1) reuse them.
  const upstream = await startHttpFixture(t, { name: 'fx', tools: [slow] })
  const gateway = await startGateway(t, { servers: [{ id: 'fx', url: upstream.url }] })
  const { post } = await rawSession(gateway.mcp)
  const call = (ms: number) => ({ jsonrpc: '2.0', id: 42, method: 'tools/call', params: { name: 'fx__slow', arguments: { ms } } })
  const quick = await Promise.all([post(call(10), { accept: 'application/json' }), post(call(10), { accept: 'application/json' })])
  t.same(await Promise.all(quick.map(r => r.body.json())), [{ jsonrpc: '2.0', id: 42, result: { content: [] } }, { jsonrpc: '2.0', id: 42, result: { content: [] } }])
  const first = post(call(10_000), { accept: 'application/json' })
  const second = post(call(10_000), { accept: 'text/event-stream' })
  await waitFor('both calls upstream', () => upstream.calls.length === 4)
  const session = [...gateway.app.mcpProxy.sessions.all()][0]
  t.equal(session?.inFlight.size, 2, 'both are counted (limits.maxInFlight counts calls, not ids)')
  await (await post({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 42 } })).body.dump()
  t.equal((await first).statusCode, 202, 'the first was withdrawn')
  t.notMatch(await (await second).body.text(), /"id":42/, 'and so was the second: its stream ends without an answer')
  t.equal(session?.inFlight.size, 0)
})
