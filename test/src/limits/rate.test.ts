import { test } from 'tap'
import { addressKey } from '../../../src/limits/address.js'
import { LocalCounters } from '../../../src/limits/local-counters.js'
import { take } from '../../../src/limits/rate.js'
import { RateLimiter } from '../../../src/limits/rate-limiter.js'
import { silentLogger } from '../../../src/logger.js'

/** The rate algorithm (GCRA), the in-process counters and the limiter's keys, on a clock the test sets. */

const rule = { max: 10, windowMs: 1000, burst: 3 }
const NOW = 1_796_000_000_123

test('a burst is admitted at once, then one request per interval', async (t) => {
  let tat: number | undefined
  const decisions = []
  for (let i = 0; i < 4; i++) {
    const step = take(tat, NOW, rule)
    if (step.decision.allowed) tat = step.tat
    decisions.push(step.decision)
  }
  t.same(decisions.map(d => d.allowed), [true, true, true, false])
  t.same(decisions.map(d => d.remaining), [2, 1, 0, 0])
  t.equal(decisions[3]?.retryAfterMs, 100, 'one interval (1000 ms / 10) until the next request')
  t.equal(decisions[3]?.resetMs, 300, 'three intervals until the whole burst is back')
  t.equal(take(tat, NOW + 99, rule).decision.allowed, false, 'not before the interval')
  const later = take(tat, NOW + 100, rule)
  t.equal(later.decision.allowed, true)
  t.equal(later.decision.remaining, 0)
})

test('awkward rates on real timestamps admit exactly their burst (no floating-point loss)', async (t) => {
  for (let max = 1; max <= 200; max++) {
    for (const windowMs of [1000, 60_000, 3_600_000]) {
      const r = { max, windowMs, burst: max }
      let tat: number | undefined
      let admitted = 0
      for (let i = 0; i <= max; i++) {
        const step = take(tat, NOW, r)
        if (step.decision.allowed) {
          admitted++
          tat = step.tat
          if (step.decision.remaining !== max - admitted) t.fail(`${max}/${windowMs}: remaining ${step.decision.remaining} after ${admitted}`)
        }
      }
      if (admitted !== max) t.fail(`${max} per ${windowMs} ms admitted ${admitted} at once`)
    }
  }
  t.pass('every rate from 1 to 200 per second, minute and hour')
})

test('an idle bucket refills to its burst, never beyond', async (t) => {
  const first = take(undefined, NOW, rule)
  t.equal(take(first.tat, NOW + 1_000_000, rule).decision.remaining, 2, 'a full burst less this request')
})

test('refused requests do not push the retry time out', async (t) => {
  const counters = new LocalCounters()
  const tight = [{ kind: 'principal' as const, key: 'k', rule: { max: 1, windowMs: 1000, burst: 1 } }]
  counters.take(tight, NOW)
  for (let i = 0; i < 100; i++) counters.take(tight, NOW + 500)
  t.equal(counters.take(tight, NOW + 1000).refused, -1, 'a client hammering while refused is admitted when its time comes')
})

test('several checks are charged together or not at all', async (t) => {
  const counters = new LocalCounters()
  const wide = { kind: 'tool' as const, key: 'wide', rule: { max: 10, windowMs: 60_000, burst: 10 } }
  const narrow = { kind: 'tool' as const, key: 'narrow', rule: { max: 1, windowMs: 60_000, burst: 1 } }
  t.equal(counters.take([wide, narrow], NOW).refused, -1)
  for (let i = 0; i < 5; i++) t.equal(counters.take([wide, narrow], NOW).refused, 1, 'the narrow one refuses')
  t.equal(counters.take([wide], NOW).decision.remaining, 8, 'the refusals took nothing from the wide one')
})

test('each kind of key has its own bounded table; gateway-wide keys are never pushed out', async (t) => {
  const counters = new LocalCounters(100)
  const shared = [{ kind: 'gateway' as const, key: 'quota', rule: { max: 1, windowMs: 60_000, burst: 1 } }]
  counters.take(shared, NOW)
  for (let i = 0; i < 1000; i++) counters.take([{ kind: 'address', key: `ip:${i}`, rule }], NOW)
  t.equal(counters.size('address'), 100)
  t.equal(counters.size('principal'), 0, 'a flood of addresses leaves the principals alone')
  t.equal(counters.take(shared, NOW).refused, 0, 'the spent gateway quota stays spent')
  await counters.close()
  t.equal(counters.size('address'), 0)
})

test('addresses: IPv6 counts as its /64, IPv4-mapped as IPv4', async (t) => {
  t.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64')
  t.equal(addressKey('2001:db8:1:2:ffff::1'), '2001:db8:1:2::/64')
  t.equal(addressKey('::ffff:10.1.2.3'), '10.1.2.3')
  t.equal(addressKey('10.1.2.3'), '10.1.2.3')
})

test('the limiter: per principal keyed by the /64 without auth, a changed rule starts afresh', async (t) => {
  const settings = { perIp: null, perTool: [], redis: null }
  const limiter = new RateLimiter({ settings: { ...settings, perPrincipal: { max: 2, windowMs: 60_000, burst: 2 } }, log: silentLogger })
  const client = (address: string) => ({ principal: null, protocolVersion: '2025-06-18', capabilities: {}, address })
  t.equal(limiter.admit(client('2001:db8::1'), 'tools/list'), undefined)
  t.equal(limiter.admit(client('2001:db8::2'), 'tools/list'), undefined)
  await t.rejects(limiter.admit(client('2001:db8::3'), 'tools/list') as Promise<void>, { code: 'MCPGW_ERR_RATE_LIMITED', message: /address 2001:db8::\/64/ },
    'another address of the same /64 shares the budget')
  t.equal(limiter.admit(client('2001:db8:0:1::1'), 'tools/list'), undefined, 'another /64 has its own')
  t.equal(limiter.admit(client('2001:db8::3'), 'ping'), undefined, 'ping is never limited')
  t.equal(limiter.admit({ ...client('x'), address: undefined }, 'tools/list'), undefined, 'no principal, no address: not limited')
  t.same(limiter.status(), { counting: 'local', limits: ['perPrincipal'] })
  await limiter.close()
})
