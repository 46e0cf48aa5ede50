/* eslint-disable no-template-curly-in-string -- `${VAR}` in plain strings is the configuration syntax under test */
import { test } from 'tap'
import { resolveConfig } from '../../../src/config/load.js'

/** `cache` and the top-level `redis` as the result cache reads them: defaults, the layers, and their mistakes. */

const problems = (input: Record<string, unknown>) => {
  try {
    resolveConfig(input, { env: {}, envOverrides: false })
  } catch (err) {
    return (err as { problems?: string[] }).problems ?? []
  }
  return []
}

test('cache: defaults for the layers; the top-level redis gets its own', async (t) => {
  const config = resolveConfig({
    redis: { url: '${env:CACHE_REDIS}' },
    cache: { redis: true, dir: '/var/cache/gw' },
    servers: [{ id: 'docs', url: 'http://127.0.0.1:9/mcp', cache: { ttlMs: 1000, resources: true } }]
  }, { env: { CACHE_REDIS: 'redis://127.0.0.1:6390/1' }, envOverrides: false })
  t.same(config.cache, { maxBytes: 64 * 1024 * 1024, tools: [], redis: true, dir: '/var/cache/gw', maxDirBytes: 256 * 1024 * 1024, maxEntryBytes: 1024 * 1024 })
  t.same(config.redis, { url: 'redis://127.0.0.1:6390/1', keyPrefix: 'mcp-gateway:', commandTimeout: 200 })
  t.same(config.servers[0]?.cache, { ttlMs: 1000, force: false, resources: true })
  t.match(resolveConfig({ servers: [{ id: 'a', url: 'http://127.0.0.1:9/mcp', cache: { ttlMs: 5 } }] }, { env: {} }),
    { cache: { redis: false, dir: null }, redis: null, servers: [{ cache: { resources: false } }] }, 'a server\'s cache alone: memory only')
})

test('cache mistakes are reported with their field', async (t) => {
  t.match(problems({ cache: { redis: true } }), [/^cache\.redis: needs the top-level "redis"/], 'the Redis layer without a Redis')
  t.match(problems({ cache: { redis: true }, rateLimit: { redis: { url: 'redis://127.0.0.1:6379' } } }), [/^cache\.redis: needs the top-level "redis".*rateLimit\.redis is the rate limits' own/],
    'rateLimit.redis is not the cache\'s')
  t.same(problems({ cache: { redis: true }, redis: { url: 'redis://127.0.0.1:6379' } }), [])
  t.match(problems({ cache: { dir: '/tmp/x', maxDirBytes: 65_536, maxEntryBytes: 1_000_000 } }), ['cache.maxEntryBytes: must not be larger than cache.maxDirBytes'])
  const found = problems({ redis: { url: 'redis://:s3cret@h:6379/zero' } })
  t.match(found, [/^redis\.url: the path must be a database number/])
  t.notMatch(found.join(' '), /s3cret/, 'without the password')
  t.match(problems({ cache: { maxDirBytes: 10 } }), [/^cache\.maxDirBytes/])
})
