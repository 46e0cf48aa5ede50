import { Redis } from 'ioredis'
import { test } from 'tap'
import type { Logger } from '../../../src/logger.js'
import { silentLogger } from '../../../src/logger.js'
import { encodeEntry } from '../../../src/result-cache/entry.js'
import { RedisLayer } from '../../../src/result-cache/redis-layer.js'
import { freePort, waitFor } from '../../helper.js'
import { redisServer, startRedis } from '../../fixtures/redis-server.js'

/**
 * The Redis layer against a real redis-server: entries with their TTL under the key prefix, read back only when whole
 * and in bounds; marks judged on Redis's clock; Redis away or hung → misses at once or after commandTimeout, logged
 * once each way, invalidations kept and sent when it is back.
 */

function recorder (): { log: Logger, lines: string[] } {
  const lines: string[] = []
  const log: Logger = {
    ...silentLogger,
    warn: (_obj, msg) => { lines.push(`warn ${String(msg)}`) },
    info: (_obj, msg) => { lines.push(`info ${String(msg)}`) },
    child: () => log
  }
  return { log, lines }
}

test('entries: stored with their TTL, read back whole; oversized, corrupt and foreign values are misses', async (t) => {
  const port = await freePort()
  await startRedis(t, redisServer(), port)
  const layer = new RedisLayer({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'unit:', commandTimeout: 1000, maxEntryBytes: 1024, log: silentLogger })
  t.teardown(() => layer.close())
  const direct = new Redis(port, '127.0.0.1')
  t.teardown(() => direct.disconnect())
  await waitFor('the layer on Redis', () => layer.status.state === 'ready')
  const miss = await layer.get('k1', [])
  t.equal(miss?.entry, undefined)
  t.ok(miss !== undefined && miss.now > 1_600_000_000_000_000, 'a miss still tells Redis\'s clock (µs)')
  const now = miss?.now ?? 0
  layer.set('k1', { text: '{"a":1}', storedAt: now, expiresAt: now + 60_000_000 }, 7, 60_000)
  await waitFor('the entry in Redis', async () => (await direct.exists('unit:cache:k1')) === 1)
  const ttl = await direct.pttl('unit:cache:k1')
  t.ok(ttl > 50_000 && ttl <= 60_000, `PX set (${ttl})`)
  t.same((await layer.get('k1', []))?.entry, { text: '{"a":1}', storedAt: now, expiresAt: now + 60_000_000 })

  layer.set('big', { text: `{"a":"${'x'.repeat(2000)}"}`, storedAt: now, expiresAt: now + 60_000_000 }, 2008, 60_000)
  await direct.set('unit:cache:foreign', encodeEntry({ text: `{"a":"${'x'.repeat(4000)}"}`, storedAt: now, expiresAt: now + 60_000_000 }))
  await direct.set('unit:cache:corrupt', 'garbage')
  await direct.set('unit:cache:expired', encodeEntry({ text: '{}', storedAt: now - 2, expiresAt: now - 1 }))
  await direct.hset('unit:cache:hash', 'f', 'v')
  t.equal(await direct.exists('unit:cache:big'), 0, 'over maxEntryBytes: not stored')
  for (const key of ['foreign', 'corrupt', 'expired', 'hash']) t.equal((await layer.get(key, []))?.entry, undefined, `${key}: a miss`)
  t.equal(layer.status.state, 'ready', 'a value of another type is a miss, not a failure')
})

test('marks: an entry looked up before an invalidation is stale, one after is good (at once), on Redis\'s clock', async (t) => {
  const port = await freePort()
  await startRedis(t, redisServer(), port)
  const layer = new RedisLayer({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'marks:', commandTimeout: 1000, maxEntryBytes: 1024, log: silentLogger })
  t.teardown(() => layer.close())
  await waitFor('the layer on Redis', () => layer.status.state === 'ready')
  const before = (await layer.get('r', ['uri:x', 'all']))?.now ?? 0
  layer.set('r', { text: '{"contents":[]}', storedAt: before, expiresAt: before + 60_000_000 }, 15, 60_000)
  await waitFor('stored', async () => (await layer.get('r', ['uri:x']))?.entry !== undefined)
  t.ok((await layer.get('r', ['uri:y']))?.entry, 'another URI\'s mark is not its business')
  layer.invalidate(['uri:x'], 60_000)
  await waitFor('the mark sent', () => layer.pendingMarks === 0)
  t.equal((await waitFor('the entry stale', async () => { const a = await layer.get('r', ['uri:x', 'all']); return a?.entry === undefined ? a : undefined })).entry, undefined)
  const after = (await layer.get('r', ['uri:x']))?.now ?? 0
  layer.set('r', { text: '{"contents":[1]}', storedAt: after, expiresAt: after + 60_000_000 }, 16, 60_000)
  t.match(await waitFor('the new entry', async () => (await layer.get('r', ['uri:x']))?.entry), { text: '{"contents":[1]}' }, 'looked up after the mark: good')
})

test('Redis away, then hung: misses without waiting past commandTimeout; invalidations kept and sent once it is back', async (t) => {
  const binary = redisServer()
  const port = await freePort()
  let redis = await startRedis(t, binary, port)
  const { log, lines } = recorder()
  const layer = new RedisLayer({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'away:', commandTimeout: 150, maxEntryBytes: 1024, log })
  t.teardown(() => layer.close())
  await waitFor('the layer on Redis', () => layer.status.state === 'ready')
  redis.kill('SIGKILL')
  await waitFor('the layer to notice', () => layer.status.state === 'unavailable')
  t.equal(layer.get('k', []), undefined, 'away: a miss at once, nothing queued')
  layer.set('k', { text: '{}', storedAt: 1, expiresAt: Date.now() + 1000 }, 2, 1000)
  layer.invalidate(['uri:a', 'uri:b'], 30_000)
  t.equal(layer.pendingMarks, 2, 'the invalidations wait')
  t.same(lines, ['warn result cache: Redis is unavailable; its layer is skipped (lookups miss there) until it is back'], 'said once')

  redis = await startRedis(t, binary, port)
  await waitFor('the marks sent', () => layer.pendingMarks === 0 && layer.status.state === 'ready', 20_000)
  const direct = new Redis(port, '127.0.0.1')
  t.teardown(() => direct.disconnect())
  t.equal(await direct.exists('away:cache:mark:uri:a', 'away:cache:mark:uri:b'), 2, 'what it heard while Redis was away reached Redis')
  t.ok((await direct.pttl('away:cache:mark:uri:a')) > 20_000, 'kept as long as an entry it concerns can live')
  t.same(lines.slice(1), ['info result cache: Redis answers again; its layer is shared again'])

  redis.kill('SIGSTOP')
  t.teardown(() => { redis.kill('SIGCONT') })
  t.equal((await layer.get('k', [])), undefined, 'hung: the lookup gave up after commandTimeout')
  t.match(layer.status, { state: 'unavailable', reason: /timed out/i })
  redis.kill('SIGCONT')
  await waitFor('back on Redis', async () => { await layer.get('k', []); return layer.status.state === 'ready' }, 20_000)
})
