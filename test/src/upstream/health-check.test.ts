import { type Test, test } from 'tap'
import { DEFAULT_UPSTREAM, normalizeServer } from '../../../src/config/normalize.js'
import type { ServerConfig } from '../../../schemas/config.js'
import { silentLogger } from '../../../src/logger.js'
import { type ConnectionObserver, UpstreamConnection, type UpstreamState } from '../../../src/upstream/connection.js'
import { waitFor } from '../../helper.js'
import { startPlainServer } from '../../fixtures/plain-mcp-server.js'

/**
 * Active health checks of one upstream connection (healthCheck: thresholds, the GET path, proving healthy again,
 * checks made on suspicion, reconnect on use), against the plain-node:http fixture server (no published server
 * lets a test make its pings fail, hang or its health page answer 503 on demand).
 */

/** Records every state: a connection that goes down may be reconnecting again before a test looks. */
class RecordingObserver implements ConnectionObserver {
  readonly states: Array<[UpstreamState, string | undefined]> = []
  state (connection: UpstreamConnection) { this.states.push([connection.state, connection.reason]) }
  listing () {}
  /** The reason of the first `down` from state `from` on. */
  downReason (from = 0): string | undefined {
    return this.states.slice(from).find(([state]) => state === 'down')?.[1]
  }
}

function connection (t: Test, url: string, server: Partial<ServerConfig> = {}, defaults: Partial<typeof DEFAULT_UPSTREAM> = {}) {
  const observer = new RecordingObserver()
  const all = { ...DEFAULT_UPSTREAM, reconnectMin: 50, reconnectMax: 200, ...defaults }
  const conn = new UpstreamConnection(normalizeServer({ id: 'checked', url, ...server }, all), {
    defaults: all,
    clientInfo: { name: 'health-check-test', version: '1.0.0' },
    log: silentLogger,
    observer
  })
  t.teardown(() => conn.close())
  return { conn, observer }
}

const quick = { intervalMs: 100, retryIntervalMs: 40, timeoutMs: 200 }

test('one failed check is checked again soon; unhealthyThreshold in a row take it down, with the reason', async (t) => {
  const { url, controls } = await startPlainServer(t)
  const { conn, observer } = connection(t, url, { healthCheck: { ...quick, retryIntervalMs: 300, unhealthyThreshold: 3 } })
  await conn.start()
  t.equal(conn.state, 'up')
  await waitFor('a check', () => conn.lastCheck !== undefined)
  t.match(conn.lastCheck, { ok: true, ms: Number })

  controls.ping = 'fail'
  await waitFor('a failed check', () => conn.failedChecks === 1)
  t.equal(conn.state, 'up', 'one failure: still up')
  t.match(conn.lastCheck, { ok: false, error: /HTTP 500/ })
  const pings = controls.pings
  controls.ping = 'ok'
  await waitFor('the check repeated', () => conn.failedChecks === 0)
  t.ok(controls.pings > pings)
  t.equal(conn.state, 'up', 'it passed again: the count starts over')

  controls.ping = 'hang'
  t.equal(observer.downReason(), undefined)
  await waitFor('the upstream down', () => observer.downReason() !== undefined, 5000)
  t.match(observer.downReason(), /^health check failed 3 times in a row: .*ping/)
})

test('healthCheck.path: an HTTP GET on the server\'s origin with its headers instead of a ping; non-2xx fails it', async (t) => {
  const { url, controls } = await startPlainServer(t)
  const { conn, observer } = connection(t, url, { headers: { Authorization: 'Bearer upstream-secret' }, healthCheck: { ...quick, path: '/healthz', unhealthyThreshold: 2 } })
  await conn.start()
  await waitFor('two GET checks', () => controls.healthGets >= 2)
  t.equal(controls.pings, 0, 'no ping is sent')
  t.equal(controls.healthHeaders.authorization, 'Bearer upstream-secret', 'the configured headers go with it')
  t.match(conn.lastCheck, { ok: true })
  controls.health = 503
  await waitFor('the upstream down', () => observer.downReason() !== undefined, 5000)
  t.match(observer.downReason(), /health check failed 2 times in a row: GET \/healthz answered HTTP 503/)
})

test('back after a failure, healthyThreshold checks must pass before it is up; a first start needs one', async (t) => {
  const { url, controls } = await startPlainServer(t)
  const { conn, observer } = connection(t, url, { healthCheck: { ...quick, healthyThreshold: 3, unhealthyThreshold: 1 } })
  await conn.start()
  t.same(observer.states.map(([s]) => s), ['connecting', 'up'], 'the first start: reconnecting alone')
  controls.ping = 'fail'
  controls.refuseInitialize = true
  await waitFor('the upstream down', () => observer.downReason() !== undefined)
  controls.ping = 'ok'
  controls.refuseInitialize = false
  await waitFor('the upstream up again', () => conn.state === 'up', 5000)
  const after = observer.states.slice(observer.states.findIndex(([s]) => s === 'down'))
  const proving = after.filter(([, reason]) => reason?.startsWith('proving healthy') === true).map(([, reason]) => reason)
  t.same(proving, ['proving healthy: 1 of 3 checks passed', 'proving healthy: 2 of 3 checks passed'])
  t.equal(after.at(-1)?.[0], 'up')

  // A check failing while it proves itself sends it back down.
  const upAgain = observer.states.length
  controls.ping = 'fail'
  await waitFor('down again', () => observer.downReason(upAgain) !== undefined)
  await waitFor('a failed check while proving healthy sends it back down', () =>
    observer.states.slice(upAgain).some(([state, reason]) => state === 'down' && reason?.includes('while proving healthy') === true), 5000)
})

test('a check made because a call failed (suspect) decides at once, whatever unhealthyThreshold says', async (t) => {
  const { url, controls } = await startPlainServer(t)
  const { conn, observer } = connection(t, url, { healthCheck: { intervalMs: 60_000, timeoutMs: 200, unhealthyThreshold: 5 } })
  await conn.start()
  controls.ping = 'fail'
  conn.suspect()
  await waitFor('the upstream down', () => observer.downReason() !== undefined)
  t.match(observer.downReason(), /^health check failed: /)
})

test('a call wanting an upstream that is down reconnects it now, not at the end of its backoff (wake)', async (t) => {
  const { url, stop, start } = await startPlainServer(t)
  await stop()
  const { conn, observer } = connection(t, url, { healthCheck: { intervalMs: 60_000 } }, { reconnectMin: 200, reconnectMax: 60_000 })
  const downs = () => observer.states.filter(([s]) => s === 'down').length
  await conn.start()
  t.equal(conn.state, 'down')
  conn.wake()
  t.equal(downs(), 1, 'woken within reconnectMin of the failure: nothing (at most one attempt per reconnectMin)')
  // Four failures: the next attempt is 200 ms × 2^4 = 3.2 s (±20%) away.
  await waitFor('four failed attempts', () => downs() === 4 && conn.state === 'down', 5000)
  await start()
  await new Promise(resolve => setTimeout(resolve, 250))
  const woken = Date.now()
  conn.wake()
  await waitFor('the upstream up within a second of the call (not ~2.5 s later)', () => conn.state === 'up', 1000)
  t.ok(Date.now() - woken < 1000)
  conn.wake()
  t.equal(conn.state, 'up', 'wake does nothing to an upstream that is up')
})

test('a reconnected upstream that keeps failing to prove itself healthy keeps backing off', async (t) => {
  const { url, controls } = await startPlainServer(t)
  const { conn } = connection(t, url, { healthCheck: { intervalMs: 5000, retryIntervalMs: 20, healthyThreshold: 2, unhealthyThreshold: 1 } },
    { reconnectMin: 100, reconnectMax: 5000 })
  await conn.start()
  controls.ping = 'fail'
  conn.suspect()
  await waitFor('the upstream down', () => conn.state !== 'up')
  const before = controls.initializations
  await new Promise(resolve => setTimeout(resolve, 2000))
  const reconnects = controls.initializations - before
  // 100, 200, 400, 800 ms (±20%) and the proving checks: about 4 in 2 s; without backoff it would be ~15.
  t.ok(reconnects >= 2 && reconnects <= 7, `reconnected ${reconnects} times in 2 s`)
})

test('healthCheck.path is checked when it reconnects too: a failing health page keeps it down', async (t) => {
  const { url, controls } = await startPlainServer(t)
  controls.health = 503
  const { conn, observer } = connection(t, url, { healthCheck: { intervalMs: 200, path: '/healthz' } }, { reconnectMin: 50, reconnectMax: 100 })
  await conn.start()
  t.equal(conn.state, 'down')
  t.match(conn.reason, 'health check failed: GET /healthz answered HTTP 503')
  await new Promise(resolve => setTimeout(resolve, 600))
  t.ok(controls.initializations >= 3, 'it kept trying')
  t.notOk(observer.states.some(([state]) => state === 'up'), 'and was never up')
  controls.health = 204
  await waitFor('up once the page passes', () => conn.state === 'up')
})

test('checks go on a connection of their own: a busy pool does not delay them', async (t) => {
  const { url, controls } = await startPlainServer(t)
  controls.delayMs = 1500
  for (const path of [undefined, '/healthz']) {
    const { conn } = connection(t, url, { maxConnections: 1, healthCheck: { intervalMs: 100, timeoutMs: 500, unhealthyThreshold: 1, ...(path !== undefined ? { path } : {}) } })
    await conn.start()
    const call = (conn.control as { request: (m: string, p: unknown, o: unknown) => Promise<unknown> }).request('tools/call', { name: 'read', arguments: {} }, { timeout: 5000 })
    await new Promise(resolve => setTimeout(resolve, 50))
    const checkedFrom = Date.now()
    await waitFor('a check while the only pooled connection is busy', () => (conn.lastCheck?.at ?? 0) > checkedFrom, 1000)
    t.match(conn.lastCheck, { ok: true }, `${path ?? 'ping'}: answered`)
    t.ok((conn.lastCheck?.ms ?? Infinity) < 400, `${path ?? 'ping'}: in ${conn.lastCheck?.ms} ms, not after the call`)
    t.equal(conn.state, 'up')
    await call
  }
})
