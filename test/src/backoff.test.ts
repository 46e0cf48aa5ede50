import { test } from 'tap'
import { backoffDelay, jittered } from '../../src/backoff.js'

test('backoff grows exponentially, is capped, and spreads ±20%', async (t) => {
  t.equal(backoffDelay(0, 500, 30_000, () => 0.5), 500)
  t.equal(backoffDelay(1, 500, 30_000, () => 0.5), 1000)
  t.equal(backoffDelay(3, 500, 30_000, () => 0.5), 4000)
  t.equal(backoffDelay(20, 500, 30_000, () => 0.5), 30_000)
  t.equal(backoffDelay(0, 500, 30_000, () => 0), 400)
  t.equal(backoffDelay(0, 500, 30_000, () => 1), 600)
})

test('jittered periods stay within ±10%', async (t) => {
  t.equal(jittered(1000, () => 0), 900)
  t.equal(jittered(1000, () => 1), 1100)
})
