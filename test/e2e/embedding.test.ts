import Fastify from 'fastify'
import { test } from 'tap'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { buildApp, configPlugin, mcpGateway, metricsPlugin } from '../../src/index.js'
import { startHttpFixture } from '../fixtures/mcp-server.js'

/**
 * The gateway inside someone else's Fastify app: `app.register(mcpGateway, { prefix, config })`. Its routes work
 * under the prefix, and nothing of it leaks into the host: no decorators, hooks, error handler, content-type parser
 * or metrics of the host change. The programmatic API works with no HTTP at all.
 */

test('embedded under a prefix, the gateway serves MCP and leaves the host app alone', async (t) => {
  const fixture = await startHttpFixture(t, { name: 'fx', tools: [{ name: 'hello' }] })
  const host = Fastify()
  t.teardown(() => host.close())
  host.decorate('hostThing', 42)
  let hostHookRuns = 0
  host.addHook('onRequest', async (request, reply) => {
    hostHookRuns++
    reply.header('x-host', 'yes')
  })
  host.setErrorHandler(async (err, request, reply) => reply.code(418).send({ host: true, message: (err as Error).message }))
  host.get('/hello', async () => ({ hello: 'world' }))
  host.get('/boom', async () => { throw new Error('host failure') })
  host.post('/echo', async (request) => ({ got: request.body }))

  await host.register(mcpGateway, { prefix: '/gw', config: { metrics: { defaultMetrics: false }, servers: [{ id: 'fx', url: fixture.url }] } })
  await host.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(host.server.address() as { port: number }).port}`

  const client = new Client({ name: 'embedded-test', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(base + '/gw/mcp')))
  t.teardown(() => client.close())
  t.same((await client.listTools()).tools.map(tool => tool.name), ['fx__hello'])
  t.same(await client.callTool({ name: 'fx__hello', arguments: {} }), { content: [{ type: 'text', text: 'fx:hello:{}' }] })
  const health = await fetch(base + '/gw/health')
  t.equal(health.status, 200)
  t.equal(health.headers.get('x-host'), 'yes', 'the host\'s own hooks reach the gateway\'s routes, as Fastify encapsulation intends')

  t.notOk(host.hasDecorator('mcpProxy'), 'no gateway decorator on the host')
  t.notOk(host.hasDecorator('mcpConfig'))
  t.equal((host as unknown as { hostThing: number }).hostThing, 42)

  const hello = await fetch(base + '/hello')
  t.same(await hello.json(), { hello: 'world' }, 'host routes answer as before')
  const boom = await fetch(base + '/boom')
  t.equal(boom.status, 418, 'the host\'s error handler still handles host routes')
  t.same(await boom.json(), { host: true, message: 'host failure' })
  const echo = await fetch(base + '/echo', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'plain text' })
  t.same(await echo.json(), { got: 'plain text' }, 'the host keeps its text/plain parser (the gateway removed it only for /gw/mcp)')
  const missing = await fetch(base + '/gw/nowhere')
  t.equal(missing.status, 404)

  const badJson = await fetch(base + '/gw/mcp', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' })
  t.equal((await badJson.json() as { error: { code: number } }).error.code, -32700, 'the gateway\'s own error handler answers under /gw/mcp')

  const metrics = await (await fetch(base + '/gw/metrics')).text()
  t.match(metrics, /route="\/gw\/mcp"/, 'gateway routes are counted under their full path')
  t.notMatch(metrics, /route="\/hello"/, 'host routes are not counted by the gateway')
  t.ok(hostHookRuns > 0)
})

test('two gateways in one process keep their own metrics and sessions', async (t) => {
  const fixture = await startHttpFixture(t, { name: 'fx', tools: [{ name: 'hello' }] })
  const host = Fastify()
  t.teardown(() => host.close())
  const config = { metrics: { defaultMetrics: false }, servers: [{ id: 'fx', url: fixture.url }] }
  await host.register(mcpGateway, { prefix: '/a', config })
  await host.register(mcpGateway, { prefix: '/b', config })
  await host.ready()
  const callA = await host.inject({ method: 'POST', url: '/a/mcp/tools/call', payload: { name: 'fx__hello', arguments: {} } })
  t.equal(callA.statusCode, 200)
  const a = (await host.inject('/a/metrics')).body
  const b = (await host.inject('/b/metrics')).body
  t.match(a, /route="\/a\/mcp\/tools\/call"/)
  t.notMatch(b, /route="\/a\/mcp\/tools\/call"/, 'each gateway has its own registry')
})

test('the programmatic API works with no HTTP routes', async (t) => {
  const fixture = await startHttpFixture(t, { name: 'fx', tools: [{ name: 'hello' }], resources: [{ uri: 'fx://doc', name: 'doc', text: 'the doc' }] })
  const app = await buildApp({ config: { metrics: { defaultMetrics: false }, servers: [{ id: 'fx', url: fixture.url }] }, routes: false }, { logger: false })
  t.teardown(() => app.close())
  await app.ready()
  t.same((await app.mcpProxy.listTools()).tools.map(tool => tool.name), ['fx__hello'])
  t.same(await app.mcpProxy.callTool('fx__hello', { n: 1 }), { content: [{ type: 'text', text: 'fx:hello:{"n":1}' }] })
  t.same(await app.mcpProxy.readResource('fx://doc'), { contents: [{ uri: 'fx://doc', mimeType: 'text/plain', text: 'the doc' }] })
  await t.rejects(app.mcpProxy.callTool('nope'), { code: 'MCPGW_ERR_UNKNOWN_TOOL' })
  const controller = new AbortController()
  controller.abort(new Error('changed my mind'))
  await t.rejects(app.mcpProxy.callTool('fx__hello', {}, { signal: controller.signal }), { code: 'MCPGW_ERR_REQUEST_CANCELLED' })
  t.equal((await app.inject({ method: 'POST', url: '/mcp', payload: {} })).statusCode, 404, 'no routes were registered')
})

test('single plugins register on their own', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(configPlugin, { config: { metrics: { prefix: 'solo_', defaultMetrics: false } } })
  await app.register(metricsPlugin)
  await app.ready()
  t.equal(app.mcpConfig.metrics.prefix, 'solo_')
  t.match(await app.mcpMetrics.registry.metrics(), /solo_upstream_calls_total/)
  await t.rejects(async () => {
    const bad = Fastify()
    await bad.register(configPlugin, { config: { prefixMode: 'sometimes' } })
    await bad.ready()
  }, { code: 'MCPGW_ERR_CONFIG_INVALID', message: /prefixMode: must be one of "always", "conditional", "never"/ })
  await t.rejects(async () => {
    const orphan = Fastify()
    await orphan.register(metricsPlugin)
    await orphan.ready()
  }, /mcp-gateway-config/, 'a plugin without its dependency says which one is missing')
})

test('a host that already has @fastify/websocket keeps it, and the gateway\'s /ws works on it', async (t) => {
  const { default: websocket } = await import('@fastify/websocket')
  const { WebSocket } = await import('ws')
  const fixture = await startHttpFixture(t, { name: 'fx', tools: [{ name: 'hello' }] })
  const host = Fastify()
  t.teardown(() => host.close())
  await host.register(websocket)
  host.get('/host-ws', { websocket: true }, (socket) => { socket.send('host socket') })
  await host.register(mcpGateway, { prefix: '/gw', config: { metrics: { defaultMetrics: false }, servers: [{ id: 'fx', url: fixture.url }] } })
  await host.listen({ host: '127.0.0.1', port: 0 })
  const base = `ws://127.0.0.1:${(host.server.address() as { port: number }).port}`

  const hostSocket = new WebSocket(base + '/host-ws')
  t.equal(await new Promise(resolve => hostSocket.once('message', data => resolve(data.toString()))), 'host socket', 'the host\'s WebSocket route works')
  hostSocket.close()

  const gatewaySocket = new WebSocket(base + '/gw/ws', 'mcp')
  await new Promise((resolve, reject) => { gatewaySocket.once('open', resolve); gatewaySocket.once('error', reject) })
  t.equal(gatewaySocket.protocol, 'mcp', 'the subprotocol is selected')
  gatewaySocket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'ws', version: '1' } } }))
  const answer = JSON.parse(await new Promise<string>(resolve => gatewaySocket.once('message', data => resolve(data.toString()))))
  t.equal(answer.result.serverInfo.name, 'fastify-mcp-gateway', 'the gateway serves MCP over the host\'s WebSocket server')
  gatewaySocket.close()
})
