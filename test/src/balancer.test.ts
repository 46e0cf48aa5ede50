import { test } from 'tap'
import { ServiceBalancer } from '../../src/balancer.js'
import { ANONYMOUS } from '../../src/client-context.js'
import { DEFAULT_UPSTREAM, normalizeServer } from '../../src/config/normalize.js'
import type { UpstreamDefinition } from '../../src/config/types.js'
import { HealthMonitor, type UpstreamHealth } from '../../src/health.js'
import { silentLogger } from '../../src/logger.js'
import { Registry } from '../../src/registry.js'
import type { UpstreamState } from '../../src/upstream/connection.js'

const server = (id: string, service: string, weight = 1): UpstreamDefinition =>
  normalizeServer({ id, service, weight, url: `http://127.0.0.1:1/${id}` }, DEFAULT_UPSTREAM)

const health = (id: string, state: UpstreamState, service = 'svc'): UpstreamHealth =>
  ({ id, service, state, reason: state === 'up' ? undefined : 'test', since: 1 })

function setup (servers: UpstreamDefinition[], up: string[] = servers.map(s => s.id)) {
  const registry = new Registry(servers, { defaults: DEFAULT_UPSTREAM, file: null, log: silentLogger })
  const monitor = new HealthMonitor()
  for (const s of servers) monitor.update(health(s.id, up.includes(s.id) ? 'up' : 'down', s.service))
  const balancer = new ServiceBalancer(registry, monitor, { defaults: { strategy: 'round-robin', hashOn: 'address' } })
  const picks = (service: string, n: number, exclude?: ReadonlySet<string>) =>
    Array.from({ length: n }, () => balancer.pick(service, ANONYMOUS, exclude)?.id)
  return { registry, monitor, balancer, picks }
}

test('a single replica that is up is always picked', async (t) => {
  const { picks } = setup([server('a', 'svc')])
  t.same(picks('svc', 3), ['a', 'a', 'a'])
})

test('replicas that are up take turns', async (t) => {
  const { picks } = setup([server('a', 'svc'), server('b', 'svc'), server('c', 'svc')])
  t.same(picks('svc', 7), ['a', 'b', 'c', 'a', 'b', 'c', 'a'])
})

test('each service keeps its own turn', async (t) => {
  const { balancer } = setup([server('a1', 'a'), server('a2', 'a'), server('b1', 'b'), server('b2', 'b')])
  t.equal(balancer.pick('a', ANONYMOUS)?.id, 'a1')
  t.equal(balancer.pick('b', ANONYMOUS)?.id, 'b1')
  t.equal(balancer.pick('a', ANONYMOUS)?.id, 'a2')
  t.equal(balancer.pick('b', ANONYMOUS)?.id, 'b2')
})

test('replicas that are not up are skipped', async (t) => {
  const { picks, monitor } = setup([server('a', 'svc'), server('b', 'svc'), server('c', 'svc')], ['a', 'c'])
  t.same(picks('svc', 4), ['a', 'c', 'a', 'c'])
  for (const state of ['connecting', 'disabled', 'stopped'] as const) {
    monitor.update(health('c', state))
    t.same(picks('svc', 2), ['a', 'a'], `${state} is not up`)
  }
  monitor.update(health('b', 'up'))
  monitor.update(health('c', 'up'))
  t.same(new Set(picks('svc', 3)), new Set(['a', 'b', 'c']), 'back in turn once up again')
})

test('a replica without any health report is not up', async (t) => {
  const registry = new Registry([server('a', 'svc')], { defaults: DEFAULT_UPSTREAM, file: null, log: silentLogger })
  const balancer = new ServiceBalancer(registry, new HealthMonitor())
  t.equal(balancer.pick('svc', ANONYMOUS), undefined)
})

test('a replica with weight 0 is drained', async (t) => {
  const { picks } = setup([server('a', 'svc'), server('b', 'svc', 0), server('c', 'svc')])
  t.same(picks('svc', 4), ['a', 'c', 'a', 'c'])
  const only = setup([server('z', 'solo', 0)])
  t.equal(only.balancer.pick('solo', ANONYMOUS), undefined)
})

test('excluded replicas are skipped for that call only', async (t) => {
  const { balancer } = setup([server('a', 'svc'), server('b', 'svc')])
  t.equal(balancer.pick('svc', ANONYMOUS, new Set(['a']))?.id, 'b')
  t.equal(balancer.pick('svc', ANONYMOUS, new Set(['a']))?.id, 'b')
  t.equal(balancer.pick('svc', ANONYMOUS)?.id, 'a')
  t.equal(balancer.pick('svc', ANONYMOUS, new Set(['a', 'b'])), undefined, 'every replica already failed this call')
})

test('undefined when no replica can serve or the service is unknown', async (t) => {
  const { balancer } = setup([server('a', 'svc'), server('b', 'svc')], [])
  t.equal(balancer.pick('svc', ANONYMOUS), undefined)
  t.equal(balancer.pick('nope', ANONYMOUS), undefined)
})

test('the turn follows replicas added and removed in the registry', async (t) => {
  const { registry, monitor, picks } = setup([server('a', 'svc'), server('b', 'svc')])
  t.same(picks('svc', 2), ['a', 'b'])
  registry.add({ id: 'c', service: 'svc', url: 'http://127.0.0.1:1/c' })
  monitor.update(health('c', 'up'))
  t.same(picks('svc', 3), ['a', 'b', 'c'], 'a change of the service starts a new turn, with c in it')
  registry.remove('a')
  t.same(picks('svc', 4).sort(), ['b', 'b', 'c', 'c'])
})

test('HealthMonitor records states and tells listeners about every update', async (t) => {
  const monitor = new HealthMonitor()
  const seen: Array<[UpstreamHealth, UpstreamHealth | undefined]> = []
  const stop = monitor.onChange((h, previous) => seen.push([h, previous]))

  const connecting = health('a', 'connecting')
  const up = health('a', 'up')
  monitor.update(connecting)
  monitor.update(up)
  t.same(seen, [[connecting, undefined], [up, connecting]])
  t.equal(monitor.isUp('a'), true)
  t.equal(monitor.get('a'), up)
  t.equal(monitor.isUp('nope'), false)
  t.equal(monitor.get('nope'), undefined)

  monitor.update(health('b', 'down'))
  t.same(monitor.all().map(h => [h.id, h.state]), [['a', 'up'], ['b', 'down']])
  t.equal(monitor.isUp('b'), false)

  stop()
  monitor.update(health('a', 'down'))
  t.equal(seen.length, 3, 'an unsubscribed listener hears nothing more')
})

test('HealthMonitor.remove forgets an upstream and reports it stopped', async (t) => {
  const monitor = new HealthMonitor()
  const up = health('a', 'up')
  monitor.update(up)
  const seen: Array<[UpstreamHealth, UpstreamHealth | undefined]> = []
  monitor.onChange((h, previous) => seen.push([h, previous]))

  monitor.remove('a')
  t.equal(monitor.get('a'), undefined)
  t.equal(monitor.isUp('a'), false)
  t.same(monitor.all(), [])
  t.equal(seen.length, 1)
  const [gone, previous] = seen[0] as [UpstreamHealth, UpstreamHealth | undefined]
  t.equal(previous, up)
  t.match(gone, { id: 'a', service: 'svc', state: 'stopped', reason: 'removed' })
  t.type(gone.since, 'number')

  monitor.remove('a')
  monitor.remove('never-seen')
  t.equal(seen.length, 1, 'removing an unknown upstream is silent')
})
