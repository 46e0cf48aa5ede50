import { test } from 'tap'
import { sleep, startHttpFixture } from '../fixtures/mcp-server.js'
import { startGateway, waitFor } from '../helper.js'

/**
 * maxConcurrent and its queue against a real upstream (an SDK fixture over Streamable HTTP whose tool takes 200 ms):
 * the upstream never sees more than its limit at once, the queue absorbs a burst, and what does not fit is refused
 * fast with 503 + Retry-After; with a second replica the overflow goes there instead.
 */

function slowReplica (t: Parameters<typeof startHttpFixture>[0], name: string, seen: { now: number, peak: number }) {
  return startHttpFixture(t, {
    name,
    tools: [{
      name: 'work',
      handler: async (_args, signal) => {
        seen.now++
        seen.peak = Math.max(seen.peak, seen.now)
        await sleep(200, signal)
        seen.now--
        return { content: [{ type: 'text', text: name }] }
      }
    }]
  })
}

test('at most maxConcurrent calls reach the upstream; the queue takes a burst; the rest is refused fast', async (t) => {
  const seen = { now: 0, peak: 0 }
  const upstream = await slowReplica(t, 'slow', seen)
  const gateway = await startGateway(t, { servers: [{ id: 'slow', url: upstream.url, maxConcurrent: 2, queue: { size: 3, timeoutMs: 5000 } }] })
  const call = () => fetch(gateway.base + '/mcp/tools/call', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'slow__work', arguments: {} })
  })
  const answers = await Promise.all(Array.from({ length: 8 }, () => call()))
  const statuses = answers.map(a => a.status).sort()
  t.same(statuses, [200, 200, 200, 200, 200, 503, 503, 503], '2 running + 3 queued served, 3 refused')
  t.equal(seen.peak, 2, 'the upstream never had more than 2 at once')
  const refused = answers.find(a => a.status === 503)
  t.equal(refused?.headers.get('retry-after'), '1')
  t.match(await refused?.json(), { code: 'MCPGW_ERR_UPSTREAM_BUSY', message: /2 calls in flight and 3 waiting/ })
  t.match(await (await fetch(gateway.base + '/metrics')).text(), /^mcp_gateway_upstream_busy_total\{reason="full"\} 3$/m, 'refusals counted')
})

test('with two replicas, what one cannot take goes to the other', async (t) => {
  const seenA = { now: 0, peak: 0 }
  const seenB = { now: 0, peak: 0 }
  const a = await slowReplica(t, 'a', seenA)
  const b = await slowReplica(t, 'b', seenB)
  const gateway = await startGateway(t, {
    servers: [
      { id: 'a', service: 'svc', url: a.url, maxConcurrent: 1, queue: { size: 0 } },
      { id: 'b', service: 'svc', url: b.url, maxConcurrent: 1, queue: { size: 0 } }
    ]
  })
  const answers = await Promise.allSettled(Array.from({ length: 2 }, () => gateway.app.mcpProxy.callTool('svc__work', {})))
  t.same(answers.map(a => a.status), ['fulfilled', 'fulfilled'], 'both served')
  t.equal(seenA.peak + seenB.peak, 2, 'one on each')
})

test('an upstream reconfigured while calls wait for a slot: the waiters are refused, no slot is lost', async (t) => {
  const seen = { now: 0, peak: 0 }
  const upstream = await slowReplica(t, 'slow', seen)
  const gateway = await startGateway(t, { servers: [{ id: 'slow', url: upstream.url, maxConcurrent: 1, queue: { size: 5, timeoutMs: 5000 } }] })
  const proxy = gateway.app.mcpProxy
  const first = proxy.callTool('slow__work', {})
  const waiting = proxy.callTool('slow__work', {})
  await sleep(50)
  gateway.app.mcpRegistry.update('slow', { id: 'slow', url: upstream.url, maxConcurrent: 1, queue: { size: 5, timeoutMs: 5000 }, timeout: 20_000 })
  await t.rejects(waiting, { code: 'MCPGW_ERR_UPSTREAM_BUSY', message: /reconfigured or removed while the call waited/ })
  await first.catch(() => {})
  await waitFor('the upstream back', () => gateway.app.mcpHealth.isUp('slow'))
  t.match(await proxy.callTool('slow__work', {}), { content: [{ text: 'slow' }] }, 'calls are served again')
  t.match(proxy.upstreamHealth()[0], { queue: { running: 0, queued: 0 }, inFlight: 0 }, 'nothing left held')
})
