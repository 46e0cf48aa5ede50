import { test } from 'tap'
import { DEFAULT_OUTLIERS, type Ejection, OutlierDetector, type OutlierSettings } from '../../src/balancing/outliers.js'

/** Outlier ejection on a clock the test sets, with services of a few replicas. */

function setup (overrides: Partial<OutlierSettings> = {}, services: Record<string, string[]> = { svc: ['a', 'b', 'c', 'd'] }) {
  let now = 1_000_000
  const ejections: Array<[string, Ejection]> = []
  const serviceOf = (id: string) => Object.values(services).find(ids => ids.includes(id)) ?? [id]
  const detector = new OutlierDetector({ ...DEFAULT_OUTLIERS, ...overrides }, serviceOf, (id, e) => ejections.push([id, e]), () => now)
  const calls = (id: string, ok: number, failed: number) => {
    for (let i = 0; i < ok; i++) detector.record(id, false)
    for (let i = 0; i < failed; i++) detector.record(id, true)
  }
  return { detector, ejections, calls, at: (ms: number) => { now = 1_000_000 + ms } }
}

test('an error rate at or over errorRate ejects, once the window has minCalls', async (t) => {
  const { detector, ejections, calls } = setup()
  calls('a', 0, 9)
  t.equal(detector.ejected('a'), false, '9 failures of 9 calls: under minCalls (10), not judged')
  calls('b', 6, 4)
  t.equal(detector.ejected('b'), false, '40% failing: under 50%')
  calls('a', 0, 1)
  t.equal(detector.ejected('a'), true, 'the 10th failure: 100% of 10')
  t.match(ejections, [['a', { kind: 'error_rate', ms: 30_000, ejections: 1, reason: /10 of its last 10 calls failed/ }]])
  t.match(detector.report('a'), { ejected: true, until: 1_000_000 + 30_000, ejections: 1, reason: /errorRate 0.5/ })
  t.same(detector.report('b'), { ejected: false, ejections: 0 })
  t.same(detector.report('never-called'), { ejected: false, ejections: 0 })
})

test('old calls leave the window: failures spread thinly over time do not eject', async (t) => {
  const { detector, calls, at } = setup()
  calls('a', 0, 8)
  at(11_000)
  calls('a', 4, 2)
  t.equal(detector.ejected('a'), false, 'the 8 failures of 11 s ago no longer count: 2 of 6')
  calls('a', 0, 3)
  t.equal(detector.ejected('a'), false, '5 of 9 within the window: not judged yet')
  calls('a', 0, 1)
  t.equal(detector.ejected('a'), true, 'the 10th call: 6 of 10 failed')
})

test('never more than maxEjectedShare of a service, rounded down: the only replica is never ejected', async (t) => {
  const { detector, calls } = setup({}, { svc: ['a', 'b', 'c', 'd'], lone: ['z'] })
  for (const id of ['a', 'b', 'c', 'd', 'z']) calls(id, 0, 20)
  t.same(['a', 'b', 'c', 'd'].map(id => detector.ejected(id)), [true, true, false, false], 'half of four: two')
  t.equal(detector.ejected('z'), false, 'a lone replica: its circuit breaker covers it')
  const share = setup({ maxEjectedShare: 0.75 })
  for (const id of ['a', 'b', 'c', 'd']) share.calls(id, 0, 20)
  t.same(['a', 'b', 'c', 'd'].map(id => share.detector.ejected(id)), [true, true, true, false])
})

test('an ejection ends by itself with a clean window; repeated ones last longer, and are forgotten over time', async (t) => {
  const { detector, ejections, calls, at } = setup({ ejectionMs: 1000, maxEjectionMs: 2500 })
  calls('a', 0, 10)
  t.equal(detector.ejected('a'), true)
  calls('a', 0, 50)
  t.equal(ejections.length, 1, 'calls ending while it is out (they were in flight) count for nothing')
  at(1000)
  t.equal(detector.ejected('a'), false, 'back after ejectionMs')
  calls('a', 0, 9)
  t.equal(detector.ejected('a'), false, 'its window starts clean: 9 calls are not enough to judge')
  calls('a', 0, 1)
  t.match(ejections[1], ['a', { ms: 2000, ejections: 2 }], 'ejected again soon: twice as long')
  at(3000)
  calls('a', 0, 10)
  t.match(ejections[2], ['a', { ms: 2500, ejections: 3 }], 'three times, capped at maxEjectionMs')
  at(5500 + 2000)
  t.equal(detector.report('a').ejections, 1, 'two ejectionMs back in rotation: two forgotten')
  calls('a', 0, 10)
  t.match(ejections[3], ['a', { ms: 2000, ejections: 2 }])
})

test('consecutiveFailures ejects on failures in a row when set; a success starts the count again', async (t) => {
  const { detector, ejections, calls } = setup({ consecutiveFailures: 3, errorRate: 0 })
  calls('a', 0, 2)
  calls('a', 1, 2)
  t.equal(detector.ejected('a'), false)
  calls('a', 0, 1)
  t.equal(detector.ejected('a'), true)
  t.match(ejections, [['a', { kind: 'consecutive', reason: '3 calls failed in a row' }]])
})

test('reconnected un-ejects at once; forget drops the record; both checks off records nothing', async (t) => {
  const { detector, calls } = setup()
  calls('a', 0, 10)
  calls('b', 0, 10)
  detector.reconnected('a')
  t.equal(detector.ejected('a'), false, 'an upstream that reconnected is back')
  detector.reconnected('c')
  detector.forget('b')
  t.equal(detector.ejected('b'), false)
  calls('c', 0, 10)
  t.equal(detector.ejected('c'), true, 'the ejected count stayed right: another may be ejected')
  const off = setup({ errorRate: 0, consecutiveFailures: 0 })
  off.calls('a', 0, 100)
  t.equal(off.detector.ejected('a'), false)
  t.same(off.detector.report('a'), { ejected: false, ejections: 0 })
})

test('replicas that cannot take calls anyway count towards the share: ejection never empties a service', async (t) => {
  let now = 0
  const down = new Set(['a'])
  const detector = new OutlierDetector({ ...DEFAULT_OUTLIERS, minCalls: 4, windowMs: 1000 }, () => ['a', 'b'], () => {}, () => now, (id) => !down.has(id))
  for (let i = 0; i < 20; i++) detector.record('b', i % 2 === 0)
  t.equal(detector.ejected('b'), false, 'a is down: ejecting b would leave nothing')
  down.clear()
  for (let i = 0; i < 20; i++) detector.record('b', i % 2 === 0)
  t.equal(detector.ejected('b'), false, 'held by the cap within the same bucket: judged again in the next one')
  now = 300
  for (let i = 0; i < 4; i++) detector.record('b', true)
  t.equal(detector.ejected('b'), true, 'a is back: b may go')
})
