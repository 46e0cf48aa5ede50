import type { Redis } from 'ioredis'
import type { Logger } from '../logger.js'
import { RedisLink, type RedisStatus } from '../redis-link.js'
import { type Check, type Counters, LocalCounters, type Outcome } from './local-counters.js'

/**
 * Rate-limit state in Redis, shared by every gateway process that points at the same server: each request is one
 * script run over all of its checks (rate.ts's algorithm, all or nothing, on Redis's clock so the processes' clocks
 * do not matter). When Redis cannot be reached, does not answer within `commandTimeout`, or fails, the request is
 * counted in this process instead (a LocalCounters) and the gateway keeps serving: limits then hold per process,
 * which the log says once (at warn) and `/status` shows until a request is counted in Redis again (logged at info).
 * A command that times out drops the connection (ioredis reconnects, backing off): commands queued behind it would
 * run late and count twice. While Redis is in doubt, one request at a time tries it; the others count locally
 * (the connection's handling is RedisLink's).
 */

export interface RedisCountersOptions {
  url: string
  keyPrefix: string
  /** ms a request waits for Redis before it is counted locally. */
  commandTimeout: number
  log: Logger
  local?: LocalCounters
}

export interface CountersStatus {
  /** Where requests are counted now. */
  readonly counting: 'redis' | 'local'
  readonly redis?: RedisStatus
}

/**
 * rate.ts's take() over KEYS[1..n], all or nothing; ARGV: per key, ms per request and burst. Returns {0, remaining,
 * 0, reset} of the first key when all admit, or {i, 0, retry, reset} of the first key i that refuses.
 */
const TAKE_SCRIPT = `
redis.replicate_commands()
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local after = {}
local first
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local capacity = burst * interval
  local slack = math.min(burst * 2.5e-4, interval / 2)
  local tat = tonumber(redis.call('GET', KEYS[i]))
  local debt = 0
  if tat ~= nil and tat > now then debt = tat - now end
  local a = debt + interval
  if a > capacity + slack then
    return {i, 0, math.ceil(a - capacity), math.ceil(debt)}
  end
  after[i] = a
  if i == 1 then first = {0, math.floor((capacity - a + slack) / interval), 0, math.ceil(a)} end
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], string.format('%.17g', now + after[i]), 'PX', math.ceil(after[i]))
end
return first
`

/** What the probe after a reconnect counts under: a bucket nobody can empty. */
const PROBE_RULE = { max: 1_000_000_000, windowMs: 1000, burst: 1_000_000_000 }

type TakeReply = [number, number, number, number]
type WithTake = Redis & { mcpGatewayTake (...args: Array<string | number>): Promise<TakeReply> }

export class RedisCounters implements Counters {
  readonly #link: RedisLink
  readonly #redis: WithTake
  readonly #local: LocalCounters
  readonly #prefix: string

  constructor (options: RedisCountersOptions) {
    this.#local = options.local ?? new LocalCounters()
    this.#prefix = options.keyPrefix
    this.#link = new RedisLink({
      url: options.url,
      commandTimeout: options.commandTimeout,
      connectionName: 'mcp-gateway-rate-limit',
      log: options.log,
      messages: {
        lost: 'rate limits: Redis is unavailable; requests are counted in this process alone until it is back',
        back: 'rate limits: Redis answers again; the counters are shared again'
      },
      // Back after an outage: one request proves it (the script runs and writes), so /status is right without traffic.
      onReconnect: () => { Promise.resolve(this.take([{ kind: 'gateway', key: 'probe', rule: PROBE_RULE }])).catch(() => {}) }
    })
    this.#redis = this.#link.client as WithTake
    // The number of keys is given per call (a request has one to a few checks).
    this.#redis.defineCommand('mcpGatewayTake', { lua: TAKE_SCRIPT })
  }

  take (checks: readonly Check[]): Outcome | Promise<Outcome> {
    const admission = this.#link.admit()
    if (admission === undefined) return this.#local.take(checks)
    const args: Array<string | number> = [checks.length]
    for (const check of checks) args.push(this.#prefix + check.key)
    for (const check of checks) args.push(check.rule.windowMs / check.rule.max, check.rule.burst)
    return this.#redis.mcpGatewayTake(...args).then(
      (reply) => {
        this.#link.succeeded(admission)
        const refused = reply[0] - 1
        return { refused, decision: { allowed: refused === -1, remaining: reply[1], retryAfterMs: reply[2], resetMs: reply[3] } }
      },
      (err: Error) => {
        this.#link.failed(admission, err)
        return this.#local.take(checks)
      }
    )
  }

  get status (): CountersStatus {
    const redis = this.#link.status
    return { counting: redis.state === 'ready' ? 'redis' : 'local', redis }
  }

  async close (): Promise<void> {
    this.#link.close()
    await this.#local.close()
  }
}
