import { test } from 'tap'
import { CircuitBreakers, type CircuitState } from '../../src/balancing/circuit.js'

/** The circuit breaker's states on a clock the test sets. */

const settings = { failureThreshold: 3, openMs: 1000, maxOpenMs: 3000, halfOpenCalls: 1 }

function setup (overrides: Partial<typeof settings> = {}) {
  let now = 0
  const moves: Array<[string, CircuitState, CircuitState]> = []
  const breakers = new CircuitBreakers({ ...settings, ...overrides }, (id, from, to) => moves.push([id, from, to]), () => now)
  return { breakers, moves, at: (ms: number) => { now = ms } }
}

test('failures in a row open it; a success in between starts the count again', async (t) => {
  const { breakers, moves } = setup()
  breakers.failed('a')
  breakers.failed('a')
  breakers.succeeded('a')
  breakers.failed('a')
  breakers.failed('a')
  t.equal(breakers.allows('a'), true, 'two in a row after the success: still closed')
  breakers.failed('a')
  t.equal(breakers.allows('a'), false, 'three in a row: open')
  t.match(breakers.report('a'), { state: 'open', failures: 3, opens: 1, retryAfterMs: 1000 })
  t.same(moves, [['a', 'closed', 'open']])
  t.equal(breakers.allows('b'), true, 'each upstream has its own')
})

test('open → half-open after openMs, one probe at a time; a good probe closes, a bad one reopens for twice as long', async (t) => {
  const { breakers, moves, at } = setup()
  for (let i = 0; i < 3; i++) breakers.failed('a')
  at(999)
  t.equal(breakers.allows('a'), false)
  at(1000)
  t.equal(breakers.allows('a'), true, 'half-open: a probe may go')
  breakers.started('a')
  t.equal(breakers.allows('a'), false, 'only one probe at a time')
  breakers.failed('a')
  t.match(breakers.report('a'), { state: 'open', opens: 2, retryAfterMs: 2000 }, 'the probe failed: open for 2 s')
  at(3000)
  t.equal(breakers.allows('a'), true)
  breakers.started('a')
  breakers.failed('a')
  t.match(breakers.report('a'), { state: 'open', opens: 3, retryAfterMs: 3000 }, 'never longer than maxOpenMs')
  at(6000)
  t.equal(breakers.allows('a'), true)
  breakers.started('a')
  breakers.succeeded('a')
  t.same(breakers.report('a'), { state: 'closed', failures: 0, opens: 0 }, 'a good probe closes it and forgets the opens')
  t.same(moves.map(m => m[2]), ['open', 'half-open', 'open', 'half-open', 'open', 'half-open', 'closed'])
})

test('failureThreshold 0 never opens; a forgotten upstream starts closed', async (t) => {
  const off = setup({ failureThreshold: 0 })
  for (let i = 0; i < 100; i++) off.breakers.failed('a')
  t.equal(off.breakers.allows('a'), true)
  const { breakers } = setup()
  for (let i = 0; i < 3; i++) breakers.failed('a')
  breakers.forget('a')
  t.equal(breakers.allows('a'), true)
  breakers.succeeded('never-seen')
  t.same(breakers.report('never-seen'), { state: 'closed', failures: 0, opens: 0 })
})

test('a cancelled probe gives its slot back and closes nothing', async (t) => {
  const { breakers, at } = setup()
  for (let i = 0; i < 3; i++) breakers.failed('a')
  at(1000)
  t.equal(breakers.allows('a'), true)
  breakers.started('a')
  breakers.abandoned('a')
  t.match(breakers.report('a'), { state: 'half-open', opens: 1 }, 'still half-open: a cancellation tells nothing')
  t.equal(breakers.allows('a'), true, 'the probe slot is free again')
  breakers.failed('a')
  breakers.failed('a')
  t.match(breakers.report('a'), { state: 'open', opens: 2 }, 'failures of calls sent before it reopened do not stack')
})

test('an open circuit whose time is up reports half-open; an upstream that reconnected turns an open one half-open at once', async (t) => {
  const { breakers, moves, at } = setup()
  for (let i = 0; i < 3; i++) breakers.failed('a')
  at(1000)
  t.match(breakers.report('a'), { state: 'half-open' }, 'the next call finds it half-open: it says so')
  t.notOk('retryAfterMs' in breakers.report('a'))
  for (let i = 0; i < 3; i++) breakers.failed('b')
  breakers.reconnected('b')
  t.equal(breakers.allows('b'), true, 'a probe may go at once')
  t.same(moves.at(-1), ['b', 'open', 'half-open'])
  breakers.reconnected('b')
  breakers.reconnected('c')
  t.equal(moves.length, 3, 'only an open circuit moves')
})
