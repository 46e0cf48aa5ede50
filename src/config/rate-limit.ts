import type { GatewayConfigFile } from '../../schemas/config.js'
import { DEFAULT_REDIS_COMMAND_TIMEOUT, redisUrlProblem } from './redis.js'
import type { RateLimitSettings, RateRuleSettings } from './types.js'

/** `rateLimit` as the limiter reads it: burst defaults to max, Redis options to their defaults; null when absent. */

export const DEFAULT_KEY_PREFIX = 'mcp-gateway:rl:'

type RateLimitFile = NonNullable<GatewayConfigFile['rateLimit']>

export function normalizeRateLimit (file: RateLimitFile | undefined, problems: string[]): RateLimitSettings | null {
  if (file === undefined) return null
  if (file.redis !== undefined) {
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
