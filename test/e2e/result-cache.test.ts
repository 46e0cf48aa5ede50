import { test } from 'tap'
import { type FixtureTool, startHttpFixture } from '../fixtures/mcp-server.js'
import { connectClient, startGateway, waitFor } from '../helper.js'

/**
 * The result cache against a real upstream (an SDK fixture server on loopback whose tools count their calls): hits
 * for read-only tools (whatever the arguments' key order), never for other tools unless forced, never for errors;
 * separate entries per role; TTLs; the `_meta` directives; a list_changed that changes the listing starts over.
 */

test('read-only results are served from the cache; others, errors and bypassed calls are not', async (t) => {
  const counts: Record<string, number> = {}
  const count = (name: string) => { counts[name] = (counts[name] ?? 0) + 1; return counts[name] }
  const fixture = await startHttpFixture(t, {
    name: 'kb',
    tools: [
      { name: 'search', annotations: { readOnlyHint: true }, handler: (args) => ({ content: [{ type: 'text', text: `search ${JSON.stringify(args)} #${count('search')}` }] }) },
      { name: 'write', handler: () => ({ content: [{ type: 'text', text: `write #${count('write')}` }] }) },
      { name: 'flaky', annotations: { readOnlyHint: true }, handler: () => ({ content: [{ type: 'text', text: `flaky #${count('flaky')}` }], isError: true }) }
    ]
  })
  const gateway = await startGateway(t, { cache: { tools: [{ pattern: 'kb__*', ttlMs: 60_000 }] }, servers: [{ id: 'kb', url: fixture.url }] })
  const client = await connectClient(t, gateway.mcp)
  const text = async (name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>) => {
    const result = await client.callTool({ name, arguments: args, ...(meta !== undefined ? { _meta: meta } : {}) })
    return (result.content as Array<{ text: string }>)[0]?.text
  }
  t.equal(await text('kb__search', { q: 'a', n: 1 }), 'search {"q":"a","n":1} #1')
  t.equal(await text('kb__search', { n: 1, q: 'a' }), 'search {"q":"a","n":1} #1', 'a hit, whatever the key order')
  t.equal(await text('kb__search', { q: 'b' }), 'search {"q":"b"} #2', 'other arguments: a miss')
  t.equal(await text('kb__write'), 'write #1')
  t.equal(await text('kb__write'), 'write #2', 'not read-only: never cached')
  t.equal(await text('kb__flaky'), 'flaky #1')
  t.equal(await text('kb__flaky'), 'flaky #2', 'an isError result is not stored')
  t.equal(await text('kb__search', { q: 'a', n: 1 }, { 'fastify-mcp-gateway/cache': 'bypass' }), 'search {"q":"a","n":1} #3', 'bypass: the upstream answers')
  t.equal(await text('kb__search', { q: 'a', n: 1 }), 'search {"q":"a","n":1} #3', 'and the entry is refreshed')
  t.equal(await text('kb__search', { q: 'c' }, { 'fastify-mcp-gateway/cache': 'no-store' }), 'search {"q":"c"} #4')
  t.equal(await text('kb__search', { q: 'c' }), 'search {"q":"c"} #5', 'no-store: nothing kept')
  t.match(gateway.app.mcpProxy.cache?.figures(), { hits: 2, misses: 6, entries: 3 })
  const stats = await (await fetch(gateway.base + '/stats')).json() as { totals: { cache: unknown } }
  t.match(stats.totals.cache, { hits: 2, misses: 6, hitRate: 0.25, entries: 3, bytes: Number })
  const metrics = await (await fetch(gateway.base + '/metrics')).text()
  t.match(metrics, /mcp_gateway_cache_lookups_total\{outcome="hit"\} 2/)
  t.match(metrics, /mcp_gateway_cache_bytes \d+/)
})

test('a service\'s own cache setting, force, and a listing change starting over', async (t) => {
  let calls = 0
  const spec = { name: 'clock', tools: [{ name: 'now', handler: () => ({ content: [{ type: 'text' as const, text: `#${++calls}` }] }) }] as FixtureTool[] }
  const fixture = await startHttpFixture(t, spec)
  const gateway = await startGateway(t, {
    upstreamDefaults: { reconnectMin: 50, reconnectMax: 200 },
    servers: [{ id: 'clock', url: fixture.url, cache: { ttlMs: 60_000, force: true } }]
  })
  const now = async () => ((await gateway.app.mcpProxy.callTool('clock__now', {})) as { content: Array<{ text: string }> }).content[0]?.text
  t.equal(await now(), '#1')
  t.equal(await now(), '#1', 'forced: cached though not read-only')
  // The server comes back offering another tool: a new listing, a new generation of keys.
  spec.tools.push({ name: 'later', handler: () => ({ content: [] }) })
  await fixture.stop()
  await fixture.start()
  gateway.app.mcpProxy.connections.get('clock')?.suspect()
  await waitFor('the new listing', () => gateway.app.mcpProxy.catalog.tool('clock__later') !== undefined, 10_000)
  t.equal(await now(), '#2', 'the listing changed: nothing from before is served')
})

test('entries expire after their ttlMs; roles see entries of their own', async (t) => {
  let calls = 0
  const fixture = await startHttpFixture(t, { name: 'kb', tools: [{ name: 'get', annotations: { readOnlyHint: true }, handler: () => ({ content: [{ type: 'text', text: `#${++calls}` }] }) }] })
  const gateway = await startGateway(t, {
    cache: { tools: [{ pattern: 'kb__get', ttlMs: 300 }] },
    auth: {
      apiKeys: [{ name: 'alice', key: 'alice-key-0123456789', roles: ['staff'] }, { name: 'bob', key: 'bob-key-0123456789ab', roles: ['staff'] }, { name: 'eve', key: 'eve-key-0123456789ab', roles: ['guest'] }],
      roles: { staff: { tools: { allow: ['*'] } }, guest: { tools: { allow: ['*'] } } }
    },
    servers: [{ id: 'kb', url: fixture.url }]
  })
  const get = async (key: string) => {
    const res = await fetch(gateway.base + '/mcp/tools/call', { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ name: 'kb__get', arguments: {} }) })
    return ((await res.json()) as { content: Array<{ text: string }> }).content[0]?.text
  }
  t.equal(await get('alice-key-0123456789'), '#1')
  t.equal(await get('bob-key-0123456789ab'), '#1', 'the same roles: the same entry')
  t.equal(await get('eve-key-0123456789ab'), '#2', 'other roles: an entry of their own')
  await new Promise(resolve => setTimeout(resolve, 350))
  t.equal(await get('alice-key-0123456789'), '#3', 'after its TTL: asked again')
})
