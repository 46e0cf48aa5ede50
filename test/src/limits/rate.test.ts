import { test } from 'tap'
import { LocalCounters } from '../../../src/limits/local-counters.js'
import { take } from '../../../src/limits/rate.js'

/** The rate algorithm (GCRA) and the in-process counters, on a clock the test sets. */

const rule = { max: 10, windowMs: 1000, burst: 3 }

test('a burst is admitted at once, then one request per interval', async (t) => {
  let tat: number | undefined
  const decisions = []
  for (let i = 0; i < 4; i++) {
    const step = take(tat, 0, rule)
    if (step.decision.allowed) tat = step.tat
    decisions.push(step.decision)
  }
  t.same(decisions.map(d => d.allowed), [true, true, true, false])
  t.same(decisions.map(d => d.remaining), [2, 1, 0, 0])
  t.equal(decisions[3]?.retryAfterMs, 100, 'one interval (1000 ms / 10) until the next request')
  t.equal(decisions[3]?.resetMs, 300, 'three intervals until the whole burst is back')
  t.equal(take(tat, 99, rule).decision.allowed, false, 'not before the interval')
  const later = take(tat, 100, rule)
  t.equal(later.decision.allowed, true)
  t.equal(later.decision.remaining, 0)
})

test('an idle bucket refills to its burst, never beyond', async (t) => {
  const first = take(undefined, 0, rule)
  const muchLater = take(first.tat, 1_000_000, rule)
  t.equal(muchLater.decision.remaining, 2, 'a full burst less this request')
})

test('without a burst, max requests fit in a window', async (t) => {
  const counters = new LocalCounters()
  const even = { max: 5, windowMs: 60_000, burst: 5 }
  const allowed = Array.from({ length: 7 }, () => counters.take('k', even, 1000).allowed)
  t.same(allowed, [true, true, true, true, true, false, false])
  t.equal(counters.take('other', even, 1000).allowed, true, 'keys count apart')
  t.equal(counters.take('k', even, 1000 + 12_000).allowed, true, 'one more after a fifth of the window')
})

test('refused requests do not push the retry time out', async (t) => {
  const counters = new LocalCounters()
  const tight = { max: 1, windowMs: 1000, burst: 1 }
  counters.take('k', tight, 0)
  for (let i = 0; i < 100; i++) counters.take('k', tight, 500)
  t.equal(counters.take('k', tight, 1000).allowed, true, 'a client hammering while refused is admitted when its time comes')
})

test('the local counters keep a bounded number of keys', async (t) => {
  const counters = new LocalCounters(100)
  for (let i = 0; i < 1000; i++) counters.take(`ip:${i}`, rule, 0)
  t.equal(counters.size, 100)
  await counters.close()
  t.equal(counters.size, 0)
})
