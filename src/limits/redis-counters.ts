import { Redis } from 'ioredis'
import { redact } from '../errors.js'
import type { Logger } from '../logger.js'
import { type Counters, LocalCounters } from './local-counters.js'
import type { Decision, RateRule } from './rate.js'

/**
 * Rate-limit state in Redis, shared by every gateway process that points at the same server: each request is one
 * script run (rate.ts's algorithm, on Redis's clock so the processes' clocks do not matter). When Redis cannot be
 * reached, does not answer within `commandTimeout`, or fails, the request is counted in this process instead (a
 * LocalCounters) and the gateway keeps serving: limits then hold per process, which the log says once and
 * `/status` shows until Redis answers again. Nothing waits for Redis to connect: until it has, counting is local.
 */

export interface RedisCountersOptions {
  url: string
  keyPrefix: string
  /** ms a request waits for Redis before it is counted locally. */
  commandTimeout: number
  log: Logger
  local?: LocalCounters
}

export type RedisState = 'connecting' | 'ready' | 'unavailable'

export interface CountersStatus {
  /** Where requests are counted now. */
  readonly counting: 'redis' | 'local'
  readonly redis?: { readonly state: RedisState, readonly since: string, readonly reason?: string }
}

/** After a failed command, requests are counted locally this long before Redis is tried again. */
const RETRY_AFTER_FAILURE = 1000

/** rate.ts's take(), with the state in KEYS[1]; ARGV: ms per request, burst. Returns allowed, remaining, retry, reset. */
const TAKE_SCRIPT = `
redis.replicate_commands()
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local from = tonumber(redis.call('GET', KEYS[1]))
if from == nil or from < now then from = now end
local nextTat = from + interval
local allowAt = nextTat - burst * interval
if allowAt > now then
  return {0, 0, math.ceil(allowAt - now), math.ceil(from - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', nextTat), 'PX', math.ceil(nextTat - now))
return {1, math.floor((now - allowAt) / interval), 0, math.ceil(nextTat - now)}
`

type TakeReply = [number, number, number, number]
type WithTake = Redis & { mcpGatewayTake (key: string, interval: number, burst: number): Promise<TakeReply> }

export class RedisCounters implements Counters {
  readonly #redis: WithTake
  readonly #local: LocalCounters
  readonly #log: Logger
  #connected = false
  /** When counting fell back to this process (undefined: it has not, or Redis is back). */
  #degradedSince: Date | undefined
  #reason = ''
  #readySince: Date | undefined
  readonly #createdAt = new Date()
  /** While Date.now() is below it, requests are counted locally (Redis failed a command a moment ago). */
  #retryAt = 0
  #closed = false

  constructor (options: RedisCountersOptions) {
    this.#log = options.log
    this.#local = options.local ?? new LocalCounters()
    this.#redis = new Redis(options.url, {
      keyPrefix: options.keyPrefix,
      // A request never queues behind a connection that is not there: it is counted locally at once.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeout,
      connectionName: 'mcp-gateway-rate-limit',
      // Reconnect for ever, backing off to 5 s, jittered so many gateways do not reconnect in step.
      retryStrategy: (times) => Math.min(5000, 100 * 2 ** Math.min(times, 6)) * (0.75 + Math.random() * 0.5)
    }) as WithTake
    this.#redis.defineCommand('mcpGatewayTake', { numberOfKeys: 1, lua: TAKE_SCRIPT })
    this.#redis.on('ready', () => {
      this.#connected = true
      this.#readySince = new Date()
      this.#recovered()
    })
    this.#redis.on('error', (err: Error) => this.#lost(err))
    this.#redis.on('close', () => this.#lost(new Error('connection closed')))
  }

  take (key: string, rule: RateRule): Decision | Promise<Decision> {
    if (!this.#connected || Date.now() < this.#retryAt) return this.#local.take(key, rule)
    return this.#redis.mcpGatewayTake(key, rule.windowMs / rule.max, rule.burst).then(
      (reply) => {
        if (this.#retryAt !== 0) this.#recovered()
        return { allowed: reply[0] === 1, remaining: reply[1], retryAfterMs: reply[2], resetMs: reply[3] }
      },
      (err: Error) => {
        this.#retryAt = Date.now() + RETRY_AFTER_FAILURE
        this.#degraded(err)
        return this.#local.take(key, rule)
      }
    )
  }

  get status (): CountersStatus {
    if (this.#degradedSince !== undefined) {
      return { counting: 'local', redis: { state: 'unavailable', since: this.#degradedSince.toISOString(), reason: this.#reason } }
    }
    if (this.#readySince === undefined) return { counting: 'local', redis: { state: 'connecting', since: this.#createdAt.toISOString() } }
    return { counting: 'redis', redis: { state: 'ready', since: this.#readySince.toISOString() } }
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#redis.disconnect()
    await this.#local.close()
  }

  #lost (err: Error): void {
    this.#connected = false
    this.#degraded(err)
  }

  #degraded (err: Error): void {
    if (this.#closed || this.#degradedSince !== undefined) return
    this.#degradedSince = new Date()
    this.#reason = redact(err.message)
    this.#log.warn({ reason: this.#reason }, 'rate limits: Redis is unavailable; requests are counted in this process alone until it is back')
  }

  #recovered (): void {
    this.#retryAt = 0
    if (this.#degradedSince === undefined) return
    this.#degradedSince = undefined
    this.#log.info({}, 'rate limits: Redis answers again; the counters are shared again')
  }
}
