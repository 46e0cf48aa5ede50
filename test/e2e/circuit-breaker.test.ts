import { test } from 'tap'
import { sleep, startHttpFixture } from '../fixtures/mcp-server.js'
import { connectClient, startGateway, waitFor } from '../helper.js'

/**
 * Circuit breakers against real replicas (SDK fixtures over Streamable HTTP whose tool can be made to hang past the
 * upstream timeout): a replica that keeps timing out is skipped while its circuit is open, a service whose only
 * replica is open fails fast with 503 + Retry-After, and a good probe closes the circuit again.
 */

test('a replica that keeps failing is skipped, then probed back; a lone one fails fast while open', async (t) => {
  let hang = true
  const spec = (name: string, flaky: boolean) => ({
    name,
    tools: [{
      name: 'work',
      handler: async (_args: Record<string, unknown>, signal: AbortSignal) => {
        if (flaky && hang) await sleep(2000, signal)
        return { content: [{ type: 'text' as const, text: name }] }
      }
    }]
  })
  const good = await startHttpFixture(t, spec('good', false))
  const bad = await startHttpFixture(t, spec('bad', true))
  const gateway = await startGateway(t, {
    balancer: { strategy: 'round-robin' },
    circuitBreaker: { failureThreshold: 3, openMs: 500, maxOpenMs: 1000 },
    servers: [
      { id: 'good', service: 'svc', url: good.url, timeout: 150 },
      { id: 'bad', service: 'svc', url: bad.url, timeout: 150 },
      { id: 'alone', url: bad.url, timeout: 150 }
    ]
  })
  const call = (name: string) => fetch(gateway.base + '/mcp/tools/call', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, arguments: {} })
  })
  const statuses: number[] = []
  for (let i = 0; i < 6; i++) statuses.push((await call('svc__work')).status)
  t.same(statuses.filter(s => s === 504).length, 3, 'the bad replica timed out three times (not idempotent: not retried)')
  t.equal(gateway.app.mcpBalancer.unavailable?.('svc'), undefined, 'the service is not refused: good is closed')
  const health = await (await fetch(gateway.base + '/upstream/health')).json() as { upstreams: Array<Record<string, unknown>> }
  const byId = Object.fromEntries(health.upstreams.map(u => [u.id, u]))
  t.match(byId.good, { status: 'active', state: 'up', circuit: { state: 'closed' }, inFlight: 0, queue: { running: 0, queued: 0 } })
  t.ok((byId.good?.calls as number) >= 3 && (byId.good?.latencyMs as number) > 0, 'the good replica is measured')
  t.match(byId.bad, { status: 'error', state: 'up', circuit: { state: 'open', failures: 3, opens: 1, retryAfterMs: Number } },
    'connected and answering pings, but its circuit is open: error')
  t.ok((byId.bad?.errorRate as number) > 0.2, 'with its error rate')
  const before = bad.calls.length
  for (let i = 0; i < 6; i++) t.equal((await call('svc__work')).status, 200, 'open: every call goes to the good replica')
  t.equal(bad.calls.length, before, 'none reached the bad one')

  for (let i = 0; i < 3; i++) await call('alone__work')
  const refused = await call('alone__work')
  t.equal(refused.status, 503, 'its only replica open: refused at once')
  t.ok(Number(refused.headers.get('retry-after')) >= 1, 'with Retry-After')
  t.match(await refused.json(), { code: 'MCPGW_ERR_CIRCUIT_OPEN', message: /circuit breaker stops them for now; retry in \d+ s/ })

  hang = false
  await waitFor('the probe to close the circuit', async () => {
    await call('alone__work')
    return gateway.app.mcpBalancer.unavailable?.('alone') === undefined && (await call('alone__work')).status === 200
  })
  const metrics = await (await fetch(gateway.base + '/metrics')).text()
  t.match(metrics, /mcp_gateway_circuit_transitions_total\{to="open"\} [2-9]/, 'transitions are counted')
  t.match(metrics, /mcp_gateway_circuit_transitions_total\{to="closed"\} [1-9]/)
})

test('a client whose own session is on a replica whose circuit opens moves to another replica', async (t) => {
  const hanging = new Set<string>()
  const spec = (name: string) => ({
    name,
    tools: [{
      name: 'work',
      handler: async (_args: Record<string, unknown>, signal: AbortSignal) => {
        if (hanging.has(name)) await sleep(2000, signal)
        return { content: [{ type: 'text' as const, text: name }] }
      }
    }]
  })
  const a = await startHttpFixture(t, spec('a'))
  const b = await startHttpFixture(t, spec('b'))
  const gateway = await startGateway(t, {
    circuitBreaker: { failureThreshold: 2, openMs: 60_000, maxOpenMs: 60_000 },
    servers: [{ id: 'a', service: 'svc', url: a.url, timeout: 150 }, { id: 'b', service: 'svc', url: b.url, timeout: 150 }]
  })
  await waitFor('both replicas', () => gateway.app.mcpHealth.isUp('a') && gateway.app.mcpHealth.isUp('b'))
  const client = await connectClient(t, gateway.mcp, { sampling: {} })
  const first = await client.callTool({ name: 'svc__work', arguments: {} }) as { content: Array<{ text: string }> }
  const home = first.content[0]?.text as string
  const other = home === 'a' ? 'b' : 'a'
  hanging.add(home)
  for (let i = 0; i < 2; i++) await client.callTool({ name: 'svc__work', arguments: {} }).catch(() => {})
  const moved = await client.callTool({ name: 'svc__work', arguments: {} }) as { content: Array<{ text: string }> }
  t.equal(moved.content[0]?.text, other, `the session left ${home}, whose circuit is open, for ${other}`)
})
