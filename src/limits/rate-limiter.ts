import { ANONYMOUS, type ClientContext } from '../client-context.js'
import type { RateLimitSettings } from '../config/types.js'
import { ERR_RATE_LIMITED, type RateLimitFacts } from '../errors.js'
import type { CallHooks, ForwardedCall } from '../forwarder.js'
import type { Logger } from '../logger.js'
import { globMatcher } from '../naming.js'
import { addressKey } from './address.js'
import { type Check, type Counters, LocalCounters, type Outcome } from './local-counters.js'
import type { RateRule } from './rate.js'
import { type CountersStatus, RedisCounters } from './redis-counters.js'

/**
 * The gateway's rate limits (`rateLimit`), counted in one place whichever way a request arrives:
 * - `perIp`: HTTP requests per client address (an IPv6 address as its /64), at the HTTP edge, before
 *   authentication, so floods of bad credentials are limited too;
 * - `perPrincipal`: JSON-RPC requests per caller — every element of a batch, every WebSocket frame, every REST
 *   call — keyed by the authenticated principal, or by the client's address when the gateway has no `auth`;
 * - `perTool`: calls of tools whose names (as clients see them) match a glob, per caller or for the whole gateway
 *   (`per: "gateway"`: an upstream's quota shared by everyone). Counted in the forwarding pipeline (`callHooks`),
 *   after the name was found and the caller's roles allow it, so calls that are never served cost no one's quota,
 *   and all the entries a call matches are charged together or not at all.
 * Counters live in this process, or in Redis with `rateLimit.redis` so several gateways share them. A key names its
 * rule (max, window, burst), so a changed rule starts afresh instead of inheriting a bucket counted under another.
 * `ping` is never limited: a client checking the connection should not learn the gateway is gone.
 */

export interface RateLimiterOptions {
  settings: RateLimitSettings
  log: Logger
  /** Told of every refusal (the metrics count them by limit). */
  onRefused?: (limit: RateLimitFacts['limit']) => void
}

/** The name clients see for a service's tool, for calls that name an upstream's own tool (the WebSocket envelope). */
export type ToolNames = (service: string, originalName: string) => string | undefined

export interface RateLimitStatus extends CountersStatus {
  readonly limits: Array<'perIp' | 'perPrincipal' | 'perTool'>
}

interface Limit {
  readonly rule: RateRule
  /** The start of its keys: the kind of key and the rule. */
  readonly prefix: string
}

interface ToolLimit extends Limit {
  readonly pattern: string
  readonly matches: (name: string) => boolean
  readonly perGateway: boolean
}

/** What a check refuses as, for the error it becomes (its text is made only when it does refuse). */
interface Refusal {
  readonly limit: RateLimitFacts['limit']
  readonly rule: RateRule
  /** The caller, for a caller's limit; undefined for a gateway-wide one. */
  readonly client: ClientContext | undefined
  /** For perTool: the glob. */
  readonly pattern?: string
}

export class RateLimiter {
  readonly #counters: Counters & { readonly status?: CountersStatus }
  readonly #perIp: Limit | null
  readonly #perPrincipal: Limit | null
  readonly #perTool: readonly ToolLimit[]
  readonly #onRefused: (limit: RateLimitFacts['limit']) => void

  constructor (options: RateLimiterOptions) {
    const { settings } = options
    const limit = (kind: string, rule: RateRule | null): Limit | null => rule === null ? null : { rule, prefix: `${kind}:${fingerprint(rule)}:` }
    this.#perIp = limit('a', settings.perIp)
    this.#perPrincipal = limit('p', settings.perPrincipal)
    this.#perTool = settings.perTool.map(t => ({
      rule: t.rule,
      prefix: `${t.per === 'gateway' ? 'g' : 't'}:${fingerprint(t.rule)}:${JSON.stringify(t.pattern)}`,
      pattern: t.pattern,
      matches: globMatcher([t.pattern]),
      perGateway: t.per === 'gateway'
    }))
    this.#onRefused = options.onRefused ?? (() => {})
    this.#counters = settings.redis === null
      ? new LocalCounters()
      : new RedisCounters({ ...settings.redis, log: options.log.child({ component: 'rate-limit' }) })
  }

  /** The per-address rule, when one is configured (the HTTP edge counts it). */
  get perIp (): RateRule | null {
    return this.#perIp?.rule ?? null
  }

  /** Counts one HTTP request from `address`: its outcome, and the error that refuses it when it is refused. */
  takeAddress (address: string): AddressOutcome | Promise<AddressOutcome> {
    const limit = this.#perIp
    if (limit === null) return { outcome: { refused: -1, decision: { allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 0 } } }
    const key = addressKey(address)
    const counted = (outcome: Outcome): AddressOutcome => outcome.refused === -1
      ? { outcome }
      : { outcome, error: this.#error({ limit: 'perIp', rule: limit.rule, client: { ...ANONYMOUS, address: key } }, outcome) }
    const outcome = this.#counters.take([{ kind: 'address', key: limit.prefix + key, rule: limit.rule }])
    return outcome instanceof Promise ? outcome.then(counted) : counted(outcome)
  }

  /**
   * Counts one JSON-RPC request of `client` against perPrincipal. undefined: admitted without waiting (local
   * counters); otherwise a promise that resolves when admitted and rejects with ERR_RATE_LIMITED when refused.
   */
  admit (client: ClientContext, method: string): Promise<void> | undefined {
    const limit = this.#perPrincipal
    if (limit === null || method === 'ping') return undefined
    const caller = callerKey(client)
    if (caller === undefined) return undefined
    return this.#charge([{ kind: 'principal', key: limit.prefix + caller, rule: limit.rule }],
      [{ limit: 'perPrincipal', rule: limit.rule, client }])
  }

  /** The forwarding hooks that count perTool (none when no perTool limit is configured). */
  callHooks (toolNames: ToolNames): CallHooks | undefined {
    if (this.#perTool.length === 0) return undefined
    return { preCall: (context, call) => this.#admitTool(context, call, toolNames) }
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

  #admitTool (context: ClientContext, call: ForwardedCall, toolNames: ToolNames): Promise<void> | undefined {
    if (call.method !== 'tools/call') return undefined
    const name = call.name ?? (typeof call.params.name === 'string' ? toolNames(call.service, call.params.name) : undefined)
    if (name === undefined) return undefined
    const caller = callerKey(context)
    const checks: Check[] = []
    const refusals: Refusal[] = []
    for (const limit of this.#perTool) {
      if (!limit.matches(name)) continue
      if (limit.perGateway) {
        checks.push({ kind: 'gateway', key: limit.prefix, rule: limit.rule })
        refusals.push({ limit: 'perTool', rule: limit.rule, client: undefined, pattern: limit.pattern })
      } else if (caller !== undefined) {
        checks.push({ kind: 'tool', key: limit.prefix + ':' + caller, rule: limit.rule })
        refusals.push({ limit: 'perTool', rule: limit.rule, client: context, pattern: limit.pattern })
      }
    }
    return checks.length === 0 ? undefined : this.#charge(checks, refusals)
  }

  #charge (checks: readonly Check[], refusals: readonly Refusal[]): Promise<void> | undefined {
    const outcome = this.#counters.take(checks)
    if (outcome instanceof Promise) {
      return outcome.then(o => { if (o.refused !== -1) throw this.#error(refusals[o.refused] as Refusal, o) })
    }
    return outcome.refused === -1 ? undefined : Promise.reject(this.#error(refusals[outcome.refused] as Refusal, outcome))
  }

  #error (refusal: Refusal, outcome: Outcome): ERR_RATE_LIMITED {
    this.#onRefused(refusal.limit)
    const { max, windowMs, burst } = refusal.rule
    const caller = refusal.client === undefined ? 'everyone together' : describe(refusal.client)
    const who = refusal.pattern === undefined ? caller : `${caller} calling tools matching ${JSON.stringify(refusal.pattern)}`
    return new ERR_RATE_LIMITED(who, { limit: refusal.limit, max, windowMs, burst, retryAfterMs: outcome.decision.retryAfterMs, resetMs: outcome.decision.resetMs })
  }
}

export interface AddressOutcome {
  readonly outcome: Outcome
  /** Set when refused: what the client is answered. */
  readonly error?: ERR_RATE_LIMITED
}

function fingerprint (rule: RateRule): string {
  return `${rule.max}/${rule.windowMs}/${rule.burst}`
}

/** The counter key of a caller: its principal, or its address without authentication; undefined: neither. */
function callerKey (client: ClientContext): string | undefined {
  const principal = client.principal
  if (principal !== null) return principal.kind + ':' + principal.id
  return client.address === undefined ? undefined : 'address:' + addressKey(client.address)
}

function describe (client: ClientContext): string {
  return client.principal !== null ? JSON.stringify(client.principal.id) : `address ${client.address === undefined ? 'unknown' : addressKey(client.address)}`
}
