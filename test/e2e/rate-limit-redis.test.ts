import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'tap'
import { RedisCounters } from '../../src/limits/redis-counters.js'
import { silentLogger } from '../../src/logger.js'
import { type CliGateway, freePort, startCliGateway, startGateway, stopChild, waitFor } from '../helper.js'
import { redisServer, startRedis } from '../fixtures/redis-server.js'

/**
 * Rate limits shared through a real redis-server by two gateway processes (the CLI, each in its own process):
 * a principal's budget is one across both; Redis stopped mid-test → both keep serving on local counters and say so
 * in the log and /status; Redis back → shared again. redis-server: see fixtures/redis-server.ts.
 */

const KEY = 'alice-key-0123456789abcdef'

const list = (gateway: CliGateway) => fetch(gateway.base + '/mcp/tools/list', {
  method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body: '{}'
}).then(response => response.status)

const counting = (gateway: CliGateway) => fetch(gateway.base + '/status', { headers: { 'x-api-key': KEY } })
  .then(response => response.json() as Promise<{ rateLimit: { counting: string, redis: { state: string, reason?: string } } }>)
  .then(status => status.rateLimit)

test('two gateway processes share a per-principal limit through Redis, and fall back to local counting without it', async (t) => {
  const binary = redisServer()
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gateway-redis-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const redisPort = await freePort()
  let redis = await startRedis(t, binary, redisPort)
  const config = {
    auth: { apiKeys: [{ name: 'alice', key: KEY }] },
    rateLimit: { perPrincipal: { max: 6, windowMs: 600_000 }, redis: { url: `redis://127.0.0.1:${redisPort}`, keyPrefix: `test-${redisPort}:` } }
  }
  const [a, b] = await Promise.all([startCliGateway(t, dir, 'a', config), startCliGateway(t, dir, 'b', config)])
  await waitFor('both gateways on Redis', async () => (await counting(a)).counting === 'redis' && (await counting(b)).counting === 'redis')

  // /status is not a JSON-RPC request: only the lists count. 3 + 3 = the budget of 6, wherever they land.
  t.same(await Promise.all([list(a), list(b), list(a), list(b), list(a), list(b)]), Array(6).fill(200), 'six requests across both processes')
  t.equal(await list(a), 429, 'the seventh is refused by A')
  t.equal(await list(b), 429, 'and by B: they count together')

  await stopChild(redis)
  t.equal(await list(a), 200, 'Redis gone: A serves, counting on its own')
  t.equal(await list(b), 200, 'so does B')
  const local = await waitFor('A to report local counting', async () => { const s = await counting(a); return s.redis.state === 'unavailable' ? s : undefined })
  t.match(local, { counting: 'local', redis: { state: 'unavailable', reason: String } })
  t.match(a.log(), /rate limits: Redis is unavailable; requests are counted in this process alone until it is back/, 'the log says so')
  const warning = a.log().split('\n').find(line => line.includes('Redis is unavailable')) ?? ''
  t.notMatch(warning, new RegExp(String(redisPort)), 'without the address of Redis')

  redis = await startRedis(t, binary, redisPort)
  await waitFor('both back on Redis', async () => (await counting(a)).counting === 'redis' && (await counting(b)).counting === 'redis', 30_000)
  t.match(a.log(), /Redis answers again; the counters are shared again/)
  // The restarted server is empty (no persistence): the shared budget begins again, and is one budget again.
  const statuses = []
  for (let i = 0; i < 8; i++) statuses.push(await list(i % 2 === 0 ? a : b))
  t.same(statuses, [200, 200, 200, 200, 200, 200, 429, 429], 'shared again after the restart')
})

test('a Redis that stops answering: a request waits commandTimeout, then counting is local until Redis answers again', async (t) => {
  const binary = redisServer()
  const redisPort = await freePort()
  const redis = await startRedis(t, binary, redisPort)
  const gateway = await startGateway(t, {
    servers: [],
    rateLimit: { perPrincipal: { max: 1000, windowMs: 60_000 }, redis: { url: `redis://127.0.0.1:${redisPort}`, keyPrefix: `hung-${redisPort}:`, commandTimeout: 150 } }
  })
  const limiter = gateway.app.mcpRateLimit
  await waitFor('the limiter on Redis', () => limiter?.status().counting === 'redis')
  const tools = () => fetch(gateway.base + '/mcp/tools/list', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).then(r => r.status)
  t.equal(await tools(), 200)
  redis.kill('SIGSTOP')
  t.teardown(() => { redis.kill('SIGCONT') })
  t.equal(await tools(), 200, 'answered while Redis hangs: the command timed out, the request was counted here')
  t.match(limiter?.status(), { counting: 'local', redis: { state: 'unavailable', reason: /timed out/i } })
  t.equal(await tools(), 200)
  redis.kill('SIGCONT')
  await waitFor('the limiter back on Redis', async () => { await tools(); return limiter?.status().counting === 'redis' })
  t.pass('shared again once Redis answers')
})

test('the Redis script decides as rate.ts does: whole bursts for awkward rates, several checks all or nothing', async (t) => {
  const redisPort = await freePort()
  await startRedis(t, redisServer(), redisPort)
  const counters = new RedisCounters({ url: `redis://127.0.0.1:${redisPort}`, keyPrefix: 'script:', commandTimeout: 1000, log: silentLogger })
  t.teardown(() => counters.close())
  await waitFor('the counters on Redis', () => counters.status.counting === 'redis')
  for (const max of [1, 6, 7, 13, 23, 60, 70, 199]) {
    const rule = { max, windowMs: 3_600_000, burst: max }
    const remaining: number[] = []
    for (let i = 0; i <= max; i++) {
      const outcome = await counters.take([{ kind: 'principal', key: `rate-${max}`, rule }])
      if (outcome.refused === -1) remaining.push(outcome.decision.remaining)
    }
    t.same(remaining, Array.from({ length: max }, (_, i) => max - 1 - i), `${max} per hour: a burst of ${max}, counted down`)
  }
  const wide = { kind: 'tool' as const, key: 'wide', rule: { max: 10, windowMs: 3_600_000, burst: 10 } }
  const narrow = { kind: 'tool' as const, key: 'narrow', rule: { max: 1, windowMs: 3_600_000, burst: 1 } }
  t.equal((await counters.take([wide, narrow])).refused, -1)
  const refused = await counters.take([wide, narrow])
  t.equal(refused.refused, 1, 'the second check refuses')
  t.ok(refused.decision.retryAfterMs > 3_500_000, 'with its retry time')
  t.equal((await counters.take([wide])).decision.remaining, 8, 'the refusal took nothing from the first')
})
