import { test, type Test } from 'tap'
import { type HttpFixture, sleep, startHttpFixture } from '../fixtures/mcp-server.js'
import { type Gateway, startGateway } from '../helper.js'

/**
 * Balancing strategies against real replicas (SDK servers over Streamable HTTP, fixtures of this repo that answer
 * after a set delay), calls made through the gateway's programmatic API several at a time: the default (peak EWMA,
 * power of two choices) starves a slow replica, least-connections too, weighted keeps 3:1, consistent-hash keeps each
 * caller (API-key principals over REST) on its replica and moves only the callers of a replica that leaves.
 */

async function replicas (t: Test, delays: number[]): Promise<HttpFixture[]> {
  return Promise.all(delays.map((delay, i) => startHttpFixture(t, {
    name: `r${i}`,
    tools: [{ name: 'work', handler: async (_args, signal) => { await sleep(delay, signal); return { content: [{ type: 'text', text: `r${i}` }] } } }]
  })))
}

async function gatewayOver (t: Test, fixtures: HttpFixture[], config: Record<string, unknown>, weights?: number[]): Promise<Gateway> {
  return startGateway(t, {
    ...config,
    servers: fixtures.map((f, i) => ({ id: `r${i}`, service: 'svc', url: f.url, ...(weights === undefined ? {} : { weight: weights[i] }) }))
  })
}

/** `total` calls, `concurrency` at a time; the share each replica served. */
async function load (gateway: Gateway, fixtures: HttpFixture[], total: number, concurrency: number): Promise<number[]> {
  const before = fixtures.map(f => f.calls.length)
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < total) await gateway.app.mcpProxy.callTool('svc__work', {})
  }))
  return fixtures.map((f, i) => (f.calls.length - (before[i] as number)) / total)
}

test('peak-ewma (the default): a replica 10× slower gets far less than round-robin\'s third', async (t) => {
  const fixtures = await replicas(t, [5, 5, 50])
  const gateway = await gatewayOver(t, fixtures, {})
  await load(gateway, fixtures, 30, 3)
  const shares = await load(gateway, fixtures, 300, 6)
  // Under 10% on an idle machine (the unit test holds that on a set clock; bench:faults measures 0.4%). A loaded CI
  // machine adds the same delay to every answer and slows the calls, so the slow replica's latency fades between
  // them and it is tried more: 12.7–15% was seen there. Under a fifth still shows it avoided.
  t.ok((shares[2] as number) < 0.2, `the slow replica's share: ${shares.map(s => s.toFixed(3)).join(' ')}`)
})

test('least-connections: the slow replica holds its calls longer, so it gets fewer', async (t) => {
  const fixtures = await replicas(t, [5, 5, 50])
  const gateway = await gatewayOver(t, fixtures, { balancer: { strategy: 'least-connections' } })
  const shares = await load(gateway, fixtures, 300, 6)
  t.ok((shares[2] as number) < 0.25, `the slow replica's share: ${shares.map(s => s.toFixed(3)).join(' ')} (round-robin: 0.333)`)
})

test('weighted: 3:1 within a few percent', async (t) => {
  const fixtures = await replicas(t, [1, 1])
  const gateway = await gatewayOver(t, fixtures, { balancer: { strategy: 'weighted' } }, [3, 1])
  const shares = await load(gateway, fixtures, 400, 4)
  t.ok(Math.abs((shares[0] as number) - 0.75) < 0.03, `shares ${shares.map(s => s.toFixed(3)).join(' ')}`)
})

test('consistent-hash on the principal: each caller keeps its replica; a replica that leaves moves only its callers', async (t) => {
  const fixtures = await replicas(t, [1, 1, 1])
  const keys = Array.from({ length: 24 }, (_, i) => ({ name: `caller-${i}`, key: `key-of-caller-number-${i}` }))
  const gateway = await gatewayOver(t, fixtures, { balancer: { strategy: 'consistent-hash', hashOn: 'principal' }, auth: { apiKeys: keys } })
  /** The replica that served each caller's calls (all of them the same one, or 'mixed'). */
  const placement = async () => {
    const served: string[] = []
    for (const { key } of keys) {
      const seen = new Set<string>()
      for (let i = 0; i < 3; i++) {
        const res = await fetch(gateway.base + '/mcp/tools/call', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': key },
          body: JSON.stringify({ name: 'svc__work', arguments: {} })
        })
        seen.add(((await res.json()) as { content: Array<{ text: string }> }).content[0]?.text ?? '?')
      }
      served.push(seen.size === 1 ? [...seen][0] as string : 'mixed')
    }
    return served
  }
  const before = await placement()
  t.notOk(before.includes('mixed'), 'every caller\'s calls went to one replica')
  const counts = ['r0', 'r1', 'r2'].map(r => before.filter(s => s === r).length)
  t.ok(counts.every(c => c >= 3), `callers spread over the replicas: ${counts.join(' ')}`)
  gateway.app.mcpRegistry.remove('r2')
  const after = await placement()
  t.notOk(after.includes('mixed'))
  before.forEach((replica, i) => {
    if (replica !== 'r2') t.equal(after[i], replica, `caller-${i} stays on ${replica}`)
    else t.not(after[i], 'r2', `caller-${i} moves off the replica that left`)
  })
})
