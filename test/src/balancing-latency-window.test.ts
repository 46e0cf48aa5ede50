import { test } from 'tap'
import { LATENCY_WINDOW_MS, LatencyWindows } from '../../src/balancing/latency-window.js'

/** Latency percentiles over a sliding window, on a clock the test sets. */

function setup () {
  let now = 5_000_000
  const windows = new LatencyWindows(() => now)
  return { windows, at: (ms: number) => { now = 5_000_000 + ms } }
}

const within = (actual: number, expected: number, share = 0.125) => Math.abs(actual - expected) <= expected * share

test('percentiles of a known distribution are within the buckets\' 12.5%', async (t) => {
  const { windows } = setup()
  for (let ms = 1; ms <= 1000; ms++) windows.record('a', ms)
  const p = windows.percentiles('a')
  t.equal(p.samples, 1000)
  t.equal(p.windowMs, LATENCY_WINDOW_MS)
  t.ok(within(p.p50Ms, 500), `p50 ${p.p50Ms} ≈ 500`)
  t.ok(within(p.p95Ms, 950), `p95 ${p.p95Ms} ≈ 950`)
  t.ok(within(p.p99Ms, 990), `p99 ${p.p99Ms} ≈ 990`)
  windows.record('b', 0.2)
  windows.record('b', 10 * 60_000)
  t.match(windows.percentiles('b'), { p50Ms: 1, samples: 2 }, 'sub-millisecond calls land in the first bucket')
  t.ok(windows.percentiles('b').p99Ms > 100_000, 'anything past ~2 minutes in the last')
  t.same(windows.percentiles('none'), { p50Ms: 0, p95Ms: 0, p99Ms: 0, samples: 0, windowMs: LATENCY_WINDOW_MS })
})

test('calls older than the window are forgotten; a slot is reused when the ring comes round', async (t) => {
  const { windows, at } = setup()
  for (let i = 0; i < 100; i++) windows.record('a', 10)
  at(30_000)
  for (let i = 0; i < 100; i++) windows.record('a', 1000)
  t.equal(windows.percentiles('a').samples, 200)
  at(LATENCY_WINDOW_MS + 5_000)
  const later = windows.percentiles('a')
  t.equal(later.samples, 100, 'the first calls left the window')
  t.ok(within(later.p50Ms, 1000), 'only the slow ones remain')
  at(2 * LATENCY_WINDOW_MS)
  windows.record('a', 10)
  t.equal(windows.percentiles('a').samples, 1, 'the slot written again holds only the new call')
  windows.forget('a')
  t.equal(windows.percentiles('a').samples, 0)
})

test('quantile is reused for a second while few calls came since, then computed again', async (t) => {
  const { windows, at } = setup()
  t.same(windows.quantile('a', 0.95), { ms: 0, samples: 0 })
  windows.record('a', 20)
  t.equal(windows.quantile('a', 0.95).samples, 1)
  windows.record('a', 20)
  t.equal(windows.quantile('a', 0.95).samples, 2, 'early on: computed on each call')
  for (let i = 0; i < 48; i++) windows.record('a', 20)
  const first = windows.quantile('a', 0.95)
  t.ok(within(first.ms, 20) && first.samples === 50)
  for (let i = 0; i < 5; i++) windows.record('a', 400)
  t.same(windows.quantile('a', 0.95), first, 'a tenth more calls at most, within a second: the same answer')
  for (let i = 0; i < 500; i++) windows.record('a', 400)
  t.equal(windows.quantile('a', 0.95).samples, 555, 'many more: computed again')
  for (let i = 0; i < 5; i++) windows.record('a', 400)
  at(1500)
  const again = windows.quantile('a', 0.95)
  t.ok(within(again.ms, 400) && again.samples === 560, 'a second later: computed again')
  t.ok(within(windows.quantile('a', 0.5).ms, 400), 'another quantile is computed, not the cached one')
})
