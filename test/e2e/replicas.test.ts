import { test } from 'tap'
import { connectClient, startGateway, waitFor } from '../helper.js'
import { startHttpFixture } from '../fixtures/mcp-server.js'

/**
 * Upstreams that share a `service` are replicas of one server: their tools are listed once, calls spread over the
 * replicas that are up (here round-robin; the strategies are in balancing.test.ts), and a replica that cannot be
 * reached is skipped.
 */

test('replicas of a service are listed once and share the calls round-robin', async (t) => {
  const spec = { name: 'search', tools: [{ name: 'find' }] }
  const one = await startHttpFixture(t, spec)
  const two = await startHttpFixture(t, spec)
  const gateway = await startGateway(t, {
    upstreamDefaults: { reconnectMin: 100, reconnectMax: 200, healthInterval: 5000 },
    balancer: { strategy: 'round-robin' },
    servers: [
      { id: 'search-1', service: 'search', url: one.url },
      { id: 'search-2', service: 'search', url: two.url }
    ]
  })
  const client = await connectClient(t, gateway.mcp)
  t.same((await client.listTools()).tools.map(tool => tool.name), ['search__find'], 'listed once, under the service name')
  for (let i = 0; i < 10; i++) await client.callTool({ name: 'search__find', arguments: { i } })
  t.equal(one.calls.length, 5, 'half the calls went to the first replica')
  t.equal(two.calls.length, 5, 'half to the second')

  await one.stop()
  for (let i = 0; i < 4; i++) {
    t.same(await client.callTool({ name: 'search__find', arguments: { after: i } }), { content: [{ type: 'text', text: `search:find:{"after":${i}}` }] },
      'a replica that refuses connections is skipped: the call never reached it, so the next replica takes it')
  }
  t.equal(two.calls.length, 9)
  await waitFor('search-1 to be marked down', () => gateway.app.mcpHealth.get('search-1')?.state === 'down')
  t.same((await client.listTools()).tools.map(tool => tool.name), ['search__find'], 'the service stays in the catalog')

  await one.start()
  await waitFor('search-1 to return', () => gateway.app.mcpHealth.isUp('search-1'))
  const before = one.calls.length
  for (let i = 0; i < 4; i++) await client.callTool({ name: 'search__find', arguments: {} })
  t.equal(one.calls.length - before, 2, 'it takes its share again')
})

test('a drained replica (weight 0) takes no calls', async (t) => {
  const spec = { name: 'svc', tools: [{ name: 'go' }] }
  const live = await startHttpFixture(t, spec)
  const drained = await startHttpFixture(t, spec)
  const gateway = await startGateway(t, {
    servers: [{ id: 'live', service: 'svc', url: live.url }, { id: 'drained', service: 'svc', url: drained.url, weight: 0 }]
  })
  for (let i = 0; i < 4; i++) await gateway.app.mcpProxy.callTool('svc__go', {})
  t.equal(live.calls.length, 4)
  t.equal(drained.calls.length, 0)
})
