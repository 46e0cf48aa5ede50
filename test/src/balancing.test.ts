import { test } from 'tap'
import { ServiceBalancer } from '../../src/balancer.js'
import { UpstreamLoad } from '../../src/balancing/load.js'
import type { ClientContext } from '../../src/client-context.js'
import { ANONYMOUS } from '../../src/client-context.js'
import { DEFAULT_UPSTREAM, normalizeServer } from '../../src/config/normalize.js'
import type { BalancerSettings, UpstreamDefinition } from '../../src/config/types.js'
import { HealthMonitor } from '../../src/health.js'
import { silentLogger } from '../../src/logger.js'
import { Registry } from '../../src/registry.js'

/**
 * Each balancing strategy's distribution over replicas that are all up, with load figures the test sets (the
 * forwarder keeps them in a running gateway; test/e2e/balancing.test.ts measures the default against real replicas).
 */

const server = (id: string, weight = 1, balancer?: Partial<BalancerSettings>): UpstreamDefinition =>
  normalizeServer({ id, service: 'svc', weight, url: `http://127.0.0.1:1/${id}`, ...(balancer === undefined ? {} : { balancer }) }, DEFAULT_UPSTREAM)

/** A deterministic random: a linear congruential sequence, so distributions are the same on every run. */
function seeded (seed = 42): () => number {
  let state = seed
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648
    return state / 2147483648
  }
}

function setup (servers: UpstreamDefinition[], defaults?: BalancerSettings, now?: () => number) {
  const registry = new Registry(servers, { defaults: DEFAULT_UPSTREAM, file: null, log: silentLogger })
  const health = new HealthMonitor()
  for (const s of servers) health.update({ id: s.id, service: s.service, state: 'up', reason: undefined, since: 1 })
  const balancer = new ServiceBalancer(registry, health, { ...(defaults === undefined ? {} : { defaults }), ...(now === undefined ? {} : { now }), random: seeded() })
  const count = (n: number, context: ClientContext = ANONYMOUS, each?: (id: string) => void) => {
    const counts: Record<string, number> = {}
    for (let i = 0; i < n; i++) {
      const id = balancer.pick('svc', context)?.id as string
      counts[id] = (counts[id] ?? 0) + 1
      each?.(id)
    }
    return counts
  }
  return { registry, health, balancer, load: balancer.load, count }
}

const client = (address: string): ClientContext => ({ ...ANONYMOUS, address })

test('weighted: smooth weighted round-robin gives 3:1 exactly, interleaved', async (t) => {
  const { balancer, count } = setup([server('a', 3), server('b', 1)], { strategy: 'weighted', hashOn: 'address' })
  t.same(Array.from({ length: 8 }, () => balancer.pick('svc', ANONYMOUS)?.id), ['a', 'a', 'b', 'a', 'a', 'a', 'b', 'a'])
  t.same(count(4000), { a: 3000, b: 1000 })
})

test('random: in proportion to weight, within a few percent', async (t) => {
  const { count } = setup([server('a', 3), server('b', 1)], { strategy: 'random', hashOn: 'address' })
  const counts = count(20_000)
  t.ok(Math.abs((counts.a ?? 0) / 20_000 - 0.75) < 0.02, `a took ${counts.a} of 20000`)
})

test('least-connections: the replica with the fewest calls in flight, ties in turn', async (t) => {
  const { load, count } = setup([server('a'), server('b'), server('c')], { strategy: 'least-connections', hashOn: 'address' })
  t.same(count(6), { a: 2, b: 2, c: 2 }, 'idle replicas take turns')
  load.started('a')
  load.started('a')
  load.started('b')
  t.same(count(3), { c: 3 }, 'c has none in flight')
  // Calls that start as they are picked (and never end): the in-flight counts level out.
  const counts = count(30, ANONYMOUS, id => load.started(id))
  t.same(counts, { a: 9, b: 10, c: 11 }, 'each ends with 11 in flight')
})

test('consistent hash: a caller keeps its replica; a replica that leaves moves only its own callers', async (t) => {
  const { balancer, registry } = setup([server('a'), server('b'), server('c')], { strategy: 'ip-hash', hashOn: 'principal' })
  const callers = Array.from({ length: 3000 }, (_, i) => client(`10.0.${Math.floor(i / 250)}.${i % 250}`))
  const before = callers.map(c => balancer.pick('svc', c)?.id)
  t.same(callers.map(c => balancer.pick('svc', c)?.id), before, 'the same replica every time')
  const shares = { a: before.filter(x => x === 'a').length, b: before.filter(x => x === 'b').length, c: before.filter(x => x === 'c').length }
  t.ok(Object.values(shares).every(n => n > 850 && n < 1150), `about a third each: ${JSON.stringify(shares)}`)
  registry.remove('b')
  const after = callers.map(c => balancer.pick('svc', c)?.id)
  const moved = callers.filter((_, i) => before[i] !== after[i]).length
  t.equal(moved, shares.b, 'only the callers of b moved')
  t.ok(callers.every((_, i) => before[i] === 'b' || before[i] === after[i]), 'nobody else did')
})

test('consistent hash on the principal or the session; callers with no key are spread', async (t) => {
  const { balancer } = setup([server('a'), server('b'), server('c'), server('d')], { strategy: 'consistent-hash', hashOn: 'principal' })
  const alice: ClientContext = { ...client('10.0.0.1'), principal: { kind: 'api-key', id: 'alice', roles: [], scopes: [] } }
  const elsewhere: ClientContext = { ...alice, address: '10.9.9.9' }
  t.equal(balancer.pick('svc', alice)?.id, balancer.pick('svc', elsewhere)?.id, 'the principal decides, not the address')
  const seen = new Set(Array.from({ length: 50 }, () => balancer.pick('svc', ANONYMOUS)?.id))
  t.ok(seen.size > 1, 'no key: spread at random')
  const sessions = setup([server('a'), server('b'), server('c')], { strategy: 'consistent-hash', hashOn: 'session' })
  const session = { ...client('10.0.0.1'), id: 'session-1' } as ClientContext
  t.equal(sessions.balancer.pick('svc', session)?.id, sessions.balancer.pick('svc', { ...session, address: '10.0.0.2' } as ClientContext)?.id)
})

test('health-based: a replica failing or slow gets a small share', async (t) => {
  // The figures fade with time since the last call: read at a fixed instant (2 s), not at this process's uptime.
  const { load, count } = setup([server('a'), server('b'), server('c')], { strategy: 'health-based', hashOn: 'address' }, () => 2000)
  for (let i = 0; i < 20; i++) {
    for (const id of ['a', 'b', 'c']) load.started(id)
    load.finished('a', 10, false, i * 100)
    load.finished('b', 10, i % 2 === 0, i * 100)
    load.finished('c', 200, false, i * 100)
  }
  const counts = count(10_000)
  t.ok((counts.a ?? 0) > 7000, `the healthy fast one takes most: ${JSON.stringify(counts)}`)
  t.ok((counts.b ?? 0) < 1000 && (counts.b ?? 0) > 0, 'the failing one little, but some (it keeps being measured)')
  t.ok((counts.c ?? 0) < 1000 && (counts.c ?? 0) > 0, 'the slow one little')
})

test('peak-ewma (the default): a slow replica gets under 10%, one piling up calls loses too', async (t) => {
  const { load, count, balancer } = setup([server('a'), server('b'), server('c')])
  for (const id of ['a', 'b', 'c']) {
    load.started(id)
    load.finished(id, id === 'c' ? 500 : 50, false, 0)
  }
  const counts = count(3000)
  t.ok((counts.c ?? 0) < 300, `the 10× slower replica: ${counts.c} of 3000`)
  // Latency alike, but a has 20 calls in flight: the comparisons go to b and c.
  load.finished('c', 50, false, 100_000)
  load.finished('c', 50, false, 200_000)
  for (let i = 0; i < 20; i++) load.started('a')
  const loaded = count(3000)
  t.ok((loaded.a ?? 0) < 300, `the piled-up replica: ${loaded.a} of 3000`)
  t.equal(balancer.pick('other', ANONYMOUS), undefined)
})

test('a service sets its own strategy on its servers; a change of servers takes a new one', async (t) => {
  const { balancer, registry } = setup([server('a', 1, { strategy: 'round-robin' }), server('b')])
  t.same(Array.from({ length: 4 }, () => balancer.pick('svc', ANONYMOUS)?.id), ['a', 'b', 'a', 'b'])
  registry.update('a', { id: 'a', service: 'svc', url: 'http://127.0.0.1:1/a', weight: 3, balancer: { strategy: 'weighted' } })
  t.same(Array.from({ length: 4 }, () => balancer.pick('svc', ANONYMOUS)?.id), ['a', 'a', 'b', 'a'])
})

test('peak-ewma: a replica that had a bad moment is tried again and takes its share once it answers well', async (t) => {
  let now = 1_000_000
  const { load, balancer } = setup([server('a'), server('b'), server('c')], undefined, () => now)
  const pick = () => balancer.pick('svc', ANONYMOUS)?.id as string
  load.started('a')
  load.finished('a', 2000, false, now)
  const picks: Record<string, number> = {}
  // Ten simulated minutes: every replica answers in 10 ms from now on.
  for (let i = 0; i < 60_000; i++) {
    now += 10
    const id = pick()
    picks[id] = (picks[id] ?? 0) + 1
    load.started(id)
    load.finished(id, 10, false, now)
  }
  t.ok((picks.a ?? 0) > 15_000, `a is back to its share: ${JSON.stringify(picks)}`)
})

test('peak-ewma: weights set how often a replica is drawn', async (t) => {
  const { count } = setup([server('a', 1), server('b', 3)])
  const counts = count(20_000)
  t.ok((counts.b ?? 0) > 12_000 && (counts.b ?? 0) < 17_000, `1:3 on idle replicas: ${JSON.stringify(counts)}`)
})

test('load figures: peak EWMA jumps up at once and decays; errors fade; gone upstreams are forgotten', async (t) => {
  const load = new UpstreamLoad()
  load.started('x')
  load.finished('x', 100, false, 0)
  t.equal(load.figures('x', 0).latencyMs, 100)
  load.started('x')
  load.finished('x', 500, true, 10)
  t.equal(load.figures('x', 10).latencyMs, 500, 'a slower answer counts at once')
  t.ok(load.figures('x', 10).errorRate > 0.05)
  t.ok(load.figures('x', 30_010).latencyMs < 30, 'an upstream avoided since fades: it will be tried again')
  load.started('x')
  load.finished('x', 100, false, 20_010)
  t.ok(load.figures('x', 20_010).latencyMs < 200, `faster answers pull it down over time: ${load.figures('x', 20_010).latencyMs}`)
  t.equal(load.figures('x').inFlight, 0)
  load.finished('never', 1, false)
  t.equal(load.figures('never').samples, 0)
  load.forget('x')
  t.equal(load.figures('x').samples, 0)
})
