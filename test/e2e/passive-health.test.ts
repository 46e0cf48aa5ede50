import { test } from 'tap'
import { startPlainServer } from '../fixtures/plain-mcp-server.js'
import { startGateway, waitFor } from '../helper.js'

/**
 * Passive health and safe retries against real replicas on loopback (the plain-node:http fixture, whose calls can
 * be made to answer HTTP 500 or slow down on demand): outlier ejection and its share cap, read-only calls retried
 * elsewhere on a 5xx while writes are not, calls that waited in a queue refused once the circuit opened, and
 * hedged read-only calls.
 */

async function callTool (base: string, name: string): Promise<{ status: number, body: Record<string, unknown>, ms: number }> {
  const started = performance.now()
  const res = await fetch(base + '/mcp/tools/call', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, arguments: {} }) })
  return { status: res.status, body: await res.json() as Record<string, unknown>, ms: performance.now() - started }
}

const textOf = (body: Record<string, unknown>) => (body.content as Array<{ text: string }> | undefined)?.[0]?.text

async function upstreamHealth (base: string): Promise<Record<string, Record<string, unknown>>> {
  const report = await (await fetch(base + '/upstream/health')).json() as { upstreams: Array<Record<string, unknown>> }
  return Object.fromEntries(report.upstreams.map(u => [u.id as string, u]))
}

test('a replica failing half its calls is ejected for ejectionMs, shows so, and comes back', async (t) => {
  const replicas = [await startPlainServer(t, 'a'), await startPlainServer(t, 'b'), await startPlainServer(t, 'c')]
  const [flaky] = replicas as [typeof replicas[0]]
  flaky.controls.failCalls = 2
  const gateway = await startGateway(t, {
    balancer: { strategy: 'round-robin' },
    circuitBreaker: { failureThreshold: 100 },
    outlierDetection: { errorRate: 0.5, minCalls: 6, ejectionMs: 800 },
    servers: replicas.map(r => ({ id: r.name, service: 'svc', url: r.url }))
  })
  for (let i = 0; i < 30; i++) await callTool(gateway.base, 'svc__write')
  const calls = flaky.controls.calls.length
  t.ok(calls >= 6 && calls <= 8, `ejected once its window had 6 calls, half failed (it had ${calls})`)
  const health = await upstreamHealth(gateway.base)
  t.match(health.a, { status: 'error', state: 'up', reason: /^ejected: \d+ of its last \d+ calls failed/, ejection: { ejected: true, until: String, ejections: 1 } })
  t.match(health.b, { status: 'active', ejection: { ejected: false, ejections: 0 } })
  const metrics = await (await fetch(gateway.base + '/metrics')).text()
  t.match(metrics, /mcp_gateway_outlier_ejections_total\{reason="error_rate"\} 1/)

  flaky.controls.failCalls = false
  await new Promise(resolve => setTimeout(resolve, 850))
  for (let i = 0; i < 6; i++) t.equal((await callTool(gateway.base, 'svc__write')).status, 200)
  t.ok(flaky.controls.calls.length > calls, 'back in rotation after ejectionMs')
  t.match((await upstreamHealth(gateway.base)).a, { status: 'active', ejection: { ejected: false, ejections: 1 } })
})

test('never more than maxEjectedShare of a service: with both replicas failing, one stays', async (t) => {
  const replicas = [await startPlainServer(t, 'a'), await startPlainServer(t, 'b')]
  for (const r of replicas) r.controls.failCalls = true
  const gateway = await startGateway(t, {
    balancer: { strategy: 'round-robin' },
    circuitBreaker: { failureThreshold: 0 },
    outlierDetection: { minCalls: 3, ejectionMs: 60_000 },
    servers: replicas.map(r => ({ id: r.name, service: 'svc', url: r.url }))
  })
  for (let i = 0; i < 20; i++) await callTool(gateway.base, 'svc__write')
  const health = await upstreamHealth(gateway.base)
  const ejected = Object.values(health).filter(u => (u.ejection as { ejected: boolean }).ejected)
  t.equal(ejected.length, 1, 'half of two: one')
  const kept = replicas.find(r => r.name !== ejected[0]?.id)
  const received = kept?.controls.calls.length ?? 0
  t.equal((await callTool(gateway.base, 'svc__write')).status, 502, 'the service keeps a replica, failing as it does')
  t.equal(kept?.controls.calls.length, received + 1)
})

test('a read-only call answered HTTP 500 is retried on another replica; a write is not', async (t) => {
  const broken = await startPlainServer(t, 'broken')
  const fine = await startPlainServer(t, 'fine')
  broken.controls.failCalls = true
  const gateway = await startGateway(t, {
    balancer: { strategy: 'round-robin' },
    circuitBreaker: { failureThreshold: 0 },
    outlierDetection: { errorRate: 0 },
    servers: [{ id: 'broken', service: 'svc', url: broken.url }, { id: 'fine', service: 'svc', url: fine.url }]
  })
  const reads = []
  for (let i = 0; i < 6; i++) reads.push(await callTool(gateway.base, 'svc__read'))
  t.same(reads.map(r => r.status), [200, 200, 200, 200, 200, 200], 'every read answered')
  t.same(reads.map(r => textOf(r.body)), Array(6).fill('fine'))
  t.ok(broken.controls.calls.length >= 2, 'the broken replica got its share and failed it')
  const writes = []
  for (let i = 0; i < 4; i++) writes.push(await callTool(gateway.base, 'svc__write'))
  const failed = writes.filter(w => w.status !== 200)
  t.ok(failed.length >= 1, 'writes sent to the broken replica fail')
  t.match(failed[0]?.body, { code: 'MCPGW_ERR_UPSTREAM_HTTP', message: /answered HTTP 500/ })
  t.equal(fine.controls.calls.filter(c => c === 'write').length, 4 - failed.length, 'and are not sent again elsewhere')
})

test('calls waiting for a slot are not sent once the circuit opened meanwhile', async (t) => {
  const lone = await startPlainServer(t, 'lone')
  lone.controls.failCalls = true
  lone.controls.delayMs = 150
  const gateway = await startGateway(t, {
    circuitBreaker: { failureThreshold: 1, openMs: 60_000 },
    servers: [{ id: 'lone', url: lone.url, maxConcurrent: 1, queue: { size: 10, timeoutMs: 5000 } }]
  })
  const answers = await Promise.all([1, 2, 3].map(() => callTool(gateway.base, 'lone__write')))
  t.equal(lone.controls.calls.length, 1, 'only the first call reached it')
  t.same(answers.map(a => a.status).sort(), [502, 503, 503])
  t.match(answers.find(a => a.status === 503)?.body, { code: 'MCPGW_ERR_CIRCUIT_OPEN' })
})

test('hedging: a read-only call slower than the replica\'s percentile goes to a second replica; the first answer wins', async (t) => {
  const slow = await startPlainServer(t, 'slow')
  const fast = await startPlainServer(t, 'fast')
  slow.controls.delayMs = 5
  fast.controls.delayMs = 5
  const gateway = await startGateway(t, {
    balancer: { strategy: 'round-robin' },
    hedging: { enabled: true, percentile: 90, minSamples: 5, minDelayMs: 30 },
    servers: [{ id: 'slow', service: 'svc', url: slow.url }, { id: 'fast', service: 'svc', url: fast.url }]
  })
  for (let i = 0; i < 12; i++) t.equal((await callTool(gateway.base, 'svc__read')).status, 200, 'warming up: both measured')
  slow.controls.delayMs = 3000
  const hedged = []
  for (let i = 0; i < 4; i++) hedged.push(await callTool(gateway.base, 'svc__read'))
  t.same(hedged.map(h => textOf(h.body)), ['fast', 'fast', 'fast', 'fast'], 'every read answered by the fast replica')
  t.ok(hedged.every(h => h.ms < 1500), `none waited for the slow one (${hedged.map(h => Math.round(h.ms)).join(', ')} ms)`)
  await waitFor('the losers cancelled upstream', () => slow.controls.cancelled >= 2)
  const writeStarted = slow.controls.calls.length
  const writes = []
  for (let i = 0; i < 2; i++) writes.push(await callTool(gateway.base, 'svc__write'))
  t.equal(slow.controls.calls.length, writeStarted + 1, 'a write goes to one replica only')
  t.ok(writes.some(w => textOf(w.body) === 'slow' && w.ms >= 2900), 'and waits for it')
  const sentBefore = slow.controls.calls.length + fast.controls.calls.length
  const aborted = await gateway.app.mcpProxy.callTool('svc__read', {}, { signal: AbortSignal.abort() }).then(() => 'answered', (err: Error) => err.message)
  t.match(aborted, /cancel/i, 'a call cancelled before it left is not hedged into being sent')
  t.equal(slow.controls.calls.length + fast.controls.calls.length, sentBefore)
  const metrics = await (await fetch(gateway.base + '/metrics')).text()
  t.match(metrics, /mcp_gateway_hedges_total\{outcome="sent"\} [2-9]/)
  t.match(metrics, /mcp_gateway_hedges_total\{outcome="won"\} [2-9]/)
  const health = await upstreamHealth(gateway.base)
  t.match(health.fast, { latency: { p50Ms: Number, p95Ms: Number, p99Ms: Number, samples: Number, windowMs: 60_000 } })
  t.ok((health.fast?.latency as { samples: number }).samples >= 8)
})

test('with one replica down, ejection does not take the last one that answers', async (t) => {
  const gone = await startPlainServer(t, 'gone')
  const flaky = await startPlainServer(t, 'flaky')
  flaky.controls.failCalls = 2
  const gateway = await startGateway(t, {
    upstreamDefaults: { reconnectMin: 60_000, reconnectMax: 60_000 },
    circuitBreaker: { failureThreshold: 0 },
    outlierDetection: { minCalls: 4 },
    servers: [{ id: 'gone', service: 'svc', url: gone.url }, { id: 'flaky', service: 'svc', url: flaky.url }]
  })
  await gone.stop()
  gateway.app.mcpProxy.connections.get('gone')?.suspect()
  await waitFor('gone down', () => gateway.app.mcpProxy.connections.get('gone')?.state === 'down')
  const statuses = []
  for (let i = 0; i < 20; i++) statuses.push((await callTool(gateway.base, 'svc__write')).status)
  t.equal(statuses.filter(s => s === 200).length, 10, `half the calls still answered: ${statuses.join(' ')}`)
  t.match((await upstreamHealth(gateway.base)).flaky, { ejection: { ejected: false } })
})
