import type { GatewayConfigFile } from '../../schemas/config.js'
import type { CacheSettings, RedisSettings, UpstreamDefinition } from './types.js'

/**
 * `cache` as the result cache reads it, with its defaults; null when neither it nor any server's own `cache` is set
 * (the forwarder's path then has no cache step). Its Redis layer lives in the top-level `redis`, never in
 * `rateLimit.redis` (the rate limits' own, with a key prefix of their own).
 */

export const DEFAULT_CACHE_MAX_BYTES = 64 * 1024 * 1024
export const DEFAULT_CACHE_MAX_DIR_BYTES = 256 * 1024 * 1024
export const DEFAULT_CACHE_MAX_ENTRY_BYTES = 1024 * 1024

export function normalizeCache (file: GatewayConfigFile['cache'], servers: readonly UpstreamDefinition[], redis: RedisSettings | null, problems: string[]): CacheSettings | null {
  if (file === undefined && !servers.some(s => s.cache !== undefined)) return null
  const settings: CacheSettings = {
    maxBytes: file?.maxBytes ?? DEFAULT_CACHE_MAX_BYTES,
    tools: (file?.tools ?? []).map(t => ({ pattern: t.pattern, ttlMs: t.ttlMs, force: t.force ?? false })),
    redis: file?.redis ?? false,
    dir: file?.dir ?? null,
    maxDirBytes: file?.maxDirBytes ?? DEFAULT_CACHE_MAX_DIR_BYTES,
    maxEntryBytes: file?.maxEntryBytes ?? DEFAULT_CACHE_MAX_ENTRY_BYTES
  }
  if (settings.redis && redis === null) {
    problems.push('cache.redis: needs the top-level "redis": { "url": "redis://host:6379" } (the Redis layer is kept there; rateLimit.redis is the rate limits\' own)')
  }
  if (settings.dir !== null && settings.maxEntryBytes > settings.maxDirBytes) {
    problems.push('cache.maxEntryBytes: must not be larger than cache.maxDirBytes')
  }
  return settings
}
