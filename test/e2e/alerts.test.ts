import { createServer, type IncomingMessage } from 'node:http'
import { type Test, test } from 'tap'
import { startPlainServer } from '../fixtures/plain-mcp-server.js'
import { startGateway, waitFor } from '../helper.js'

/**
 * Alerts end to end: a real local webhook receiver (node:http, written for the test: it records what it is sent and
 * can fail on demand) gets an upstream's outage in Slack, Discord and generic JSON format, once each, and its end,
 * once each; a receiver that fails at first gets the message on a retry; an upstream made slow is flagged as
 * anomalous, not the others beside it. Upstreams are the plain-node:http fixture.
 */

interface Received { path: string, body: Record<string, any> }

async function receiver (t: Test) {
  const received: Received[] = []
  let failNext = 0
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (failNext > 0) {
        failNext--
        res.writeHead(500).end('not now')
        return
      }
      received.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) })
      res.writeHead(200).end('ok')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  return { base, received, failNext: (n: number) => { failNext = n } }
}

test('upstream_down: fired once to Slack, Discord and JSON webhooks, resolved once; a failing receiver gets it on a retry', async (t) => {
  const hooks = await receiver(t)
  const upstream = await startPlainServer(t, 'search')
  hooks.failNext(1)
  const gateway = await startGateway(t, {
    alertIntervalMs: 100,
    upstreamDefaults: { reconnectMin: 100, reconnectMax: 200 },
    webhooks: {
      slack: { url: hooks.base + '/slack', format: 'slack' },
      discord: { url: hooks.base + '/discord', format: 'discord' },
      generic: { url: hooks.base + '/json', headers: { authorization: 'Bearer hook-secret' } }
    },
    alerts: [{ name: 'search down', when: 'upstream_down', for: 300, notify: ['slack', 'discord', 'generic'] }],
    servers: [{ id: 'search', url: upstream.url }]
  })
  await upstream.stop()
  gateway.app.mcpProxy.connections.get('search')?.suspect()
  await waitFor('three firing messages', () => hooks.received.length >= 3, 10_000)
  await new Promise(resolve => setTimeout(resolve, 600))
  t.equal(hooks.received.length, 3, 'one message per webhook, however many evaluations saw it down')
  const byPath = Object.fromEntries(hooks.received.map(r => [r.path, r.body]))
  t.match(byPath['/slack'], { text: /^:red_circle: \*FIRING: search down on search\*/ })
  t.match(byPath['/discord'], { content: /FIRING: search down on search/, embeds: [{ color: 0xef4444, fields: Array }] })
  t.match(byPath['/json'], { status: 'firing', gateway: 'fastify-mcp-gateway', alert: { rule: 'search down', upstream: 'search', message: /not taking calls/ } })
  const stats = await (await fetch(gateway.base + '/stats')).json() as Record<string, any>
  t.match(stats.alerts, [{ rule: 'search down', upstream: 'search', state: 'firing', firedAt: String }])

  await upstream.start()
  await waitFor('three resolved messages', () => hooks.received.length >= 6, 10_000)
  t.same(hooks.received.slice(3).map(r => r.path).sort(), ['/discord', '/json', '/slack'])
  t.match(hooks.received.find(r => r.path === '/json' && r.body.status === 'resolved')?.body, { alert: { resolvedAt: String } })
  const after = await (await fetch(gateway.base + '/stats')).json() as Record<string, any>
  t.match(after.alerts, [{ state: 'resolved' }])
  const metrics = await (await fetch(gateway.base + '/metrics')).text()
  t.match(metrics, /mcp_gateway_alert_transitions_total\{to="firing"\} 1/)
  t.match(metrics, /mcp_gateway_alert_transitions_total\{to="resolved"\} 1/)
  t.match(metrics, /mcp_gateway_alert_notifications_total\{outcome="retried"\} 1/, 'the first delivery failed and was retried')
  t.match(metrics, /mcp_gateway_alert_notifications_total\{outcome="sent"\} 6/)
  t.match(metrics, /mcp_gateway_alerts_firing 0/)
})

test('anomaly detection flags the upstream made slow, not the others', { timeout: 90_000 }, async (t) => {
  const upstreams = [await startPlainServer(t, 'a'), await startPlainServer(t, 'b'), await startPlainServer(t, 'c')]
  for (const u of upstreams) u.controls.delayMs = 5
  const hooks = await receiver(t)
  const gateway = await startGateway(t, {
    alertIntervalMs: 100,
    // Warm-up by count (ten evaluations, 1 s here); a baseline that moves over half a minute, so the few seconds the
    // slowness takes to fill the 10–20 s window do not make it normal first.
    anomaly: { baselineMs: 30_000 },
    webhooks: { hook: { url: hooks.base + '/json' } },
    alerts: [{ when: 'anomaly', over: 4, notify: ['hook'] }],
    servers: upstreams.map(u => ({ id: u.name, url: u.url }))
  })
  const calls = async (id: string, n: number, concurrency = 1) => {
    let left = n
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (left-- > 0) {
        const res = await fetch(gateway.base + '/mcp/tools/call', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: `${id}__read`, arguments: {} }) })
        await res.arrayBuffer()
      }
    }))
  }
  // A baseline: ten evaluations (warmup) of steady calls on every upstream.
  const steady = Date.now() + 2000
  while (Date.now() < steady) await Promise.all(['a', 'b', 'c'].map(id => calls(id, 3)))
  // Ten times slower and more: clearly outside a baseline that the shared CI machine's own noise widens.
  upstreams[2]!.controls.delayMs = 1000
  const flagged = await waitFor('c flagged', async () => {
    await Promise.all([calls('a', 5), calls('b', 5), calls('c', 60, 30)])
    const stats = await (await fetch(gateway.base + '/stats')).json() as Record<string, any>
    const c = stats.upstreams.find((u: { id: string }) => u.id === 'c')
    return c.anomaly.latency > 4 ? stats : undefined
  }, 40_000)
  const scores = Object.fromEntries(flagged.upstreams.map((u: { id: string, anomaly: { latency: number } }) => [u.id, u.anomaly.latency]))
  t.ok(scores.c > 4, `c: ${scores.c}`)
  t.ok(scores.a < 4 && scores.b < 4, `a: ${scores.a}, b: ${scores.b}`)
  await waitFor('the anomaly alert sent', () => hooks.received.some(r => r.body.alert?.upstream === 'c'))
  t.notOk(hooks.received.some(r => r.body.alert?.upstream !== 'c'), 'only c alerted')
  const metrics = await (await fetch(gateway.base + '/metrics')).text()
  t.match(metrics, /mcp_gateway_upstream_anomaly_score\{server="c",kind="latency"\} \d/)
})
