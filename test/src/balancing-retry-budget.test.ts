import { test } from 'tap'
import { RetryBudget } from '../../src/balancing/retry-budget.js'

/** The retry budget on a clock the test sets: a share of the calls plus a floor per second, over a sliding window. */

test('retries are bounded by ratio × calls + minPerSecond × window', async (t) => {
  let now = 1_000_000
  const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 1, windowMs: 10_000 }, () => now)
  for (let i = 0; i < 100; i++) budget.called()
  let allowed = 0
  for (let i = 0; i < 100; i++) if (budget.tryRetry()) allowed++
  t.equal(allowed, 30, '20% of 100 calls + 1 per second over 10 s')
  now += 5000
  t.equal(budget.tryRetry(), false, 'still spent half a window later')
  now += 6000
  t.equal(budget.tryRetry(), true, 'the window moved past the calls and retries that spent it')
})

test('a quiet gateway keeps its floor; no floor and no calls: no retries', async (t) => {
  let now = 0
  const floor = new RetryBudget({ ratio: 0.2, minPerSecond: 2, windowMs: 1000 }, () => now)
  t.equal(floor.tryRetry(), true)
  t.equal(floor.tryRetry(), true)
  t.equal(floor.tryRetry(), false)
  now = 5000
  t.equal(floor.tryRetry(), true, 'buckets the clock passed over are cleared')
  const none = new RetryBudget({ ratio: 0, minPerSecond: 0, windowMs: 1000 }, () => now)
  none.called()
  t.equal(none.tryRetry(), false)
})
