import { test } from 'tap'
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { connectClient, everythingStdio, startGateway, waitFor } from '../helper.js'
import { sleep, startHttpFixture } from '../fixtures/mcp-server.js'

/**
 * Fail open: an upstream that dies leaves the catalog (clients are told), the endpoint keeps serving the others,
 * calls in flight to it end at once with an error that says why, and it returns when the upstream does.
 */

const fastRecovery = { upstreamDefaults: { reconnectMin: 100, reconnectMax: 400, healthInterval: 300, connectTimeout: 3000 } }

test('a killed stdio upstream leaves the catalog, fails its calls at once, and comes back', async (t) => {
  const other = await startHttpFixture(t, { name: 'other', tools: [{ name: 'still_here' }] })
  const gateway = await startGateway(t, { ...fastRecovery, servers: [everythingStdio('everything'), { id: 'other', url: other.url }] })
  const client = await connectClient(t, gateway.mcp)
  let changes = 0
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => { changes++ })
  const names = async () => (await client.listTools()).tools.map(tool => tool.name)
  t.ok((await names()).includes('everything__echo'))

  const connection = gateway.app.mcpProxy.connections.get('everything')
  const pid = connection?.pid as number
  t.ok(pid > 0, 'the stdio server runs as a child process')
  const inFlight = client.callTool({ name: 'everything__trigger-long-running-operation', arguments: { duration: 30, steps: 3 } })
    .then(() => undefined, (err: Error) => err)
  await waitFor('the long call to reach the upstream', () => gateway.app.mcpProxy.connections.get('everything')?.control?.inFlight === 1)
  process.kill(pid, 'SIGKILL')

  const error = await inFlight
  t.ok(error, 'the call in flight fails instead of hanging')
  t.match(error?.message, /killed by SIGKILL|closed/, 'and says the upstream went away')

  await waitFor('everything to leave the catalog', async () => !(await names()).includes('everything__echo'))
  t.ok((await names()).includes('other__still_here'), 'the other upstream keeps serving')
  t.same(await client.callTool({ name: 'other__still_here', arguments: {} }), { content: [{ type: 'text', text: 'other:still_here:{}' }] })
  const gone = await client.callTool({ name: 'everything__echo', arguments: { message: 'x' } }).then(() => undefined, (err: Error) => err)
  t.match(gone?.message, /Unknown tool: everything__echo/, 'its tools are unknown while it is down')
  await waitFor('a list_changed notification', () => changes > 0)

  await waitFor('everything to return', async () => (await names()).includes('everything__echo'))
  t.not(gateway.app.mcpProxy.connections.get('everything')?.pid, pid, 'a new process was started')
  t.same(await client.callTool({ name: 'everything__echo', arguments: { message: 'back' } }),
    { content: [{ type: 'text', text: 'Echo: back' }] }, 'and its tools work again')
  await waitFor('a second list_changed notification', () => changes > 1)
})

test('an HTTP upstream that stops leaves the catalog and returns on the same address', async (t) => {
  const flaky = await startHttpFixture(t, {
    name: 'flaky',
    tools: [{ name: 'hello' }, {
      name: 'slow',
      handler: async (_, signal) => {
        await sleep(30_000, signal)
        return { content: [] }
      }
    }]
  })
  const gateway = await startGateway(t, { ...fastRecovery, servers: [{ id: 'flaky', url: flaky.url }] })
  const client = await connectClient(t, gateway.mcp)
  const names = async () => (await client.listTools()).tools.map(tool => tool.name)
  t.same(await client.callTool({ name: 'flaky__hello', arguments: {} }), { content: [{ type: 'text', text: 'flaky:hello:{}' }] })
  const before = flaky.initializations

  const inFlight = client.callTool({ name: 'flaky__slow', arguments: {} }).then(() => undefined, (err: Error) => err)
  await waitFor('the slow call to reach the upstream', () => flaky.calls.some(c => c.tool === 'slow'))
  await flaky.stop()
  const error = await inFlight
  t.ok(error, 'the call in flight fails when the upstream goes away')
  t.match(error?.message, /ended without a response|closed|socket/, 'and says why')

  await waitFor('flaky to leave the catalog', async () => (await names()).length === 0)
  const health = await fetch(gateway.base + '/health')
  t.equal(health.status, 503, '/health reports no usable upstream')
  t.match(await health.json(), { status: 'unavailable', servers: { total: 1, up: 0 } })

  await flaky.start()
  await waitFor('flaky to return', async () => (await names()).includes('flaky__hello'))
  t.same(await client.callTool({ name: 'flaky__hello', arguments: { n: 2 } }), { content: [{ type: 'text', text: 'flaky:hello:{"n":2}' }] },
    'the client\'s call works again: its forgotten upstream session was re-initialized')
  t.ok(flaky.initializations > before, 'the restarted upstream saw new initializations')
  t.equal((await fetch(gateway.base + '/health')).status, 200)
})

test('an upstream that answers again is back within one health interval, however long it was down', async (t) => {
  const fixture = await startHttpFixture(t, { name: 'back', tools: [{ name: 'hi' }] })
  const gateway = await startGateway(t, {
    // Attempts at 0.2, 0.6, 1.4, 3.0, 6.2, 12.6 s (±20%) by the backoff alone: started at 7 s it would wait ~5 s;
    // the health interval caps each wait at 500 ms.
    upstreamDefaults: { reconnectMin: 200, reconnectMax: 60_000, healthInterval: 500 },
    servers: [{ id: 'back', url: fixture.url }]
  })
  await waitFor('up', () => gateway.app.mcpHealth.isUp('back'))
  await fixture.stop()
  await waitFor('down', () => gateway.app.mcpHealth.get('back')?.state === 'down')
  await sleep(7000)
  await fixture.start()
  await waitFor('back within an interval or so', () => gateway.app.mcpHealth.isUp('back'), 2500)
  t.pass('up again')
})
