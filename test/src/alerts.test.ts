import { test } from 'tap'
import { type Alert, type AlertRule, AlertRules, type AlertTransition, type UpstreamObservation } from '../../src/alerts/alert-rules.js'
import { AnomalyDetector } from '../../src/alerts/anomaly.js'
import { formatAlert } from '../../src/alerts/webhooks.js'

/** Alert rules, anomaly scores and the webhook bodies, on observations and clocks the test sets. */

const rule = (overrides: Partial<AlertRule>): AlertRule => ({ name: 'r', when: 'upstream_down', over: 0, forMs: 0, notify: ['hook'], upstreams: [], minCalls: 10, ...overrides })
const upstream = (overrides: Partial<UpstreamObservation>): UpstreamObservation => ({
  id: 'a', service: 'a', status: 'active', reason: undefined, calls: 100, errorRate: 0, p99Ms: 10, anomaly: { latency: 0, errors: 0 }, ...overrides
})

function setup (rules: AlertRule[]) {
  const told: Array<[AlertTransition, string, string]> = []
  const alerts = new AlertRules(rules, (alert: Alert, transition) => told.push([transition, alert.rule, alert.upstream]))
  return { alerts, told }
}

test('an alert fires once its condition held for `for`, is told once, and resolves once', async (t) => {
  const { alerts, told } = setup([rule({ name: 'down', forMs: 1000 })])
  alerts.evaluate(0, [upstream({ status: 'error', reason: 'connect ECONNREFUSED' })])
  t.match(alerts.active(), [{ state: 'pending', upstream: 'a', since: 0 }])
  t.same(told, [], 'pending: nobody is told yet')
  alerts.evaluate(999, [upstream({ status: 'error' })])
  alerts.evaluate(1000, [upstream({ status: 'error', reason: 'still down' })])
  alerts.evaluate(5000, [upstream({ status: 'error' })])
  t.same(told, [['firing', 'down', 'a']], 'fired once, however many evaluations')
  t.match(alerts.active(), [{ state: 'firing', firedAt: 1000 }])
  alerts.evaluate(6000, [upstream({})])
  alerts.evaluate(7000, [upstream({})])
  t.same(told, [['firing', 'down', 'a'], ['resolved', 'down', 'a']])
  t.same(alerts.active(), [])
  t.match(alerts.resolved(), [{ state: 'resolved', resolvedAt: 6000 }])
})

test('a pending alert that clears before `for` ends silently; an upstream no longer observed resolves', async (t) => {
  const { alerts, told } = setup([rule({ forMs: 1000 }), rule({ name: 'now' })])
  alerts.evaluate(0, [upstream({ status: 'error' })])
  alerts.evaluate(500, [upstream({})])
  t.same(told, [['firing', 'now', 'a'], ['resolved', 'now', 'a']], 'only the rule without `for` fired')
  alerts.evaluate(600, [upstream({ status: 'error' })])
  alerts.evaluate(700, [])
  t.same(told.slice(2), [['firing', 'now', 'a'], ['resolved', 'now', 'a']], 'removed: resolved')
})

test('each condition, its threshold, minCalls, and upstream globs', async (t) => {
  const { alerts, told } = setup([
    rule({ name: 'errors', when: 'error_rate', over: 0.1 }),
    rule({ name: 'slow', when: 'latency_p99', over: 500, upstreams: ['search-*'] }),
    rule({ name: 'odd', when: 'anomaly', over: 4 })
  ])
  alerts.evaluate(0, [
    upstream({ id: 'a', errorRate: 0.5, calls: 9 }),
    upstream({ id: 'b', errorRate: 0.11 }),
    upstream({ id: 'search-1', p99Ms: 900 }),
    upstream({ id: 'other', p99Ms: 900 }),
    upstream({ id: 'c', anomaly: { latency: 4.5, errors: 0 } }),
    upstream({ id: 'd', anomaly: { latency: 1, errors: 6 } })
  ])
  t.same(told.map(([, r, u]) => `${r}:${u}`).sort(), ['errors:b', 'odd:c', 'odd:d', 'slow:search-1'])
  const messages = Object.fromEntries(alerts.active().map(a => [a.upstream, a.message]))
  t.match(messages.b, /11\.0% of its calls failed in the last minute \(over 10\.0%\)/)
  t.match(messages['search-1'], /p99 latency 900 ms/)
  t.match(messages.c, /its latency is anomalous \(score 4\.5 over 4\)/)
  t.match(messages.d, /its error rate is anomalous/)
})

test('anomaly scores: a baseline is learnt first; a rise scores, a fall does not; one bad spell does not become normal', async (t) => {
  let now = 0
  // Observations 10 s apart against a 45 s time constant: each weighs 1 − e^(−10/45) ≈ 0.2.
  const detector = new AnomalyDetector({ baselineMs: 45_000, warmup: 10, minCalls: 5 }, () => (now += 10_000))
  for (let i = 0; i < 12; i++) t.ok(detector.observe('a', 50, 20 + (i % 3), 0).latency < 1, 'steady, or still learning: no score to speak of')
  t.same(detector.observe('a', 2, 500, 1), { latency: 0, errors: 0, observations: 12 }, 'too few calls: not an observation, and no score stands on it')
  const slow = detector.observe('a', 50, 200, 0)
  t.ok(slow.latency > 4, `10× slower: score ${slow.latency}`)
  t.equal(detector.observe('b', 50, 20, 0).latency, 0)
  const fast = detector.observe('a', 50, 5, 0)
  t.equal(fast.latency, 0, 'faster is not an anomaly')
  const again = detector.observe('a', 50, 200, 0.3)
  t.ok(again.latency > 2, `still anomalous after one slow observation: ${again.latency}`)
  t.ok(again.errors > 4, `errors rising from 0 to 30%: ${again.errors}`)
  t.same(detector.observe('a', 0, 0, 0), { latency: 0, errors: 0, observations: 15 }, 'gone quiet (drained, down): the anomaly ends')
  t.same(detector.scores('nope'), { latency: 0, errors: 0, observations: 0 })
  detector.forget('a')
  t.equal(detector.scores('a').observations, 0)
})

test('the baselines learn by time: evaluated ten times as often, they get used to a change no faster', async (t) => {
  const rarely = (() => { let now = 0; return { d: new AnomalyDetector({ baselineMs: 60_000, warmup: 1, minCalls: 1 }, () => now), tick: (ms: number) => { now += ms } } })()
  const often = (() => { let now = 0; return { d: new AnomalyDetector({ baselineMs: 60_000, warmup: 1, minCalls: 1 }, () => now), tick: (ms: number) => { now += ms } } })()
  for (let i = 0; i < 20; i++) {
    rarely.tick(10_000)
    rarely.d.observe('a', 50, 20 + (i % 2), 0)
  }
  for (let i = 0; i < 200; i++) {
    often.tick(1000)
    often.d.observe('a', 50, 20 + (i % 2), 0)
  }
  // Twenty seconds of slowness, seen twice or twenty times: about as anomalous either way.
  let rarelyScore = 0
  let oftenScore = 0
  for (let i = 0; i < 2; i++) {
    rarely.tick(10_000)
    rarelyScore = rarely.d.observe('a', 50, 200, 0).latency
  }
  for (let i = 0; i < 20; i++) {
    often.tick(1000)
    oftenScore = often.d.observe('a', 50, 200, 0).latency
  }
  t.ok(rarelyScore > 4 && oftenScore > 4, `still anomalous 20 s in: ${rarelyScore} (seen every 10 s), ${oftenScore} (every 1 s)`)
  t.ok(Math.abs(rarelyScore - oftenScore) < Math.max(rarelyScore, oftenScore) / 2, 'within a factor of two')
})

test('a sustained slowdown stays anomalous for as long as it is large, then becomes normal; its spread does not widen', async (t) => {
  // The default baseline (5 min), evaluated every 10 s, after 20 minutes of a steady 20 ms ± 5%.
  const run = (factor: number) => {
    let now = 0
    const detector = new AnomalyDetector({ baselineMs: 300_000, warmup: 10, minCalls: 5 }, () => (now += 10_000))
    for (let i = 0; i < 120; i++) detector.observe('a', 50, 20 * (0.95 + 0.1 * ((i * 7) % 11) / 10), 0)
    let flaggedFor = 0
    for (let i = 0; i < 360 && detector.observe('a', 50, 20 * factor, 0).latency > 4; i++) flaggedFor += 10
    return flaggedFor
  }
  const tenfold = run(10)
  t.ok(tenfold >= 10 * 60 && tenfold < 60 * 60, `10× slower: flagged for ${tenfold} s (not a minute and then quiet while it lasts)`)
  const twofold = run(2)
  t.ok(twofold > 0 && twofold < tenfold, `2× slower: flagged for ${twofold} s, then the new normal`)
})

test('webhook bodies: Slack, Discord and generic JSON', async (t) => {
  const alert: Alert = {
    key: 'k',
    rule: 'down',
    when: 'upstream_down',
    upstream: 'search-1',
    service: 'search',
    state: 'firing',
    since: 0,
    firedAt: Date.UTC(2026, 11, 1),
    value: 1,
    threshold: 0,
    message: 'upstream search-1 is not taking calls: refused',
    notify: []
  }
  t.match(formatAlert('slack', alert, 'firing', 'gw'), { text: /^:red_circle: \*FIRING: down on search-1\* \(gw\)\nupstream search-1 is not taking calls/, blocks: Array })
  t.match(formatAlert('discord', alert, 'firing', 'gw'), { content: '**FIRING: down on search-1** (gw)', embeds: [{ title: 'FIRING: down on search-1', color: 0xef4444, timestamp: '2026-12-01T00:00:00.000Z' }] })
  t.match(formatAlert('json', { ...alert, resolvedAt: Date.UTC(2026, 11, 1, 1) }, 'resolved', 'gw'), {
    status: 'resolved', gateway: 'gw', at: '2026-12-01T01:00:00.000Z', alert: { rule: 'down', upstream: 'search-1', service: 'search', message: /refused/ }
  })
  t.match(formatAlert('slack', alert, 'resolved', 'gw'), { text: /^:large_green_circle: \*RESOLVED/ })
})

test('no false alarms on a steady upstream with a few errors, right after warm-up or later', async (t) => {
  let now = 0
  const detector = new AnomalyDetector({ baselineMs: 300_000, warmup: 10, minCalls: 5 }, () => (now += 10_000))
  // 20 calls per observation, 2% errors at random, latency 20 ms ± 20%: a steady upstream.
  let seed = 7
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647)
  let alarms = 0
  for (let i = 0; i < 400; i++) {
    let errors = 0
    for (let c = 0; c < 20; c++) if (random() < 0.02) errors++
    const scores = detector.observe('a', 20, 20 * (0.8 + 0.4 * random()), errors / 20)
    if (scores.latency > 4 || scores.errors > 4) alarms++
  }
  t.ok(alarms <= 2, `${alarms} of 400 observations scored over 4`)
})
