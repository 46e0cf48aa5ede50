import type { Params } from '../../schemas/jsonrpc.js'
import type { ClientContext } from '../client-context.js'
import type { RateLimitSettings } from '../config/types.js'
import { ERR_RATE_LIMITED, type RateLimitFacts } from '../errors.js'
import type { Logger } from '../logger.js'
import { globMatcher } from '../naming.js'
import { type Counters, LocalCounters } from './local-counters.js'
import type { Decision, RateRule } from './rate.js'
import { type CountersStatus, RedisCounters } from './redis-counters.js'

/**
 * The gateway's rate limits (`rateLimit`), counted in one place whichever way a request arrives:
 * - `perIp`: HTTP requests per client address, at the HTTP edge (the edge plugin hands them here through
 *   @fastify/rate-limit), before authentication, so floods of bad credentials are limited too;
 * - `perPrincipal`: JSON-RPC requests per caller — every element of a batch, every WebSocket frame, every REST
 *   call — keyed by the authenticated principal, or by the client's address when the gateway has no `auth`;
 * - `perTool`: tools/call requests per glob of tool names (as clients see them), per caller or for the whole
 *   gateway (`per: "gateway"`: an upstream's quota shared by everyone).
 * Counters live in this process, or in Redis with `rateLimit.redis` so several gateways share them.
 * `ping` is never limited: a client checking the connection should not learn the gateway is gone.
 */

export interface RateLimiterOptions {
  settings: RateLimitSettings
  log: Logger
  /** Told of every refusal (the metrics count them by limit). */
  onRefused?: (limit: RateLimitFacts['limit']) => void
}

export interface RateLimitStatus extends CountersStatus {
  readonly limits: Array<'perIp' | 'perPrincipal' | 'perTool'>
}

interface ToolLimit {
  readonly pattern: string
  readonly matches: (name: string) => boolean
  readonly rule: RateRule
  readonly perGateway: boolean
}

interface Check {
  readonly key: string
  readonly rule: RateRule
  readonly limit: RateLimitFacts['limit']
  readonly who: string
}

export class RateLimiter {
  readonly #counters: Counters & { readonly status?: CountersStatus }
  readonly #perIp: RateRule | null
  readonly #perPrincipal: RateRule | null
  readonly #perTool: readonly ToolLimit[]
  readonly #onRefused: (limit: RateLimitFacts['limit']) => void

  constructor (options: RateLimiterOptions) {
    const { settings } = options
    this.#perIp = settings.perIp
    this.#onRefused = options.onRefused ?? (() => {})
    this.#perPrincipal = settings.perPrincipal
    this.#perTool = settings.perTool.map(t => ({ pattern: t.pattern, matches: globMatcher([t.pattern]), rule: t.rule, perGateway: t.per === 'gateway' }))
    this.#counters = settings.redis === null
      ? new LocalCounters()
      : new RedisCounters({ ...settings.redis, log: options.log.child({ component: 'rate-limit' }) })
  }

  /** The per-address rule, when one is configured (the HTTP edge counts it). */
  get perIp (): RateRule | null {
    return this.#perIp
  }

  /** The error that refuses an HTTP request from `address` over the per-address limit. */
  addressRefusal (address: string, retryAfterMs: number): ERR_RATE_LIMITED {
    const rule = this.#perIp ?? { max: 0, windowMs: 0, burst: 0 }
    this.#onRefused('perIp')
    return new ERR_RATE_LIMITED(`address ${address}`, { limit: 'perIp', max: rule.max, windowMs: rule.windowMs, retryAfterMs, resetMs: retryAfterMs })
  }

  /** Counts one HTTP request from `address` (already normalized: an IPv6 address to its /64). */
  takeAddress (address: string): Decision | Promise<Decision> {
    if (this.#perIp === null) return { allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 0 }
    return this.#counters.take('ip:' + address, this.#perIp)
  }

  /**
   * Counts one JSON-RPC request of `client`. undefined: admitted without waiting (local counters); otherwise a
   * promise that resolves when admitted and rejects with ERR_RATE_LIMITED when a limit refuses it.
   */
  admit (client: ClientContext, method: string, params: Params | undefined): Promise<void> | undefined {
    if (method === 'ping') return undefined
    const caller = callerKey(client)
    const checks: Check[] = []
    if (this.#perPrincipal !== null && caller !== undefined) {
      checks.push({ key: 'principal:' + caller, rule: this.#perPrincipal, limit: 'perPrincipal', who: describe(client) })
    }
    const tool = method === 'tools/call' ? params?.name : undefined
    if (typeof tool === 'string') {
      for (const limit of this.#perTool) {
        if (!limit.matches(tool)) continue
        if (limit.perGateway) {
          checks.push({ key: 'tool:' + limit.pattern, rule: limit.rule, limit: 'perTool', who: `everyone together calling tools matching ${JSON.stringify(limit.pattern)}` })
        } else if (caller !== undefined) {
          checks.push({ key: 'tool:' + limit.pattern + ':' + caller, rule: limit.rule, limit: 'perTool', who: `${describe(client)} calling tools matching ${JSON.stringify(limit.pattern)}` })
        }
      }
    }
    return checks.length === 0 ? undefined : this.#run(checks, 0)
  }

  /** Where requests are counted now (Redis or this process) and which limits are configured: /status shows it. */
  status (): RateLimitStatus {
    const limits: RateLimitStatus['limits'] = []
    if (this.#perIp !== null) limits.push('perIp')
    if (this.#perPrincipal !== null) limits.push('perPrincipal')
    if (this.#perTool.length > 0) limits.push('perTool')
    return { ...(this.#counters.status ?? { counting: 'local' }), limits }
  }

  close (): Promise<void> {
    return this.#counters.close()
  }

  /** The checks from `i` on, in order; the first refusal ends it (the counts already taken stay taken). */
  #run (checks: readonly Check[], i: number): Promise<void> | undefined {
    for (; i < checks.length; i++) {
      const check = checks[i] as Check
      const decision = this.#counters.take(check.key, check.rule)
      if (decision instanceof Promise) {
        const next = i + 1
        return decision.then(d => {
          if (!d.allowed) throw this.#refusal(check, d)
          return this.#run(checks, next)
        })
      }
      if (!decision.allowed) return Promise.reject(this.#refusal(check, decision))
    }
    return undefined
  }

  #refusal (check: Check, decision: Decision): ERR_RATE_LIMITED {
    this.#onRefused(check.limit)
    return new ERR_RATE_LIMITED(check.who, {
      limit: check.limit, max: check.rule.max, windowMs: check.rule.windowMs, retryAfterMs: decision.retryAfterMs, resetMs: decision.resetMs
    })
  }
}

/** The counter key of a caller: its principal, or its address without authentication; undefined: neither. */
function callerKey (client: ClientContext): string | undefined {
  const principal = client.principal
  if (principal !== null) return principal.kind + ':' + principal.id
  return client.address === undefined ? undefined : 'address:' + client.address
}

function describe (client: ClientContext): string {
  return client.principal !== null ? JSON.stringify(client.principal.id) : `address ${client.address ?? 'unknown'}`
}
