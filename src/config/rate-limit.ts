import type { GatewayConfigFile } from '../../schemas/config.js'
import type { RateLimitSettings, RateRuleSettings } from './types.js'

/** `rateLimit` as the limiter reads it: burst defaults to max, Redis options to their defaults; null when absent. */

export const DEFAULT_KEY_PREFIX = 'mcp-gateway:rl:'
export const DEFAULT_REDIS_COMMAND_TIMEOUT = 200

type RateLimitFile = NonNullable<GatewayConfigFile['rateLimit']>

export function normalizeRateLimit (file: RateLimitFile | undefined, problems: string[]): RateLimitSettings | null {
  if (file === undefined) return null
  if (file.redis !== undefined) {
    // Checked here, not when the client connects: a bad URL is a config error naming its field (never its value,
    // which may hold a password).
    const problem = redisUrlProblem(file.redis.url)
    if (problem !== undefined) problems.push(`rateLimit.redis.url: ${problem}`)
  }
  return {
    perIp: file.perIp === undefined ? null : rule(file.perIp),
    perPrincipal: file.perPrincipal === undefined ? null : rule(file.perPrincipal),
    perTool: Object.entries(file.perTool ?? {}).map(([pattern, entry]) => ({ pattern, rule: rule(entry), per: entry.per ?? 'principal' })),
    redis: file.redis === undefined
      ? null
      : {
          url: file.redis.url,
          keyPrefix: file.redis.keyPrefix ?? DEFAULT_KEY_PREFIX,
          commandTimeout: file.redis.commandTimeout ?? DEFAULT_REDIS_COMMAND_TIMEOUT
        }
  }
}

function rule (entry: { max: number, windowMs: number, burst?: number }): RateRuleSettings {
  return { max: entry.max, windowMs: entry.windowMs, burst: entry.burst ?? entry.max }
}

function redisUrlProblem (url: string): string | undefined {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return 'is not a URL like redis://[user:password@]host:port[/db]'
  }
  if (parsed.hostname === '') return 'names no host'
  const db = parsed.pathname.replace(/^\//, '')
  if (db !== '' && !/^\d+$/.test(db)) return 'the path must be a database number (redis://host:6379/0)'
  return undefined
}
