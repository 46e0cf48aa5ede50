import { test } from 'tap'
import { startHttpFixture } from '../fixtures/mcp-server.js'
import { startGateway } from '../helper.js'

/**
 * Retries of safe calls on another replica are bounded by the retry budget (real SDK fixtures over Streamable HTTP;
 * one stopped, so calls that land on it were never sent and may go elsewhere): with the default budget every call
 * is served; with none left, the failure stands — and both are counted.
 */

async function setup (t: Parameters<typeof startHttpFixture>[0], retryBudget?: Record<string, number>) {
  const spec = { name: 'svc', tools: [{ name: 'go' }] }
  const one = await startHttpFixture(t, spec)
  const two = await startHttpFixture(t, spec)
  const gateway = await startGateway(t, {
    balancer: { strategy: 'round-robin' },
    // Long health intervals: the stopped replica stays "up" for the test, so calls keep landing on it.
    upstreamDefaults: { healthInterval: 60_000, reconnectMin: 60_000, reconnectMax: 60_000 },
    ...(retryBudget === undefined ? {} : { retryBudget }),
    servers: [{ id: 'one', service: 'svc', url: one.url }, { id: 'two', service: 'svc', url: two.url }]
  })
  await one.stop()
  const results = await Promise.allSettled(Array.from({ length: 6 }, () => gateway.app.mcpProxy.callTool('svc__go', {})))
  const metrics = await (await fetch(gateway.base + '/metrics')).text()
  return { results, metrics }
}

test('the default budget retries calls that never reached the stopped replica', async (t) => {
  const { results, metrics } = await setup(t)
  t.same(results.map(r => r.status), Array(6).fill('fulfilled'))
  t.match(metrics, /^mcp_gateway_retries_total\{outcome="retried"\} [1-9]/m)
})

test('with the budget spent, the failure stands', async (t) => {
  const { results, metrics } = await setup(t, { ratio: 0, minPerSecond: 0 })
  const failed = results.filter(r => r.status === 'rejected')
  t.ok(failed.length >= 1, `${failed.length} of 6 failed`)
  t.match((failed[0] as PromiseRejectedResult).reason, { code: /MCPGW_ERR_UPSTREAM_(UNAVAILABLE|CLOSED)/ })
  t.match(metrics, /^mcp_gateway_retries_total\{outcome="refused"\} [1-9]/m)
})
