import { test } from 'tap'
import { CallStats } from '../../src/call-stats.js'

/** The statistics behind /stats on a clock the test sets. */

function setup (options: { maxTools?: number, recentErrors?: number } = {}) {
  let now = 10_000_000
  const stats = new CallStats({ ...options, now: () => now })
  return { stats, at: (ms: number) => { now = 10_000_000 + ms } }
}

test('figures per window: calls, errors (cancelled calls are not), rate and percentiles', async (t) => {
  const { stats, at } = setup()
  for (let i = 0; i < 90; i++) stats.record('a', 'svc', 'svc__read', 'tools/call', 'success', 10)
  for (let i = 0; i < 10; i++) stats.record('a', 'svc', 'svc__read', 'tools/call', 'timeout', 1000, 'did not answer')
  stats.record('a', 'svc', undefined, 'resources/read', 'cancelled', 5)
  const { minute, quarter } = stats.windows('a') ?? {}
  t.match(minute, { calls: 101, errors: 10, errorRate: 0.099, callsPerSec: 1.68 })
  t.ok(Math.abs((minute?.p50Ms ?? 0) - 10) <= 1.5 && Math.abs((minute?.p99Ms ?? 0) - 1000) <= 125, `p50 ${minute?.p50Ms}, p99 ${minute?.p99Ms}`)
  t.match(quarter, { calls: 101, errors: 10, callsPerSec: 0.11 })
  t.match(stats.windows(), { minute: { calls: 101 } }, 'the totals')
  t.equal(stats.windows('never'), undefined)
  at(70_000)
  t.match(stats.windows('a'), { minute: { calls: 0, p50Ms: 0 }, quarter: { calls: 101 } }, 'a minute later: out of the minute, in the quarter')
  at(16 * 60_000)
  t.match(stats.windows('a'), { quarter: { calls: 0 } })
  stats.forget('a')
  t.equal(stats.windows('a'), undefined)
})

test('top tools by calls over the quarter; past maxTools the least recently called goes', async (t) => {
  const { stats, at } = setup({ maxTools: 3 })
  for (const [tool, n] of [['t1', 5], ['t2', 9], ['t3', 1]] as const) {
    for (let i = 0; i < n; i++) stats.record('a', 'svc', tool, 'tools/call', 'success', 1)
  }
  t.same(stats.topTools(2).map(x => x.name), ['t2', 't1'])
  at(1000)
  stats.record('a', 'svc', 't1', 'tools/call', 'success', 1)
  stats.record('a', 'svc', 't2', 'tools/call', 'success', 1)
  stats.record('a', 'svc', 't4', 'tools/call', 'success', 1)
  t.same(stats.topTools(10).map(x => x.name), ['t2', 't1', 't4'], 't3, called least recently, made room')
  t.match(stats.topTools(1)[0], { service: 'svc', minute: { calls: 10 }, quarter: { calls: 10 } })
})

test('the latest errors, newest first, in a ring of recentErrors', async (t) => {
  const { stats } = setup({ recentErrors: 3 })
  stats.record('a', 'svc', 'svc__x', 'tools/call', 'tool_error', 1)
  t.match(stats.recentErrors(), [{ upstream: 'a', service: 'svc', tool: 'svc__x', method: 'tools/call', outcome: 'tool_error', message: 'the tool answered with isError: true', at: String }])
  for (let i = 1; i <= 4; i++) stats.record('b', 'svc2', undefined, 'resources/read', 'failure', 1, `failure ${i}`)
  t.same(stats.recentErrors().map(e => e.message), ['failure 4', 'failure 3', 'failure 2'], 'the oldest went')
  t.same(stats.recentErrors(1).map(e => e.message), ['failure 4'])
  t.notOk('tool' in (stats.recentErrors()[0] ?? {}), 'no tool for a resource read')
  const none = setup({ recentErrors: 0 })
  none.stats.record('a', 'svc', undefined, 'tools/call', 'failure', 1)
  t.same(none.stats.recentErrors(), [])
})
