/* eslint-disable no-template-curly-in-string -- `${VAR}` in plain strings is the configuration syntax under test */
import { test } from 'tap'
import { resolveConfig } from '../../../src/config/load.js'

/** `rateLimit` as the limiter reads it: defaults, the order of perTool, Redis from the config or REDIS_URL. */

test('rateLimit: burst defaults to max, perTool keeps its order, Redis gets its defaults', async (t) => {
  const config = resolveConfig({
    rateLimit: {
      perIp: { max: 100, windowMs: 60_000 },
      perPrincipal: { max: 10, windowMs: 1000, burst: 30 },
      perTool: { 'github__*': { max: 5, windowMs: 60_000, per: 'gateway' }, '*': { max: 50, windowMs: 60_000 } },
      redis: { url: '${env:RL_REDIS}' }
    }
  }, { env: { RL_REDIS: 'redis://:secret@127.0.0.1:6390/2' }, envOverrides: false })
  t.same(config.rateLimit, {
    perIp: { max: 100, windowMs: 60_000, burst: 100 },
    perPrincipal: { max: 10, windowMs: 1000, burst: 30 },
    perTool: [
      { pattern: 'github__*', rule: { max: 5, windowMs: 60_000, burst: 5 }, per: 'gateway' },
      { pattern: '*', rule: { max: 50, windowMs: 60_000, burst: 50 }, per: 'principal' }
    ],
    redis: { url: 'redis://:secret@127.0.0.1:6390/2', keyPrefix: 'mcp-gateway:rl:', commandTimeout: 200 }
  })
  t.equal(resolveConfig({}, { env: {} }).rateLimit, null, 'no rateLimit: no limits')
})

test('REDIS_URL shares the counters of a config with rate limits that names no Redis', async (t) => {
  const env = { REDIS_URL: 'redis://127.0.0.1:6391' }
  t.equal(resolveConfig({ rateLimit: { perIp: { max: 1, windowMs: 1000 } } }, { env }).rateLimit?.redis?.url, 'redis://127.0.0.1:6391')
  t.equal(resolveConfig({ rateLimit: { redis: { url: 'redis://own:1' } } }, { env }).rateLimit?.redis?.url, 'redis://own:1', 'the config wins')
  t.equal(resolveConfig({}, { env }).rateLimit, null, 'no limits configured: REDIS_URL alone adds none')
})

test('rateLimit mistakes are reported with their field', async (t) => {
  const problems = (rateLimit: unknown) => {
    try {
      resolveConfig({ rateLimit }, { env: {} })
    } catch (err) {
      return (err as { problems?: string[] }).problems ?? []
    }
    return []
  }
  t.match(problems({ perIp: { max: 0, windowMs: 1000 } }), ['rateLimit.perIp.max: must be >= 1'])
  t.match(problems({ perPrincipal: { max: 1 } }), ['rateLimit.perPrincipal: needs "windowMs"'])
  t.match(problems({ perTool: { x: { max: 1, windowMs: 1, per: 'everyone' } } }), ['rateLimit.perTool.x.per: must be one of "principal", "gateway"'])
  t.match(problems({ redis: { url: 'http://127.0.0.1:6379' } }), [/^rateLimit\.redis\.url: /])
  t.match(problems({ perIpp: {} }), [/^rateLimit.*perIpp/])
  for (const url of ['redis://:s3cret@127.0.0.1:99999', 'redis://:s3cret@h:6379x', 'redis://:s3cret@h:6379/zero']) {
    const found = problems({ redis: { url } })
    t.match(found, [/^rateLimit\.redis\.url: /], `${url.replace('s3cret', '…')}: a config error naming the field`)
    t.notMatch(found.join(' '), /s3cret/, 'without the password')
  }
})
