import { test } from 'tap'
import { startGateway, waitFor } from '../helper.js'
import { startHttpFixture } from '../fixtures/mcp-server.js'

/** /health for load balancers, /status for people, /info for clients discovering the gateway. */

test('/health is ok, degraded or unavailable (503) with the counts behind it', async (t) => {
  const up = await startHttpFixture(t, { name: 'up', tools: [{ name: 't1' }, { name: 't2' }] })
  const down = await startHttpFixture(t, { name: 'down', tools: [{ name: 't3' }] })
  const gateway = await startGateway(t, {
    upstreamDefaults: { reconnectMin: 100, reconnectMax: 200, healthInterval: 200, connectTimeout: 2000 },
    servers: [
      { id: 'up', url: up.url },
      { id: 'down', url: down.url },
      { id: 'off', url: down.url, enabled: false }
    ]
  })
  const health = async () => {
    const res = await fetch(gateway.base + '/health')
    return { status: res.status, body: await res.json() as { status: string } }
  }
  t.same(await health(), { status: 200, body: { status: 'ok', servers: { total: 3, up: 2, down: 0, disabled: 1 }, tools: 3 } },
    'a disabled server does not make the gateway degraded')

  await down.stop()
  await waitFor('down to be noticed', async () => (await health()).body.status === 'degraded')
  t.same(await health(), { status: 200, body: { status: 'degraded', servers: { total: 3, up: 1, down: 1, disabled: 1 }, tools: 2 } })

  await up.stop()
  await waitFor('up to be noticed', async () => (await health()).status === 503)
  t.same((await health()).body, { status: 'unavailable', servers: { total: 3, up: 0, down: 2, disabled: 1 }, tools: 0 })
})

test('/status shows each upstream, why it is not up, and the catalog', async (t) => {
  const fixture = await startHttpFixture(t, { name: 'fx', tools: [{ name: 'a' }] })
  const gateway = await startGateway(t, {
    startupWait: 5000,
    servers: [
      { id: 'fx', url: fixture.url, tags: ['blue'], weight: 3 },
      { id: 'missing', command: '/nonexistent/mcp-server', args: ['--token', 'sekrit'] },
      { id: 'keyed', url: fixture.url + '?key=sekrit', enabled: false }
    ]
  })
  const status = await (await fetch(gateway.base + '/status')).json() as Record<string, any>
  t.equal(status.name, 'fastify-mcp-gateway')
  t.match(status.version, /^\d+\.\d+\.\d+/)
  t.ok(status.uptime > 0)
  t.equal(status.sessions, 0)
  t.same(status.catalog, { tools: 1, resources: 0, resourceTemplates: 0, prompts: 0 })
  const fx = status.servers.find((s: { id: string }) => s.id === 'fx')
  t.match(fx, { id: 'fx', service: 'fx', transport: 'streamable-http', target: fixture.url, state: 'up', weight: 3, tags: ['blue'], tools: 1, server: { name: 'fx', version: '1.0.0' } })
  t.notOk('reason' in fx)
  const missing = status.servers.find((s: { id: string }) => s.id === 'missing')
  t.match(missing, { transport: 'stdio', target: '/nonexistent/mcp-server (+2 arguments)', state: /down|connecting/, tools: 0 })
  t.equal(status.servers.find((s: { id: string }) => s.id === 'keyed').target, fixture.url + '?…')
  t.notOk(JSON.stringify(status).includes('sekrit'), 'arguments and query strings (which carry tokens) are not shown')
  t.match(missing.reason, /command not found/, 'the reason it is down is shown')
  t.notOk(JSON.stringify(status).includes('headers'), 'no credentials in /status')
})

test('/info describes the endpoints under the prefix the gateway is mounted at', async (t) => {
  const gateway = await startGateway(t, { prefixMode: 'conditional', separator: '-' })
  const info = await (await fetch(gateway.base + '/info')).json() as Record<string, any>
  t.equal(info.prefixMode, 'conditional')
  t.equal(info.separator, '-')
  t.same(info.protocolVersions, ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'])
  t.same(info.transports, ['streamable-http', 'sse', 'websocket'])
  t.equal(info.endpoints.websocket, '/ws')
  t.equal(info.endpoints.mcp, '/mcp')
  t.equal(info.endpoints.toolsCall, '/mcp/tools/call')
  t.equal(info.endpoints.upstreamHealth, '/upstream/health')
  t.equal(info.endpoints.stats, '/stats')
})
