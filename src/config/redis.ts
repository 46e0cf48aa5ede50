import type { GatewayConfigFile } from '../../schemas/config.js'
import type { RedisSettings } from './types.js'

/** The top-level `redis` (what gateway instances share: the result cache's Redis layer), with its defaults. */

export const DEFAULT_SHARED_KEY_PREFIX = 'mcp-gateway:'
export const DEFAULT_REDIS_COMMAND_TIMEOUT = 200

export function normalizeRedis (file: GatewayConfigFile['redis'], problems: string[]): RedisSettings | null {
  if (file === undefined) return null
  const problem = redisUrlProblem(file.url)
  if (problem !== undefined) problems.push(`redis.url: ${problem}`)
  return {
    url: file.url,
    keyPrefix: file.keyPrefix ?? DEFAULT_SHARED_KEY_PREFIX,
    commandTimeout: file.commandTimeout ?? DEFAULT_REDIS_COMMAND_TIMEOUT
  }
}

/**
 * What is wrong with a Redis URL, checked with the config rather than when the client connects: a config error names
 * its field, never its value (which may hold a password).
 */
export function redisUrlProblem (url: string): string | undefined {
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
