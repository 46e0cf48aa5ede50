import { performance } from 'node:perf_hooks'
import type { Context } from '@opentelemetry/api'
import type { JsonRpcId, JsonRpcNotification, Params } from '../schemas/jsonrpc.js'
import { Cancellation } from './cancellation.js'
import { type HedgeContext, hedgeDelay, type HedgingSettings, race } from './balancing/hedging.js'
import type { ClientContext, Principal } from './client-context.js'
import { ERR_CIRCUIT_OPEN, ERR_UPSTREAM_BUSY, ERR_UPSTREAM_HTTP, ERR_UPSTREAM_UNAVAILABLE, UpstreamFailure } from './errors.js'
import { upstreamFailure } from './upstream/failure.js'
import { notificationMessage, progressTokenOf } from './jsonrpc.js'
import { RawResult } from './raw-result.js'
import type { AttemptSpan, McpTracing } from './tracing.js'
import type { Balancer } from './balancer.js'
import { ConcurrencyGates, type RefusalReason } from './balancing/concurrency.js'
import { RetryBudget, type RetryBudgetSettings } from './balancing/retry-budget.js'
import type { UpstreamDefinition } from './config/types.js'
import { onlyWeightChanged, type Registry } from './registry.js'
import type { CallOrigin } from './relay.js'
import type { SessionBroker } from './session-broker.js'
import { ClientSession } from './client-session.js'
import type { UpstreamConnection } from './upstream/connection.js'
import { UpstreamSession } from './upstream/session.js'
import type { UpstreamPool } from './upstream-pool.js'

/**
 * Forwarding one request to a service: the hooks first (authorization, limits, the cache plug in here), then a
 * replica from the balancer, an upstream session from the broker, the attempt, and — when the failure allows it —
 * another attempt on another replica. Every outcome is reported to the observer (metrics).
 */

export type CallOutcome = 'success' | 'tool_error' | 'rpc_error' | 'timeout' | 'cancelled' | 'unavailable' | 'failure'

export interface CallObserver {
  /**
   * An attempt on an upstream ended: its service, the tool's client-visible name (tools/call), and why it failed
   * (failures), beside what the metrics need. Positional, so the forwarding path allocates nothing for it.
   */
  upstreamCall (server: string, method: string, outcome: CallOutcome, seconds: number, service: string, tool: string | undefined, message: string | undefined, code: number | undefined): void
  /** A failed call was tried again elsewhere (`retried`), or not, the retry budget being spent (`refused`). */
  retry? (outcome: 'retried' | 'refused'): void
  /** A call refused by an upstream's concurrency limit: its queue was full, or it waited too long. */
  upstreamBusy? (reason: RefusalReason): void
  /** A call waited this long (s) in an upstream's queue for a slot. */
  queueWait? (seconds: number): void
  /** A read-only call was hedged (`sent`), the hedge answered first (`won`), or not sent for want of budget (`refused`). */
  hedge? (outcome: 'sent' | 'won' | 'refused'): void
}

/** What the caller wants forwarded. */
export interface ForwardTarget {
  readonly service: string
  readonly method: string
  /** As the upstream must receive them (its own names). */
  readonly params: Params
  /** The tool's or prompt's name as the client called it (the policies and limits speak of these). */
  readonly name?: string | undefined
  /** Safe to send twice: read-only or idempotent tools, reads of resources and prompts. */
  readonly idempotent: boolean
  /** Changes nothing upstream (tools annotated readOnlyHint, resource reads): may be hedged. */
  readonly readOnly?: boolean
  /** This replica (upstream id) only, not balanced and not retried elsewhere (requests addressed by upstream id). */
  readonly upstream?: string | undefined
}

export interface ForwardOptions {
  /** Aborting it cancels the call, upstream too (for programmatic callers). */
  signal?: AbortSignal | undefined
  /** The same, without an EventTarget: what the transports use on the hot path. */
  cancel?: Cancellation | undefined
  /** The client's id for this request: what the upstream sends about it travels with it (its answer stream). */
  requestId?: JsonRpcId | undefined
  /** For callers without a session: receives the call's progress notifications. */
  related?: ((message: JsonRpcNotification) => void) | undefined
  /** The client request's span (tracing on): each attempt's span is its child. */
  trace?: Context | undefined
}

/** One forwarded request, across the replicas it may try; what the hooks see. */
export interface ForwardedCall extends ForwardTarget {
  params: Params
  readonly context: ClientContext
  readonly origin: CallOrigin | undefined
  readonly cancel: Cancellation | undefined
  readonly onProgress: ((p: Params) => void) | undefined
  /** Replicas that failed this call already. */
  tried: Set<string> | undefined
  /** The last replica that refused it without sending (busy): what the client hears when no replica is left. */
  refused?: UpstreamFailure | undefined
  /** An attempt of a hedged call (the first or the hedge): not hedged again. */
  hedged?: boolean
  /** The replica its current attempt is on (what a hedge must avoid). */
  on?: string | undefined
  /** The client request's span, when traced. */
  readonly trace: Context | undefined
}

/**
 * The pipeline the security, limits and cache concerns plug into. `preCall` may throw to refuse the call, or
 * return a result to answer it without forwarding (a cache hit); `onResult` sees every result that was forwarded.
 */
export interface CallHooks {
  preCall? (context: ClientContext, call: ForwardedCall): unknown
  onResult? (context: ClientContext, call: ForwardedCall, result: unknown): void
}

export interface ForwarderOptions {
  pool: UpstreamPool
  registry: Registry
  broker: SessionBroker
  observer: CallObserver | undefined
  /**
   * Told of every attempt and how it ended (`attempts`: load figures, circuit breakers, outliers); says why a service
   * has no replica when it knows better than "unavailable", whether a replica still takes calls after a wait, and
   * the latency percentiles hedging waits for.
   */
  balancer?: Balancer | undefined
  /** How many retries may add to the load, per service. */
  retryBudget?: RetryBudgetSettings | undefined
  /** Hedged requests for read-only calls; undefined: off. */
  hedging?: HedgingSettings | undefined
  /** A span per attempt (and trace context sent upstream); undefined: tracing is off. */
  tracing?: McpTracing | undefined
  /**
   * Told once of every forwarded call when it ends (not of each attempt): who called, what, how it ended, how long
   * it took, and on which upstream its last attempt was — the access log. Undefined: nothing is added to the path.
   */
  callEnded?: ((call: ForwardedCall, outcome: string, ms: number) => void) | undefined
}

export class Forwarder {
  /** Each upstream's calls in flight and queue (maxConcurrent, queue). */
  readonly gates: ConcurrencyGates
  /**
   * Per service: retries one service's failures cause are paid for by its own calls; and all of them together by
   * all calls, so a thousand quiet services do not add up to a thousand floors (minPerSecond) of retries.
   */
  readonly #budgets = new Map<string, RetryBudget>()
  readonly #budget: RetryBudget
  readonly #preCall: Array<NonNullable<CallHooks['preCall']>> = []
  readonly #onResult: Array<NonNullable<CallHooks['onResult']>> = []

  constructor (private readonly options: ForwarderOptions) {
    this.gates = new ConcurrencyGates({
      refused: (_upstream, reason) => options.observer?.upstreamBusy?.(reason),
      waited: (_upstream, ms) => options.observer?.queueWait?.(ms / 1000)
    })
    this.#budget = new RetryBudget(options.retryBudget)
    options.registry.onChange((change) => {
      // A queue belongs to one configuration of an upstream: its waiters are refused (never sent) when it changes —
      // not on a drain, which keeps the connection and the calls running on it (a new gate would count from 0).
      if (change.type === 'removed' || (change.type === 'updated' && !onlyWeightChanged(change.previous, change.server))) this.gates.forget(change.server.id)
      if (change.type === 'removed' && options.registry.replicas(change.server.service).length === 0) this.#budgets.delete(change.server.service)
    })
  }

  addHooks (hooks: CallHooks): void {
    if (hooks.preCall !== undefined) this.#preCall.push(hooks.preCall.bind(hooks))
    if (hooks.onResult !== undefined) this.#onResult.push(hooks.onResult.bind(hooks))
  }

  /**
   * Sends a request to a replica of `target.service`. A replica that fails before the request reached it is skipped
   * for the next one; one that fails after is retried elsewhere only when the target is idempotent.
   */
  forward (context: ClientContext, target: ForwardTarget, options: ForwardOptions): Promise<unknown> {
    const session = context instanceof ClientSession ? context : undefined
    let params = target.params
    const token = progressTokenOf(params)
    const requestId = options.requestId
    const origin: CallOrigin | undefined = session !== undefined && requestId !== undefined ? { client: session, requestId } : undefined
    let onProgress: ((p: Params) => void) | undefined
    if (token !== undefined) {
      const related = options.related
      if (origin !== undefined) {
        onProgress = (p) => origin.client.notify('notifications/progress', { ...p, progressToken: token }, origin.requestId)
      } else if (related !== undefined) {
        onProgress = (p) => related(notificationMessage('notifications/progress', { ...p, progressToken: token }))
      } else {
        // Nobody can receive progress: do not let the client's token reach a session others share.
        const { progressToken: _, ...meta } = params._meta as Params
        params = { ...params, _meta: meta }
      }
    }
    const cancel = options.cancel ?? (options.signal !== undefined ? Cancellation.fromSignal(options.signal) : undefined)
    const call: ForwardedCall = {
      service: target.service,
      method: target.method,
      params,
      name: target.name,
      idempotent: target.idempotent,
      readOnly: target.readOnly,
      upstream: target.upstream,
      context,
      origin,
      cancel,
      onProgress,
      tried: undefined,
      // Every field from the start: one object shape for every call, however far it goes.
      refused: undefined,
      hedged: false,
      on: undefined,
      trace: options.trace
    }
    const answer = this.#preCall.length === 0 && this.#onResult.length === 0 ? this.#attempt(call) : this.#withHooks(call)
    const ended = this.options.callEnded
    if (ended === undefined) return answer
    const started = performance.now()
    return answer.then((result) => {
      const toolError = result instanceof RawResult ? result.isToolError : (result as { isError?: unknown } | undefined)?.isError === true
      ended(call, toolError ? 'tool_error' : 'success', performance.now() - started)
      return result
    }, (err: unknown) => {
      const e = err as { code?: unknown, rpcError?: { code?: unknown } }
      ended(call, e.rpcError !== undefined ? `rpc_error ${String(e.rpcError.code)}` : typeof e.code === 'string' ? e.code : 'error', performance.now() - started)
      throw err
    })
  }

  async #withHooks (call: ForwardedCall): Promise<unknown> {
    for (const hook of this.#preCall) {
      const answer = await hook(call.context, call)
      if (answer !== undefined) return answer
    }
    const result = await this.#attempt(call)
    for (const hook of this.#onResult) hook(call.context, call, result)
    return result
  }

  /** One try on one replica; on a failure that allows it, the next try on another. */
  #attempt (call: ForwardedCall): Promise<unknown> {
    const { pool, broker, registry } = this.options
    const replica = call.upstream !== undefined
      ? (call.tried === undefined ? registry.get(call.upstream) : undefined)
      : broker.replicaFor(call.context, call.service, call.tried)
    if (replica === undefined) {
      if (call.tried === undefined && call.upstream === undefined) {
        // "Reconnect on use": a replica that is down and waiting out its backoff tries again now.
        pool.wake(call.service)
        const refusal = this.options.balancer?.unavailable?.(call.service)
        if (refusal !== undefined) return Promise.reject(refusal)
      }
      if (call.refused !== undefined) return Promise.reject(call.refused)
      return Promise.reject(new ERR_UPSTREAM_UNAVAILABLE(call.service,
        call.tried === undefined ? pool.whyUnavailable(call.service) : 'every replica failed this call'))
    }
    // The budget grows with calls that go somewhere (not those refused by hooks, nor a call's later tries).
    if (call.tried === undefined && call.refused === undefined && call.hedged !== true) {
      this.#budget.called()
      this.#serviceBudget(call.service).called()
    }
    if (this.options.hedging !== undefined && call.hedged !== true && call.tried === undefined) {
      const delay = hedgeDelay(call, this.options.hedging, () => this.#hedgeContext(call, replica))
      if (delay !== undefined) return this.#hedge(call, replica, delay)
    }
    return this.#onReplica(call, replica)
  }

  /** The call on `replica`: at its most calls in flight, it waits for a slot (or is refused: then another may take it). */
  #onReplica (call: ForwardedCall, replica: UpstreamDefinition): Promise<unknown> {
    const slot = this.gates.acquire(replica, call.cancel)
    if (slot === undefined) return this.#send(call, replica)
    return slot.then(() => {
      // It waited: meanwhile its circuit may have opened, or a half-open circuit's probe gone to another call.
      if (this.options.balancer?.admits?.(replica.id) === false) {
        this.gates.release(replica.id)
        return this.#elsewhere(call, replica, this.options.balancer.unavailable?.(call.service) ??
          new ERR_UPSTREAM_UNAVAILABLE(call.service, `upstream ${replica.id} stopped taking calls while the call waited`))
      }
      return this.#send(call, replica)
    }, (err: unknown) => {
      if (!(err instanceof UpstreamFailure)) throw err
      return this.#elsewhere(call, replica, err)
    })
  }

  /** Refused by `replica` before it was sent: another replica, or that refusal. */
  #elsewhere (call: ForwardedCall, replica: UpstreamDefinition, refusal: Error): Promise<unknown> {
    if (!(refusal instanceof UpstreamFailure)) return Promise.reject(refusal)
    if (call.upstream !== undefined || this.options.registry.replicas(call.service).length < 2) return Promise.reject(asAnswered(refusal, call.service))
    // Never sent: moving it adds no load upstream, so it costs no retry budget and waits for nothing.
    call.refused = refusal
    call.tried ??= new Set()
    call.tried.add(replica.id)
    return this.#attempt(call)
  }

  /** The call on `replica`, hedged on another replica if it has not answered after `delay` (see hedging.ts). */
  #hedge (call: ForwardedCall, replica: UpstreamDefinition, delay: number): Promise<unknown> {
    return race(call, replica.id, delay, {
      first: attempt => this.#onReplica(attempt, replica),
      second: attempt => this.#attempt(attempt),
      anotherReplica: tried => this.#anotherReplica(call.service, tried),
      pay: () => this.#tryRetry(call.service),
      observer: this.options.observer
    })
  }

  /** The call on `replica`, which has a slot for it; on a failure that allows it, the next try on another. */
  #send (call: ForwardedCall, replica: UpstreamDefinition): Promise<unknown> {
    const { pool, broker } = this.options
    const connection = pool.get(replica.id)
    const started = performance.now()
    const load = this.options.balancer?.attempts
    let answer: Promise<unknown>
    let span: AttemptSpan | undefined
    // Nothing thrown here may keep the slot: it is given back, and the call fails (or goes elsewhere) as any other.
    try {
      // Replaced or removed while the call waited for its slot: never sent.
      if (connection === undefined) throw new ERR_UPSTREAM_UNAVAILABLE(call.service, `upstream ${replica.id} was reconfigured or removed`)
      load?.started(replica.id)
      call.on = replica.id
      const principal = call.context.principal
      let headers = replica.forwardIdentity && principal !== null ? identityHeaders(principal) : undefined
      let params = call.params
      if (this.options.tracing !== undefined) {
        span = this.options.tracing.attempt(call.trace, call.method, params, {
          upstream: replica.id, service: call.service, url: replica.url, transport: replica.transport, attempt: (call.tried?.size ?? 0) + 1, hedge: call.hedged === true && call.tried !== undefined
        })
        params = span.params
        headers = headers === undefined ? span.headers : { ...headers, ...span.headers }
      }
      const options = { timeout: replica.timeout, cancel: call.cancel, onProgress: call.onProgress, raw: true, origin: call.origin, headers }
      const upstream = broker.sessionFor(call.context, connection)
      const traced = span
      const send = (session: UpstreamSession) => {
        if (traced === undefined) return session.request(call.method, params, options)
        traced.session(session.mcpSessionId, session.protocolVersion)
        return traced.run(() => session.request(call.method, params, options))
      }
      answer = upstream instanceof UpstreamSession ? send(upstream) : upstream.then(send, (err: unknown) => { throw openFailed(err, replica.id) })
    } catch (err) {
      span?.end(undefined, err)
      this.gates.release(replica.id)
      if (connection !== undefined) load?.abandoned(replica.id)
      if (!(err instanceof UpstreamFailure) || err.sent || call.upstream !== undefined) return Promise.reject(err)
      call.tried ??= new Set()
      call.tried.add(replica.id)
      return this.#attempt(call)
    }
    return answer.then((result) => {
      span?.end(result)
      this.gates.release(replica.id)
      const toolError = result instanceof RawResult ? result.isToolError : (result as { isError?: unknown } | undefined)?.isError === true
      load?.finished(replica.id, performance.now() - started, false)
      this.#observe(replica.id, call, toolError ? 'tool_error' : 'success', started, undefined)
      return result
    }, (err: unknown) => {
      this.gates.release(replica.id)
      const failure = upstreamFailure(err, replica.id)
      span?.end(undefined, failure, outcomeOf(failure))
      // A cancellation says nothing of the upstream; an answer (a JSON-RPC error) is not the upstream failing.
      if (call.cancel?.requested === true && !(failure instanceof UpstreamFailure)) load?.abandoned(replica.id)
      else load?.finished(replica.id, performance.now() - started, failure instanceof UpstreamFailure)
      this.#observe(replica.id, call, outcomeOf(failure), started, failure.message, (failure as { rpcError?: { code?: number } }).rpcError?.code)
      if (!(failure instanceof UpstreamFailure)) throw failure // an answer (a JSON-RPC error) or a cancellation
      if (failure.suspect) connection.suspect()
      broker.dropClosed(call.context, connection)
      // Sent twice only when that is harmless: never sent, or idempotent and the replica failed it (not merely
      // slow: a timeout may be the upstream still working on it).
      const mayRetry = !failure.sent || (call.idempotent && replicaFailed(failure))
      if (!mayRetry || call.cancel?.requested === true || call.upstream !== undefined || !this.#anotherReplica(call.service, call.tried, replica.id)) {
        throw asAnswered(failure, call.service)
      }
      return this.#retry(call, replica, failure)
    })
  }

  /** Whether a replica of `service`, not in `tried` nor `also`, may take a call: only then is a retry worth its budget. */
  #anotherReplica (service: string, tried: ReadonlySet<string> | undefined, also?: string): boolean {
    return this.options.registry.replicas(service).some(r =>
      r.id !== also && tried?.has(r.id) !== true && r.weight > 0 && this.options.pool.get(r.id)?.state === 'up')
  }

  /** What hedging asks of `replica` before it hedges a call there. */
  #hedgeContext (call: ForwardedCall, replica: UpstreamDefinition): HedgeContext {
    const { registry, pool, broker, balancer } = this.options
    const connection = pool.get(replica.id)
    const quantile = balancer?.latencyQuantile
    return {
      replicas: registry.replicas(call.service).length,
      sharedSession: connection !== undefined && broker.sharesSession(call.context, connection),
      latency: quantile === undefined ? undefined : q => quantile.call(balancer, replica.id, q),
      timeout: replica.timeout
    }
  }

  /**
   * The call once more, on another replica, after a short jittered pause (0–5 ms, doubling per retry, at most
   * 100 ms: replicas failing together are not hit in step) — if the retry budget allows; if not, the failure stands.
   */
  #retry (call: ForwardedCall, replica: UpstreamDefinition, failure: UpstreamFailure): Promise<unknown> {
    if (!this.#tryRetry(call.service)) {
      this.options.observer?.retry?.('refused')
      throw asAnswered(failure, call.service)
    }
    this.options.observer?.retry?.('retried')
    call.tried ??= new Set()
    call.tried.add(replica.id)
    const pause = Math.random() * Math.min(100, 5 * 2 ** (call.tried.size - 1))
    return new Promise(resolve => setTimeout(resolve, pause)).then(() => {
      if (call.cancel?.requested === true) throw asAnswered(failure, call.service)
      return this.#attempt(call)
    })
  }

  /** Whether the service's budget and the gateway's both allow one more retry; if so it is counted in both. */
  #tryRetry (service: string): boolean {
    const own = this.#serviceBudget(service)
    if (!own.allows() || !this.#budget.allows()) return false
    own.spend()
    this.#budget.spend()
    return true
  }

  #serviceBudget (service: string): RetryBudget {
    let budget = this.#budgets.get(service)
    if (budget === undefined) this.#budgets.set(service, budget = new RetryBudget(this.options.retryBudget))
    return budget
  }

  /**
   * A request on one upstream by id, with the server's own names (the WebSocket envelope): not balanced, not
   * retried elsewhere, but through the same hooks as every other call.
   */
  direct (context: ClientContext, connection: UpstreamConnection, method: string, params: Params | undefined, trace?: Context): Promise<unknown> {
    return this.forward(context, { service: connection.definition.service, method, params: params ?? {}, idempotent: false, upstream: connection.id }, trace === undefined ? {} : { trace })
  }

  #observe (server: string, call: ForwardedCall, outcome: CallOutcome, started: number, message: string | undefined, code?: number): void {
    this.options.observer?.upstreamCall(server, call.method, outcome, (performance.now() - started) / 1000,
      call.service, call.method === 'tools/call' ? call.name : undefined, message, code)
  }
}

/**
 * Opening the client's session on the upstream failed, so the call itself was never sent (another replica may take
 * it), whatever the failure was.
 */
function openFailed (err: unknown, upstream: string): Error {
  const failure = upstreamFailure(err, upstream)
  if (!(failure instanceof UpstreamFailure) || !failure.sent) return failure
  return new ERR_UPSTREAM_UNAVAILABLE(upstream, `upstream ${upstream}: opening a session failed: ${failure.message}`, { sent: false, suspect: failure.suspect })
}

/** What the client is told: a request that never left the gateway found the service unavailable (503). */
function asAnswered (failure: UpstreamFailure, service: string): UpstreamFailure {
  // Refusals that say what to do (wait for a slot, for a circuit) keep their words.
  if (failure.sent || failure instanceof ERR_UPSTREAM_BUSY || failure instanceof ERR_CIRCUIT_OPEN || failure.code === 'MCPGW_ERR_UPSTREAM_UNAVAILABLE') return failure
  return new ERR_UPSTREAM_UNAVAILABLE(service, failure.message, { sent: false, suspect: failure.suspect })
}

/**
 * The caller's identity as headers an upstream configured with forwardIdentity can trust (it is reached only
 * through the gateway): the principal's id, how it authenticated, and its roles, percent-encoded so any id is a
 * valid header value.
 */
export function identityHeaders (principal: Principal): Record<string, string> {
  return {
    'x-mcp-gateway-principal': headerText(principal.id),
    'x-mcp-gateway-principal-kind': principal.kind,
    'x-mcp-gateway-roles': principal.roles.map(headerText).join(',')
  }
}

/** URI-encoded, lone surrogates (a token's claim may hold one; encodeURIComponent throws on them) as U+FFFD. */
function headerText (text: string): string {
  return encodeURIComponent(text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD'))
}

/**
 * The replica failed the call in a way another may not: it went away (suspect) or answered a 5xx. A timeout is
 * not one (the upstream may still be working on it), nor a 4xx (every replica would say the same).
 */
function replicaFailed (failure: UpstreamFailure): boolean {
  if (failure.code === 'MCPGW_ERR_UPSTREAM_TIMEOUT') return false
  return failure.suspect || (failure instanceof ERR_UPSTREAM_HTTP && failure.upstreamStatus >= 500)
}

function outcomeOf (err: Error): CallOutcome {
  if ((err as { rpcError?: unknown }).rpcError !== undefined) return 'rpc_error'
  switch ((err as { code?: unknown }).code) {
    case 'MCPGW_ERR_UPSTREAM_TIMEOUT': return 'timeout'
    case 'MCPGW_ERR_REQUEST_CANCELLED': return 'cancelled'
    case 'MCPGW_ERR_UPSTREAM_UNAVAILABLE': return 'unavailable'
    default: return 'failure'
  }
}
